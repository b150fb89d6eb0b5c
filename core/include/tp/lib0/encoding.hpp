// lib0 binary encoding primitives (the building blocks of Y.js and Teleportal frames).
#pragma once
#include <cstdint>
#include <string_view>

#include "tp/common/bytes.hpp"

namespace tp::lib0 {

class Encoder {
 public:
  Encoder() = default;
  explicit Encoder(std::size_t reserve) { buf_.reserve(reserve); }

  void write_u8(std::uint8_t v) { buf_.push_back(v); }
  void write_var_uint(std::uint64_t v);
  // lib0 varInt: sign-magnitude; `negative` allows writing -0.
  void write_var_int(std::int64_t v);
  void write_var_int_sign(std::uint64_t magnitude, bool negative);
  void write_var_string(std::string_view s);
  void write_var_bytes(ByteView b);
  void write_raw(ByteView b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
  void write_float32_be(float v);
  void write_float64_be(double v);
  void write_int64_be(std::int64_t v);

  const Bytes& bytes() const { return buf_; }
  Bytes take() { return std::move(buf_); }
  std::size_t size() const { return buf_.size(); }

 private:
  Bytes buf_;
};

}  // namespace tp::lib0
