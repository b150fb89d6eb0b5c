#include "tp/lib0/encoding.hpp"

#include <cstring>

namespace tp::lib0 {

void Encoder::write_var_uint(std::uint64_t v) {
  while (v > 0x7f) {
    buf_.push_back(static_cast<std::uint8_t>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  buf_.push_back(static_cast<std::uint8_t>(v));
}

void Encoder::write_var_int(std::int64_t v) {
  bool negative = v < 0;
  std::uint64_t magnitude = negative ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
  write_var_int_sign(magnitude, negative);
}

void Encoder::write_var_int_sign(std::uint64_t magnitude, bool negative) {
  // First byte: continuation bit, sign bit, six value bits.
  std::uint8_t first = static_cast<std::uint8_t>((magnitude > 0x3f ? 0x80 : 0) | (negative ? 0x40 : 0) |
                                                 (magnitude & 0x3f));
  buf_.push_back(first);
  magnitude >>= 6;
  while (magnitude > 0) {
    buf_.push_back(static_cast<std::uint8_t>((magnitude > 0x7f ? 0x80 : 0) | (magnitude & 0x7f)));
    magnitude >>= 7;
  }
}

void Encoder::write_var_string(std::string_view s) {
  write_var_uint(s.size());
  buf_.insert(buf_.end(), s.begin(), s.end());
}

void Encoder::write_var_bytes(ByteView b) {
  write_var_uint(b.size);
  write_raw(b);
}

static void write_be(Bytes& buf, std::uint64_t bits, int nbytes) {
  for (int i = nbytes - 1; i >= 0; --i) buf.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
}

void Encoder::write_float32_be(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  write_be(buf_, bits, 4);
}

void Encoder::write_float64_be(double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, 8);
  write_be(buf_, bits, 8);
}

void Encoder::write_int64_be(std::int64_t v) { write_be(buf_, static_cast<std::uint64_t>(v), 8); }

}  // namespace tp::lib0
