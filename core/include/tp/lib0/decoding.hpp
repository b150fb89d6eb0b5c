// lib0 binary decoding over untrusted bytes. Errors are sticky: after the first failure every
// read returns a zero value and `ok()` stays false, so callers check once per logical unit.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"

namespace tp::lib0 {

// Largest integer lib0 (JavaScript) represents exactly: 2^53 - 1.
constexpr std::uint64_t kMaxSafeInteger = (std::uint64_t{1} << 53) - 1;

bool is_valid_utf8(ByteView bytes);

class Decoder {
 public:
  explicit Decoder(ByteView bytes) : data_(bytes) {}

  bool ok() const { return error_.code.empty(); }
  const Error& error() const { return error_; }
  void fail(std::string code, std::string message);

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return ok() ? data_.size - pos_ : 0; }
  bool has_more() const { return remaining() > 0; }
  ByteView rest() const { return ok() ? data_.sub(pos_, data_.size - pos_) : ByteView{}; }
  ByteView source() const { return data_; }

  std::uint8_t read_u8();
  std::uint64_t read_var_uint();
  // Returns magnitude and sign separately so -0 survives; `read_var_int` folds them.
  std::int64_t read_var_int(bool* negative_zero = nullptr);
  // Zero-copy view into the source bytes; bounds-checked against the frame.
  ByteView read_var_bytes();
  ByteView read_raw(std::size_t n);
  // Validates UTF-8 (fatal, like lib0's TextDecoder) and returns a view of the bytes.
  std::string_view read_var_string_view();
  std::string read_var_string() { return std::string(read_var_string_view()); }
  float read_float32_be();
  double read_float64_be();
  std::int64_t read_int64_be();

 private:
  ByteView data_;
  std::size_t pos_ = 0;
  Error error_;
};

}  // namespace tp::lib0
