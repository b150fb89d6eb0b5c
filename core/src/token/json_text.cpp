#include "json_text.hpp"

#include <cmath>
#include <cstdlib>

namespace tp::token {

std::string decode_utf8_like_js(ByteView in) {
  std::string out;
  out.reserve(in.size);
  std::size_t i = 0;
  const std::size_t n = in.size;
  while (i < n) {
    const std::uint8_t b = in[i];
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    int need = 0;
    std::uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    if (need == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    int got = 0;
    while (got < need && j < n) {
      const std::uint8_t c = in[j];
      if (c < lo || c > hi) break;
      lo = 0x80;
      hi = 0xBF;
      ++j;
      ++got;
    }
    if (got == need) {
      out.append(reinterpret_cast<const char*>(in.data + i), j - i);
    } else {
      out += "\xEF\xBF\xBD";  // the maximal subpart is replaced; the offending byte is re-read
    }
    i = j;
  }
  if (out.size() >= 3 && out.compare(0, 3, "\xEF\xBB\xBF") == 0) out.erase(0, 3);
  return out;
}

namespace {

int hex4(std::string_view s, std::size_t i) {
  if (i + 4 > s.size()) return -1;
  int v = 0;
  for (std::size_t k = i; k < i + 4; ++k) {
    char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

// The JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view t) {
  std::size_t i = 0;
  auto digits = [&] {
    std::size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    return i > start;
  };
  if (i < t.size() && t[i] == '-') ++i;
  if (i < t.size() && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == t.size();
}

bool is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// nlohmann rejects two things JSON.parse accepts: escaped lone surrogates and numbers that
// overflow a double. Rewrite just those (rare) spots; nullopt when nothing needs rewriting.
std::optional<std::string> rewrite_for_nlohmann(std::string_view s) {
  std::string out;
  bool changed = false;
  std::size_t copied = 0;
  auto replace = [&](std::size_t from, std::size_t to, std::string_view with) {
    out.append(s.data() + copied, from - copied);
    out.append(with);
    copied = to;
    changed = true;
  };
  bool in_string = false;
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (in_string) {
      if (c == '"') {
        in_string = false;
        ++i;
      } else if (c == '\\' && i + 1 < s.size()) {
        if (s[i + 1] != 'u') {
          i += 2;
          continue;
        }
        int v = hex4(s, i + 2);
        if (v < 0) {
          i += 2;  // invalid escape: let the parser report it
          continue;
        }
        if (v >= 0xD800 && v <= 0xDBFF) {
          int w = (i + 7 < s.size() && s[i + 6] == '\\' && s[i + 7] == 'u') ? hex4(s, i + 8) : -1;
          if (w >= 0xDC00 && w <= 0xDFFF) {
            i += 12;  // a proper pair
            continue;
          }
          replace(i, i + 6, "\\uFFFD");
        } else if (v >= 0xDC00 && v <= 0xDFFF) {
          replace(i, i + 6, "\\uFFFD");
        }
        i += 6;
      } else {
        ++i;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      ++i;
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t j = i;
      bool exponent = false;
      while (j < s.size() && is_number_char(s[j])) {
        if (s[j] == 'e' || s[j] == 'E') exponent = true;
        ++j;
      }
      if ((exponent || j - i > 300) && is_json_number(s.substr(i, j - i))) {
        std::string token(s.substr(i, j - i));
        double v = std::strtod(token.c_str(), nullptr);
        if (std::isinf(v))
          replace(i, j, v > 0 ? "1.7976931348623157e308" : "-1.7976931348623157e308");
      }
      i = j;
      continue;
    }
    ++i;
  }
  if (!changed) return std::nullopt;
  out.append(s.data() + copied, s.size() - copied);
  return out;
}

}  // namespace

std::optional<nlohmann::json> parse_json_like_js(std::string_view text) {
  // nlohmann skips one UTF-8 BOM; JSON.parse never does (TextDecoder already removed one).
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) return std::nullopt;
  std::optional<std::string> rewritten = rewrite_for_nlohmann(text);
  std::string_view input = rewritten ? std::string_view(*rewritten) : text;
  nlohmann::json j = nlohmann::json::parse(input.begin(), input.end(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace tp::token
