#include "json_text.hpp"

#include <array>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace tp::token {

std::string decode_utf8_like_js(ByteView in) {
  bool ascii = true;
  for (std::uint8_t b : in) ascii &= b < 0x80;
  if (ascii) return std::string(reinterpret_cast<const char*>(in.data), in.size);
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
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
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

// ---- claims scanner ---------------------------------------------------------------------------

namespace {

// Characters a JSON string may hold as they are: not '"', not '\\', not a control character.
constexpr std::array<bool, 256> make_plain() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 256; ++c) t[c] = c != '"' && c != '\\';
  return t;
}
constexpr auto kPlain = make_plain();

// The open containers ('{' / '['): the first 64 levels inline (no allocation for ordinary
// payloads), deeper ones on the heap (JSON.parse has no depth limit worth the name).
class ContainerStack {
 public:
  void push_back(char c) {
    if (n_ < kInline)
      inline_[n_] = c;
    else
      deep_.push_back(c);
    ++n_;
  }
  void pop_back() {
    --n_;
    if (n_ >= kInline) deep_.pop_back();
  }
  char back() const { return n_ > kInline ? deep_.back() : inline_[n_ - 1]; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

 private:
  static constexpr std::size_t kInline = 64;
  char inline_[kInline];
  std::size_t n_ = 0;
  std::vector<char> deep_;
};

class Scanner {
 public:
  Scanner(std::string_view s, std::string_view issuer, std::string_view audience)
      : s_(s), issuer_(issuer), audience_(audience) {}

  ClaimScan run() {
    ClaimScan out;
    skip_ws();
    if (i_ >= s_.size() || s_[i_] != '{') return out;  // not an object (valid or not)
    if (!parse(out)) return out;
    out.object = true;
    return out;
  }

 private:
  std::string_view s_, issuer_, audience_;
  std::size_t i_ = 0;
  ContainerStack stack_;    // '{' / '[' per open container
  std::string scratch_;     // unescaped string contents when escapes are present
  bool lone_ = false;       // the last unescaped string held a lone surrogate
  bool aud_array_ = false;  // inside the top-level aud array

