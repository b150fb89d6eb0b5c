// Private building blocks of the Y.js update algebra: a sticky status shared by every reader of
// one operation, an inline byte reader/writer (the hot path of merge/diff), strings as views with
// their UTF-16 length, and the JSON / lib0-any helpers. Not part of the public interface.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <new>
#include <string>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"

namespace tp::yjs::detail {

#if defined(__GNUC__) || defined(__clang__)
#define TP_YJS_INLINE __attribute__((always_inline)) inline
#define TP_YJS_NOINLINE __attribute__((noinline))
#else
#define TP_YJS_INLINE inline
#define TP_YJS_NOINLINE
#endif

constexpr std::uint64_t kMaxSafe = (std::uint64_t{1} << 53) - 1;
constexpr int kMaxDepth = 256;  // nesting of any/JSON values

enum class Code : std::uint8_t {
  ok,
  truncated,
  integer_out_of_range,
  invalid_utf8,
  length_out_of_range,
  unknown_content_ref,
  unknown_type_ref,
  unknown_any_tag,
  invalid_json,
  invalid_parent_info,
  trailing_bytes,
  column_exhausted,
  column_trailing_data,
  zero_length_struct,
  clock_overflow,
  invalid_delete_set,
  too_many_structs,
  nesting_too_deep,
  unsupported_feature_flag,
  duplicate_client,
  invalid_state_vector,
  unencodable_value,
};

const char* code_name(Code c);

// First failure wins; later reads return zeros and every loop checks ok().
struct Status {
  Code code = Code::ok;
  std::string detail;
  bool ok() const { return code == Code::ok; }
  // Out of line: error paths must not weigh on the hot loops that can fail (in wasm an inlined
  // std::string costs every call a stack frame).
  TP_YJS_NOINLINE void fail(Code c, std::string d) {
    if (code == Code::ok) {
      code = c;
      detail = std::move(d);
    }
  }
  TP_YJS_NOINLINE void fail(Code c, const char* d = "") {
    if (code == Code::ok) fail(c, std::string(d));
  }
  Error to_error(const char* where) const;
};

// ---- reading ---------------------------------------------------------------------------------
struct Reader {
  const std::uint8_t* p = nullptr;
  const std::uint8_t* e = nullptr;
  Status* st = nullptr;

  Reader() = default;
  Reader(ByteView b, Status* s) : p(b.data), e(b.data + b.size), st(s) {}

  std::size_t left() const { return static_cast<std::size_t>(e - p); }
  bool empty() const { return p >= e; }
  TP_YJS_NOINLINE void stop(Code c, const char* d = "") {
    st->fail(c, d);
    p = e;
  }
  TP_YJS_NOINLINE void stop(Code c, std::string d) {
    st->fail(c, std::move(d));
    p = e;
  }
  TP_YJS_NOINLINE void stop_length(std::uint64_t n) {
    stop(Code::length_out_of_range,
         "declared length " + std::to_string(n) + " exceeds the " + std::to_string(left()) + " bytes left");
  }
  std::uint8_t u8() {
    if (p >= e) {
      stop(Code::truncated);
      return 0;
    }
    return *p++;
  }
  // Varints of up to 3 bytes are decoded without data-dependent branches (clock deltas in V2
  // columns have random lengths, and mispredicted length branches dominated the column reads).
  std::uint32_t peek3() const { return p[0] | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16); }
  static int ctz32(std::uint32_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(x);
#else
    int n = 0;
    while (!(x & 1)) x >>= 1, ++n;
    return n;
#endif
  }
  std::uint64_t vu() {
    if (p < e && *p < 0x80) return *p++;
    if (e - p >= 3) {
      std::uint32_t x = peek3(), stop = ~x & 0x808080u;
      if (stop) {
        int len = (ctz32(stop) >> 3) + 1;  // 1..3 bytes
        std::uint32_t v = (x & 0x7fu) | ((x >> 1) & (0x7fu << 7)) | ((x >> 2) & (0x7fu << 14));
        p += len;
        return v & ((1u << (7 * len)) - 1);
      }
    }
    return vu_slow();
  }
  std::uint64_t vu_slow();
  // lib0 varInt: sign-magnitude; returns the magnitude, `neg` tells the sign (also for -0).
  std::uint64_t vi(bool& neg) {
    if (e - p >= 3) {
      std::uint32_t x = peek3(), stop = ~x & 0x808080u;
      if (stop) {
        int len = (ctz32(stop) >> 3) + 1;  // 1..3 bytes
        std::uint32_t v = (x & 0x3fu) | ((x >> 2) & (0x7fu << 6)) | ((x >> 3) & (0x7fu << 13));
        neg = (x & 0x40) != 0;
        p += len;
        return v & ((1u << (7 * len - 1)) - 1);
      }
    }
    std::uint64_t v = vi_slow();
    neg = last_neg;
    return v;
  }
  bool last_neg = false;  // sign of the last vi_slow() value
  std::uint64_t vi_slow();
  ByteView raw(std::uint64_t n) {
    if (n > left()) {
      stop_length(n);
      return {};
    }
    ByteView b(p, static_cast<std::size_t>(n));
    p += n;
    return b;
  }
  ByteView vbytes() { return raw(vu()); }
};

