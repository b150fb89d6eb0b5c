// base64url for JWS segments. Encoding is RFC 4648 section 5 without padding (what jose emits).
// Decoding follows the reference runtime (Bun 1.4.5, jose -> Uint8Array.fromBase64 with
// alphabet "base64url" and lastChunkHandling "loose"), so that edge cases verify exactly as in
// the reference: whitespace skipped, '+' and '/' rejected, padding accepted when well placed,
// non-zero unused bits tolerated. Node 20 differs (it maps to standard base64 and uses atob).
#include <array>

#include "base64url.hpp"
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

// The same lookup pre-shifted for each position of a group of four: value << (18 - 6 * pos),
// or kBad (a bit no valid group sets) for characters outside the alphabet. A group decodes
// with four loads and three ORs.
constexpr std::uint32_t kBad = 0x80000000u;
constexpr std::array<std::array<std::uint32_t, 256>, 4> make_shifted() {
  std::array<std::array<std::uint32_t, 256>, 4> t{};
  for (int pos = 0; pos < 4; ++pos)
    for (int c = 0; c < 256; ++c)
      t[pos][c] = kTable[c] < 0 ? kBad
                                : static_cast<std::uint32_t>(kTable[c]) << (18 - 6 * pos);
  return t;
}
constexpr auto kShifted = make_shifted();

// ASCII whitespace as the Infra standard defines it: TAB, LF, FF, CR, SPACE.
inline bool is_ascii_ws(unsigned char c) {
  return c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || c == 0x20;
}

inline std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && is_ascii_ws(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

// Writes the bytes of a chunk of 2..4 sextets; unused trailing bits are ignored ("loose").
inline std::size_t flush_chunk(std::uint8_t* out, const std::uint32_t* v, int n) {
  std::uint32_t bits = 0;
  for (int i = 0; i < 4; ++i) bits = (bits << 6) | (i < n ? v[i] : 0);
  out[0] = static_cast<std::uint8_t>(bits >> 16);
  if (n >= 3) out[1] = static_cast<std::uint8_t>(bits >> 8);
  if (n == 4) out[2] = static_cast<std::uint8_t>(bits);
  return static_cast<std::size_t>(n - 1);
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

std::ptrdiff_t base64url_decode_to(std::string_view s, std::uint8_t* out, bool* ascii) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t size = s.size();
  std::size_t o = 0;
  std::size_t i = 0;
  std::uint32_t high = 0;  // the top bit of every byte written by the fast path
  // Fast path: whole groups of four alphabet characters (every token minted without padding
  // or whitespace is all such groups plus a 2- or 3-character tail).
  for (; i + 4 <= size; i += 4) {
    const std::uint32_t v = kShifted[0][p[i]] | kShifted[1][p[i + 1]] | kShifted[2][p[i + 2]] |
                            kShifted[3][p[i + 3]];
    if (v & kBad) break;  // whitespace, padding or an error: the general loop decides
    high |= v;
    out[o] = static_cast<std::uint8_t>(v >> 16);
    out[o + 1] = static_cast<std::uint8_t>(v >> 8);
    out[o + 2] = static_cast<std::uint8_t>(v);
    o += 3;
  }
  const std::size_t fast_end = o;
  auto done = [&]() -> std::ptrdiff_t {
    if (ascii) {
      bool all = (high & 0x808080u) == 0;
      for (std::size_t k = fast_end; k < o; ++k) all &= out[k] < 0x80;
      *ascii = all;
    }
    return static_cast<std::ptrdiff_t>(o);
  };
  // General loop from a group boundary.
  std::uint32_t chunk[4];
  int n = 0;
  for (;;) {
    i = skip_ws(s, i);
    if (i == size) {
      if (n == 1) return -1;
      if (n > 1) o += flush_chunk(out + o, chunk, n);
      return done();
    }
    unsigned char c = p[i++];
    if (c == '=') {
      // Padding: needs at least two sextets; "xx" needs "==", "xxx" needs "="; then only
      // whitespace may follow.
      if (n < 2) return -1;
      i = skip_ws(s, i);
      if (n == 2) {
        if (i == size || s[i] != '=') return -1;
        i = skip_ws(s, i + 1);
      }
      if (i < size) return -1;
      o += flush_chunk(out + o, chunk, n);
      return done();
    }
    std::int8_t v = kTable[c];
    if (v < 0) return -1;
    chunk[n++] = static_cast<std::uint32_t>(v);
    if (n == 4) {
      o += flush_chunk(out + o, chunk, 4);
      n = 0;
    }
  }
}

std::optional<Bytes> base64url_decode(std::string_view s) {
  Bytes out(base64url_decoded_max(s.size()));
  std::ptrdiff_t n = base64url_decode_to(s, out.data());
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace tp::token