  void skip_ws() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++i_;
    }
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  int hex4(std::size_t at) const {
    if (at + 4 > s_.size()) return -1;
    int v = 0;
    for (std::size_t k = at; k < at + 4; ++k) {
      int h = hex(s_[k]);
      if (h < 0) return -1;
      v = v << 4 | h;
    }
    return v;
  }
  void put_utf8(std::uint32_t cp) {
    if (cp < 0x80) {
      scratch_ += static_cast<char>(cp);
    } else if (cp < 0x800) {
      scratch_ += static_cast<char>(0xC0 | cp >> 6);
      scratch_ += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      scratch_ += static_cast<char>(0xE0 | cp >> 12);
      scratch_ += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      scratch_ += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      scratch_ += static_cast<char>(0xF0 | cp >> 18);
      scratch_ += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
      scratch_ += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      scratch_ += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // At '"'. Validates the string and returns its contents (a view of the text, or of scratch_
  // when it had escapes). `ok` false on invalid JSON.
  std::string_view string(bool& ok) {
    // The scan runs on locals (a member index is reloaded and stored on every character).
    const char* const text = s_.data();
    const std::size_t size = s_.size();
    const std::size_t start = i_ + 1;
    std::size_t i = start;
    bool escaped = false;
    for (;;) {
      while (i < size && kPlain[static_cast<unsigned char>(text[i])]) ++i;
      if (i >= size) break;
      const unsigned char c = static_cast<unsigned char>(text[i]);
      if (c == '"') break;
      if (c < 0x20) {
        i_ = i;
        ok = false;
        return {};
      }
      // c == '\\'
      escaped = true;
      if (i + 1 >= size) {
        i = size;
        break;
      }
      char e = text[i + 1];
      if (e == 'u') {
        if (hex4(i + 2) < 0) {
          i_ = i;
          ok = false;
          return {};
        }
        i += 6;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                 e == 'r' || e == 't') {
        i += 2;
      } else {
        i_ = i;
        ok = false;
        return {};
      }
    }
    i_ = i;
    if (i_ >= s_.size()) {
      ok = false;
      return {};
    }
    std::size_t end = i_++;
    lone_ = false;
    if (!escaped) return std::string_view(s_.data() + start, end - start);
    scratch_.clear();
    for (std::size_t k = start; k < end;) {
      if (s_[k] != '\\') {
        scratch_ += s_[k++];
        continue;
      }
      char e = s_[k + 1];
      if (e != 'u') {
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        for (int m = 0; from[m]; ++m)
          if (from[m] == e) scratch_ += to[m];
        k += 2;
        continue;
      }
      std::uint32_t v = static_cast<std::uint32_t>(hex4(k + 2));
      k += 6;
      if (v >= 0xD800 && v <= 0xDBFF && k + 6 <= end && s_[k] == '\\' && s_[k + 1] == 'u') {
        int w = hex4(k + 2);
        if (w >= 0xDC00 && w <= 0xDFFF) {
          put_utf8(0x10000 + ((v - 0xD800) << 10) + (static_cast<std::uint32_t>(w) - 0xDC00));
          k += 6;
          continue;
        }
      }
      if (v >= 0xD800 && v <= 0xDFFF) {
        lone_ = true;  // not representable in UTF-8: equal to no configured value
        scratch_ += "\xEF\xBF\xBD";
      } else {
        put_utf8(v);
      }
    }
    return scratch_;
  }

  // At '-' or a digit. Validates the JSON number grammar; returns its value when wanted.
  bool number(bool want, double& value) {
    std::size_t start = i_;
    auto digits = [&] {
      std::size_t d = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ > d;
    };
    if (s_[i_] == '-') ++i_;
    bool integer = true;  // no fraction, no exponent
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      integer = false;
      if (!digits()) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      integer = false;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    if (want) {
      std::string_view t(s_.data() + start, i_ - start);
      bool negative = t[0] == '-';
      std::string_view digits_only = negative ? t.substr(1) : t;
      if (integer && digits_only.size() <= 15) {
        // Integers below 10^15 are exact in a double: skip strtod (slow in wasm's libc).
        std::int64_t v = 0;
        for (char d : digits_only) v = v * 10 + (d - '0');
        value = negative ? -static_cast<double>(v) : static_cast<double>(v);
      } else {
        std::string token(t);
        value = std::strtod(token.c_str(), nullptr);  // correctly rounded; overflow -> +-inf
      }
    }
    return true;
  }

  bool literal(std::string_view word) {
    if (s_.size() - i_ < word.size() || std::string_view(s_.data() + i_, word.size()) != word)
      return false;
    i_ += word.size();
    return true;
  }

  ClaimScan::Claim* claim_for(ClaimScan& out, std::string_view key) {
    if (key.size() != 3) return nullptr;
    if (key == "iss") return &out.iss;
    if (key == "aud") return &out.aud;
    if (key == "iat") return &out.iat;
    if (key == "nbf") return &out.nbf;
    if (key == "exp") return &out.exp;
    return nullptr;
  }

  bool parse(ClaimScan& out) {
    ClaimScan::Claim* target = nullptr;  // claim the next top-level value belongs to
    bool is_aud = false;
    for (;;) {
      // ---- a value ----
      skip_ws();
      if (i_ >= s_.size()) return false;
      const bool top = stack_.size() == 1;  // value of a top-level member
      ClaimScan::Claim* claim = top ? target : nullptr;
      char c = s_[i_];
      if (claim) *claim = ClaimScan::Claim{};
      if (c == '{' || c == '[') {
        if (claim) claim->kind = c == '[' ? ClaimScan::Kind::array : ClaimScan::Kind::other;
        if (claim && c == '[' && is_aud) aud_array_ = true;
        stack_.push_back(c);
        ++i_;
        skip_ws();
        if (i_ < s_.size() && s_[i_] == (c == '{' ? '}' : ']')) {
          ++i_;
          stack_.pop_back();
          if (stack_.size() == 1) aud_array_ = false;
        } else if (c == '{') {
          goto key;
        } else {
          continue;  // first array element
        }
      } else if (c == '"') {
        bool ok = true;
        std::string_view v = string(ok);
        if (!ok) return false;
        if (claim) {
          claim->kind = ClaimScan::Kind::string;
          claim->matches = !lone_ && v == (is_aud ? audience_ : issuer_);
        } else if (aud_array_ && stack_.size() == 2 && !lone_ && v == audience_) {
          out.aud.matches = true;
        }
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        double v = 0;
        if (!number(claim != nullptr, v)) return false;
        if (claim) {
          claim->kind = ClaimScan::Kind::number;
          claim->number = v;
        }
      } else if (literal("true") || literal("false") || literal("null")) {
        if (claim) claim->kind = ClaimScan::Kind::other;
      } else {
        return false;
      }
    after:
      // ---- after a value: ',' or the end of containers ----
      skip_ws();
      if (stack_.empty()) return i_ == s_.size();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == ',') {
        ++i_;
        if (stack_.back() == '[') continue;
        goto key;
      }
      if (s_[i_] == (stack_.back() == '{' ? '}' : ']')) {
        ++i_;
        stack_.pop_back();
        if (stack_.size() == 1) aud_array_ = false;
        goto after;
      }
      return false;
    key:
      // ---- a member name and ':' ----
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '"') return false;
      {
        bool ok = true;
        std::string_view k = string(ok);
        if (!ok) return false;
        if (stack_.size() == 1) {
          target = lone_ ? nullptr : claim_for(out, k);
          is_aud = target == &out.aud;
        }
      }
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') return false;
      ++i_;
    }
  }
};

}  // namespace

ClaimScan scan_claims(std::string_view text, std::string_view issuer, std::string_view audience) {
  return Scanner(text, issuer, audience).run();
}

}  // namespace tp::token