// ---- writing ---------------------------------------------------------------------------------
// A byte buffer that grows ahead (malloc/realloc, no zero-fill): `room(k)` makes k bytes
// writable, then writes go through a raw pointer with no per-byte capacity check.
struct Out {
  std::uint8_t* buf = nullptr;
  std::uint8_t* cur = nullptr;
  std::uint8_t* lim = nullptr;

  Out() = default;
  Out(const Out&) = delete;
  Out& operator=(const Out&) = delete;
  Out(Out&& o) noexcept : buf(o.buf), cur(o.cur), lim(o.lim) { o.buf = o.cur = o.lim = nullptr; }
  Out& operator=(Out&& o) noexcept {
    if (this != &o) {
      std::free(buf);
      buf = o.buf;
      cur = o.cur;
      lim = o.lim;
      o.buf = o.cur = o.lim = nullptr;
    }
    return *this;
  }
  ~Out() { std::free(buf); }

  std::uint8_t* room(std::size_t k) {
    if (static_cast<std::size_t>(lim - cur) < k) grow(k);
    return cur;
  }
  void grow(std::size_t k) {
    std::size_t n = size(), want = n + k, cap = 2 * static_cast<std::size_t>(lim - buf);
    if (cap < 64) cap = 64;
    if (cap < want) cap = want;
    auto* nb = static_cast<std::uint8_t*>(std::realloc(buf, cap));
    if (!nb) throw std::bad_alloc();
    buf = nb;
    cur = nb + n;
    lim = nb + cap;
  }
  void reserve(std::size_t k) { room(k); }
  void u8(std::uint8_t v) { *room(1) = v, ++cur; }
  // lib0 varUint; up to 3 bytes without data-dependent branches (4 bytes stored, len kept).
  void vu(std::uint64_t v) {
    std::uint8_t* q = room(10);
    if (v < (1u << 21)) {
      auto x = static_cast<std::uint32_t>(v);
      std::uint32_t two = x >= 0x80, three = x >= (1u << 14);
      std::uint32_t w = (x & 0x7f) | (two << 7) | ((x << 1) & (0x7fu << 8)) | (three << 15) |
                        ((x << 2) & (0x7fu << 16));
      q[0] = static_cast<std::uint8_t>(w);
      q[1] = static_cast<std::uint8_t>(w >> 8);
      q[2] = static_cast<std::uint8_t>(w >> 16);
      cur = q + 1 + two + three;
      return;
    }
    while (v > 0x7f) {
      *q++ = static_cast<std::uint8_t>(0x80 | (v & 0x7f));
      v >>= 7;
    }
    *q++ = static_cast<std::uint8_t>(v);
    cur = q;
  }
  // lib0 varInt from magnitude and sign; up to 3 bytes without data-dependent branches.
  TP_YJS_INLINE void vi(std::uint64_t mag, bool neg) {
    std::uint8_t* q = room(10);
    if (mag < (1u << 20)) {
      auto x = static_cast<std::uint32_t>(mag);
      std::uint32_t two = x >= 0x40, three = x >= (1u << 13);
      std::uint32_t w = (x & 0x3f) | (std::uint32_t{neg} << 6) | (two << 7) |
                        ((x << 2) & (0x7fu << 8)) | (three << 15) | ((x << 3) & (0x7fu << 16));
      q[0] = static_cast<std::uint8_t>(w);
      q[1] = static_cast<std::uint8_t>(w >> 8);
      q[2] = static_cast<std::uint8_t>(w >> 16);
      cur = q + 1 + two + three;
      return;
    }
    *q++ = static_cast<std::uint8_t>(0x80 | (neg ? 0x40 : 0) | (mag & 0x3f));
    mag >>= 6;
    while (mag > 0) {
      *q++ = static_cast<std::uint8_t>((mag > 0x7f ? 0x80 : 0) | (mag & 0x7f));
      mag >>= 7;
    }
    cur = q;
  }
  void vi_signed(std::int64_t v) {
    vi(v < 0 ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v), v < 0);
  }
  void raw(const std::uint8_t* p, std::size_t k) {
    if (k == 0) return;
    std::memcpy(room(k), p, k);
    cur += k;
  }
  void raw(ByteView v) { raw(v.data, v.size); }
  std::size_t size() const { return static_cast<std::size_t>(cur - buf); }
  const std::uint8_t* data() const { return buf; }
  // A copy of the written bytes; the Out is empty afterwards (and keeps its buffer).
  Bytes take() {
    Bytes r(buf, cur);
    cur = buf;
    return r;
  }
};

