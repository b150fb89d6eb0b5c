#include "tp/lib0/decoding.hpp"

#include <cstring>

namespace tp::lib0 {

bool is_valid_utf8(ByteView b) {
  std::size_t i = 0;
  while (i < b.size) {
    std::uint8_t c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > b.size) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((b[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

void Decoder::fail(std::string code, std::string message) {
  if (ok()) error_ = Error{std::move(code), std::move(message)};
}

std::uint8_t Decoder::read_u8() {
  if (!ok()) return 0;
  if (pos_ >= data_.size) {
    fail("truncated", "Unexpected end of array");
    return 0;
  }
  return data_[pos_++];
}

// lib0 semantics: the running value is range-checked only while the continuation bit is set, so
// the final byte may lift it above 2^53-1 (an 8-byte value up to 2^56-1 reads fine), and
// non-minimal forms (8000 = 0) are accepted. Beyond lib0: a value that does not fit 64 bits (only
// reachable through long non-minimal forms) is "integer_out_of_range" instead of an imprecise double.
static bool add_septet(std::uint64_t& value, std::uint64_t part, unsigned shift) {
  if (part == 0) return true;
  if (shift >= 64 || (shift > 0 && (part >> (64 - shift)) != 0)) return false;
  value |= part << shift;
  return true;
}

std::uint64_t Decoder::read_var_uint() {
  std::uint64_t value = 0;
  unsigned shift = 0;
  while (ok()) {
    if (pos_ >= data_.size) {
      fail("truncated", "Unexpected end of array");
      return 0;
    }
    std::uint8_t b = data_[pos_++];
    if (!add_septet(value, b & 0x7f, shift)) {
      fail("integer_out_of_range", "Integer out of Range");
      return 0;
    }
    if (b < 0x80) return value;
    if (value > kMaxSafeInteger) {
      fail("integer_out_of_range", "Integer out of Range");
      return 0;
    }
    if (shift < 64) shift += 7;
  }
  return 0;
}

std::int64_t Decoder::read_var_int(bool* negative_zero) {
  if (negative_zero) *negative_zero = false;
  std::uint8_t first = read_u8();
  if (!ok()) return 0;
  std::uint64_t magnitude = first & 0x3f;
  bool negative = (first & 0x40) != 0;
  unsigned shift = 6;
  bool more = (first & 0x80) != 0;
  while (more && ok()) {
    if (pos_ >= data_.size) {
      fail("truncated", "Unexpected end of array");
      return 0;
    }
    std::uint8_t b = data_[pos_++];
    // The result must fit int64 (|v| < 2^63), one bit less than varUint.
    if (!add_septet(magnitude, b & 0x7f, shift) || magnitude > (std::uint64_t{1} << 63) - 1) {
      fail("integer_out_of_range", "Integer out of Range");
      return 0;
    }
    more = (b & 0x80) != 0;
    if (more && magnitude > kMaxSafeInteger) {
      fail("integer_out_of_range", "Integer out of Range");
      return 0;
    }
    if (shift < 64) shift += 7;
  }
  if (negative && magnitude == 0 && negative_zero) *negative_zero = true;
  return negative ? -static_cast<std::int64_t>(magnitude) : static_cast<std::int64_t>(magnitude);
}

ByteView Decoder::read_raw(std::size_t n) {
  if (!ok()) return {};
  if (n > data_.size - pos_) {
    fail("length_out_of_range", "Declared length " + std::to_string(n) + " exceeds the " +
                                    std::to_string(data_.size - pos_) + " bytes left");
    return {};
  }
  ByteView out = data_.sub(pos_, n);
  pos_ += n;
  return out;
}

ByteView Decoder::read_var_bytes() {
  std::uint64_t n = read_var_uint();
  if (!ok()) return {};
  return read_raw(static_cast<std::size_t>(n));
}

std::string_view Decoder::read_var_string_view() {
  ByteView b = read_var_bytes();
  if (!ok()) return {};
  if (!is_valid_utf8(b)) {
    fail("invalid_utf8", "The encoded data was not valid for encoding utf-8");
    return {};
  }
  return {reinterpret_cast<const char*>(b.data), b.size};
}

static std::uint64_t read_be(Decoder& d, int nbytes) {
  ByteView b = d.read_raw(static_cast<std::size_t>(nbytes));
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < b.size; ++i) v = (v << 8) | b[i];
  return v;
}

float Decoder::read_float32_be() {
  std::uint32_t bits = static_cast<std::uint32_t>(read_be(*this, 4));
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double Decoder::read_float64_be() {
  std::uint64_t bits = read_be(*this, 8);
  double f;
  std::memcpy(&f, &bits, 8);
  return f;
}

std::int64_t Decoder::read_int64_be() { return static_cast<std::int64_t>(read_be(*this, 8)); }

}  // namespace tp::lib0
