// An HTTP/1.x response as bytes arrive from a socket: status, headers and the body (with
// Content-Length, chunked transfer coding, or up to the end of the stream). Pure: the caller does
// the I/O and hands over everything received so far.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tp/common/result.hpp"

namespace tp::ops {

struct HttpResponse {
  int status = 0;                                            // 100..999
  std::string reason;                                        // may be empty
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;                                          // after transfer decoding

  // The first header of that (lower-case) name, or nullptr.
  const std::string* header(std::string_view name) const;
};

// `received` is everything read so far; `at_end` says the peer closed the stream. Returns the
// response once complete, nullopt while more bytes are needed. Interim 1xx responses are skipped.
// Errors: malformed_response (status line, header, chunk size or Content-Length), truncated
// (the stream ended before the response did), unsupported_transfer_encoding.
Result<std::optional<HttpResponse>> parse_http_response(std::string_view received, bool at_end);

}  // namespace tp::ops