// ---- strings ---------------------------------------------------------------------------------
// UTF-8 bytes plus the UTF-16 length yjs counts in. A string cut inside a surrogate pair (yjs
// slices JS strings) carries the half as a 3-byte WTF-8 sequence (ED A0..BF xx); `wtf` marks
// those, and encoders turn halves into U+FFFD (or rejoin a pair) the way TextEncoder would.
struct Str {
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;    // bytes
  std::size_t u16 = 0;  // UTF-16 code units
  bool wtf = false;
  ByteView view() const { return {p, n}; }
};

// Owned bytes that Str views point into; element addresses are stable.
struct Arena {
  std::deque<Bytes> bufs;
  Str keep(Bytes&& b, std::size_t u16, bool wtf) {
    bufs.push_back(std::move(b));
    const Bytes& k = bufs.back();
    return Str{k.data(), k.size(), u16, wtf};
  }
};

// Strict UTF-8 check (no surrogates, no overlongs) that also counts UTF-16 units.
bool utf8_scan(const std::uint8_t* p, std::size_t n, std::size_t* u16, bool* ascii = nullptr);

// A cursor over WTF-8 text in UTF-16 units (may stop between the halves of a pair).
struct U16Cursor {
  std::size_t byte = 0;
  bool mid = false;  // between the high and low half of the 4-byte sequence at `byte`
};
// Advances `n` units; false when the text ends first.
bool u16_advance(const std::uint8_t* p, std::size_t size, U16Cursor& c, std::size_t n);
// The text between two cursors as a Str (zero-copy unless a cursor sits mid-pair).
Str u16_substr(const std::uint8_t* p, const U16Cursor& a, const U16Cursor& b, std::size_t u16,
               Arena& arena);
// JS `str.slice(k)` and ContentString.splice(k)'s right half.
Str str_slice_from(const Str& s, std::size_t k, Arena& arena);
Str str_splice_right(const Str& s, std::size_t k, Arena& arena);
// Appends WTF-8 text as the UTF-8 TextEncoder would produce (halves -> U+FFFD, pairs rejoined).
void append_utf8(Out& out, const std::uint8_t* p, std::size_t n);

// ---- lib0 any / JSON -------------------------------------------------------------------------
// Validates one lib0 `any` value and moves past it.
void skip_any(Reader& r, int depth = 0);
// JSON text as yjs holds it (ContentJSON entries, V1 embeds/format values).
bool json_valid(const Str& s);
// JSON.stringify(JSON.parse(s)).
void json_canonical(const Str& s, Out& out, Status& st);
// writeAny(JSON.parse(s)).
void json_to_any(const Str& s, Out& out, Status& st);
// JSON.stringify(readAny(r)) (text appended to out, no length prefix).
void any_to_json(Reader& r, Out& out, Status& st);

}  // namespace tp::yjs::detail
