// base64url for JWS segments. Encoding is RFC 4648 section 5 without padding (what jose emits).
// Decoding follows the reference runtime (Bun 1.4.5, jose -> Uint8Array.fromBase64 with
// alphabet "base64url" and lastChunkHandling "loose"), so that edge cases verify exactly as in
// the reference: whitespace skipped, '+' and '/' rejected, padding accepted when well placed,
// non-zero unused bits tolerated. Node 20 differs (it maps to standard base64 and uses atob).
#include <array>

#include "tp/token/token.hpp"

namespace tp::token {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// 0..63 for the base64url alphabet, -1 for anything else ('+' and '/' included).
constexpr std::array<std::int8_t, 256> make_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kTable = make_table();

// ASCII whitespace as the Infra standard defines it: TAB, LF, FF, CR, SPACE.
inline bool is_ascii_ws(unsigned char c) {
  return c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || c == 0x20;
}

inline std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && is_ascii_ws(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

// Appends the bytes of a chunk of 2..4 sextets; unused trailing bits are ignored ("loose").
inline void flush_chunk(Bytes& out, const std::uint32_t* v, int n) {
  std::uint32_t bits = 0;
  for (int i = 0; i < 4; ++i) bits = (bits << 6) | (i < n ? v[i] : 0);
  out.push_back(static_cast<std::uint8_t>(bits >> 16));
  if (n >= 3) out.push_back(static_cast<std::uint8_t>(bits >> 8));
  if (n == 4) out.push_back(static_cast<std::uint8_t>(bits));
}

}  // namespace

std::string base64url_encode(ByteView bytes) {
  std::string out;
  out.reserve((bytes.size * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size; i += 3) {
    std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  std::size_t rest = bytes.size - i;
  if (rest == 1) {
    std::uint32_t v = bytes[i] << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::optional<Bytes> base64url_decode(std::string_view s) {
  Bytes out;
  out.reserve(s.size() * 3 / 4 + 3);
  std::uint32_t chunk[4];
  int n = 0;
  std::size_t i = 0;
  for (;;) {
    i = skip_ws(s, i);
    if (i == s.size()) {
      if (n == 1) return std::nullopt;
      if (n > 1) flush_chunk(out, chunk, n);
      return out;
    }
    unsigned char c = static_cast<unsigned char>(s[i++]);
    if (c == '=') {
      // Padding: needs at least two sextets; "xx" needs "==", "xxx" needs "="; then only
      // whitespace may follow.
      if (n < 2) return std::nullopt;
      i = skip_ws(s, i);
      if (n == 2) {
        if (i == s.size() || s[i] != '=') return std::nullopt;
        i = skip_ws(s, i + 1);
      }
      if (i < s.size()) return std::nullopt;
      flush_chunk(out, chunk, n);
      return out;
    }
    std::int8_t v = kTable[c];
    if (v < 0) return std::nullopt;
    chunk[n++] = static_cast<std::uint32_t>(v);
    if (n == 4) {
      flush_chunk(out, chunk, 4);
      n = 0;
    }
  }
}

}  // namespace tp::token
