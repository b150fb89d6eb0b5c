// HTTP/1.x response framing (RFC 9112): status line, header fields, then the body delimited by
// Transfer-Encoding: chunked, by Content-Length, or by the end of the stream. Lines may end in
// CRLF or a bare LF. Called again with more bytes until it answers, so completeness checks walk
// the bytes without copying; the body is copied once, when the response is complete.
#include "tp/ops/http_response.hpp"

#include <cstdint>

namespace tp::ops {

namespace {

constexpr std::size_t kMaxHead = 64 * 1024;      // status line + header fields
constexpr std::size_t kMaxChunkLine = 4 * 1024;  // chunk size + extensions, or one trailer

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool blank(char c) {
  return c == ' ' || c == '\t';
}
bool digit(char c) {
  return c >= '0' && c <= '9';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

Error malformed(const std::string& what) {
  return make_error("malformed_response", "malformed HTTP response: " + what);
}
Error truncated(const char* where) {
  return make_error("truncated", std::string("the connection closed in the middle of ") + where);
}

// The line starting at `pos` (without its CR LF), or nullopt when no line end has arrived.
std::optional<std::string_view> line_at(std::string_view s, std::size_t& pos) {
  std::size_t nl = s.find('\n', pos);
  if (nl == std::string_view::npos) return std::nullopt;
  std::string_view line = s.substr(pos, nl - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos = nl + 1;
  return line;
}

struct Head {
  HttpResponse response;
  std::size_t size = 0;  // bytes up to and including the empty line
};

Result<Head> parse_status_line(std::string_view line) {
  // HTTP-version SP 3DIGIT [SP reason-phrase]
  Head head;
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !digit(line[7]) || line[8] != ' ' ||
      !digit(line[9]) || !digit(line[10]) || !digit(line[11]) ||
      (line.size() > 12 && line[12] != ' ') || line[9] == '0') {
    return malformed("status line '" + std::string(line.substr(0, 60)) + "'");
  }
  head.response.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (line.size() > 13) head.response.reason = std::string(line.substr(13));
  return head;
}

// nullopt while the empty line ending the head has not arrived.
Result<std::optional<Head>> parse_head(std::string_view s) {
  std::size_t pos = 0;
  std::optional<std::string_view> line = line_at(s, pos);
  if (!line) {
    if (s.size() > kMaxHead) return malformed("no status line in the first 64 KiB");
    return std::optional<Head>();
  }
  Result<Head> head = parse_status_line(*line);
  if (!head) return head.error();
  for (;;) {
    line = line_at(s, pos);
    if (!line || pos > kMaxHead) {
      if (s.size() > kMaxHead) return malformed("header fields longer than 64 KiB");
      return std::optional<Head>();
    }
    if (line->empty()) break;
    std::size_t colon = line->find(':');
    if (blank(line->front()) || colon == std::string_view::npos || colon == 0 ||
        trim(line->substr(0, colon)).size() != colon) {
      return malformed("header line '" + std::string(line->substr(0, 60)) + "'");
    }
    std::string name(line->substr(0, colon));
    for (char& c : name) c = lower(c);
    head.value().response.headers.emplace_back(std::move(name),
                                               std::string(trim(line->substr(colon + 1))));
  }
  head.value().size = pos;
  return std::optional<Head>(std::move(head.value()));
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!digit(c)) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// A chunk-size or trailer line: nullopt until it has fully arrived.
Result<std::optional<std::string_view>> framing_line(std::string_view s, std::size_t& pos,
                                                     const char* what) {
  std::size_t start = pos;
  std::optional<std::string_view> line = line_at(s, pos);
  if (!line && s.size() - start > kMaxChunkLine) {
    return malformed(std::string(what) + " line longer than 4 KiB");
  }
  return line;
}

enum class Walk { complete, incomplete };

// Walks chunked data; appends the decoded bytes to `out` when it is not null.
Result<Walk> walk_chunks(std::string_view s, std::string* out) {
  std::size_t pos = 0;
  for (;;) {
    auto framing = framing_line(s, pos, "chunk size");
    if (!framing) return framing.error();
    if (!framing.value()) return Walk::incomplete;
    std::string_view line = *framing.value();
    std::string_view size_text = trim(line.substr(0, line.find(';')));
    if (size_text.empty() || size_text.size() > 15) {
      return malformed("chunk size '" + std::string(line.substr(0, 40)) + "'");
    }
    std::uint64_t size = 0;
    for (char c : size_text) {
      char l = lower(c);
      int d = digit(l) ? l - '0' : (l >= 'a' && l <= 'f') ? l - 'a' + 10 : -1;
      if (d < 0) return malformed("chunk size '" + std::string(size_text) + "'");
      size = size * 16 + static_cast<std::uint64_t>(d);
    }
    if (size == 0) break;
    if (size > s.size() - pos) return Walk::incomplete;
    std::size_t end = pos + static_cast<std::size_t>(size);
    if (end == s.size() || (s[end] == '\r' && end + 1 == s.size())) return Walk::incomplete;
    std::size_t after = s[end] == '\n' ? end + 1 : end + 2;
    if (s[end] != '\n' && (s[end] != '\r' || s[end + 1] != '\n')) {
      return malformed("chunk data not followed by a line end");
    }
    if (out) out->append(s.substr(pos, end - pos));
    pos = after;
  }
  // Trailer fields, ignored, up to an empty line.
  for (;;) {
    auto trailer = framing_line(s, pos, "trailer");
    if (!trailer) return trailer.error();
    if (!trailer.value()) return Walk::incomplete;
    if (trailer.value()->empty()) return Walk::complete;
  }
}

}  // namespace

const std::string* HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

Result<std::optional<HttpResponse>> parse_http_response(std::string_view received, bool at_end) {
  using Answer = std::optional<HttpResponse>;
  std::string_view s = received;
  for (;;) {
    Result<std::optional<Head>> parsed = parse_head(s);
    if (!parsed) return parsed.error();
    if (!parsed.value()) {
      if (at_end) return truncated(s.empty() ? "waiting for the response" : "the header fields");
      return Answer();
    }
    Head& head = *parsed.value();
    HttpResponse& r = head.response;
    std::string_view rest = s.substr(head.size);
    if (r.status >= 100 && r.status < 200) {  // interim (100 Continue, 103 Early Hints)
      s = rest;
      continue;
    }
    if (r.status == 204 || r.status == 304) return Answer(std::move(r));

    if (const std::string* te = r.header("transfer-encoding")) {
      std::string coding;
      for (char c : *te) coding.push_back(lower(c));
      if (coding != "chunked") {
        return make_error("unsupported_transfer_encoding",
                          "unsupported Transfer-Encoding '" + *te + "' (only chunked)");
      }
      Result<Walk> walk = walk_chunks(rest, nullptr);
      if (!walk) return walk.error();
      if (walk.value() == Walk::incomplete) {
        if (at_end) return truncated("the chunked body");
        return Answer();
      }
      (void)walk_chunks(rest, &r.body);
      return Answer(std::move(r));
    }

    std::optional<std::uint64_t> length;
    for (const auto& [name, value] : r.headers) {
      if (name != "content-length") continue;
      std::optional<std::uint64_t> v = parse_decimal(value);
      if (!v || (length && *length != *v)) return malformed("Content-Length '" + value + "'");
      length = v;
    }
    if (length) {
      if (*length > rest.size()) {
        if (at_end) return truncated("the body (shorter than its Content-Length)");
        return Answer();
      }
      r.body = std::string(rest.substr(0, static_cast<std::size_t>(*length)));
      return Answer(std::move(r));
    }
    if (!at_end) return Answer();
    r.body = std::string(rest);
    return Answer(std::move(r));
  }
}

}  // namespace tp::ops
