// A minimal HTTP/1.1 GET over POSIX sockets, for `teleportal stats` (native only: the core itself
// never does I/O). One request per connection, Connection: close, one deadline for all of it.
#pragma once
#include <string>
#include <string_view>

#include "tp/common/result.hpp"
#include "tp/ops/http_response.hpp"

namespace tp::cli {

struct HttpUrl {
  std::string host;  // without brackets for IPv6 literals
  std::string port;  // "80" when the URL has none
  std::string path;  // with the query; "/metrics" when the URL has no path (or just "/")
  std::string text;  // the URL as requested: http://host[:port]/path
};

// http://host[:port][/path][?query][#fragment]. Errors: bad_url.
Result<HttpUrl> parse_http_url(std::string_view url, std::string_view default_path);

// Errors: resolve_failed, connection_refused, connect_failed, timeout, send_failed, recv_failed,
// response_too_large, and those of tp::ops::parse_http_response.
Result<ops::HttpResponse> http_get(const HttpUrl& url, double timeout_seconds);

}  // namespace tp::cli
