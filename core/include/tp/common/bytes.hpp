// Byte buffers and views shared by every core module.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tp {

using Bytes = std::vector<std::uint8_t>;

// A non-owning view of contiguous bytes (C++17 has no std::span).
struct ByteView {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;

  constexpr ByteView() = default;
  constexpr ByteView(const std::uint8_t* d, std::size_t n) : data(d), size(n) {}
  ByteView(const Bytes& b) : data(b.data()), size(b.size()) {}  // NOLINT: implicit on purpose
  explicit ByteView(std::string_view s)
      : data(reinterpret_cast<const std::uint8_t*>(s.data())), size(s.size()) {}

  const std::uint8_t* begin() const { return data; }
  const std::uint8_t* end() const { return data + size; }
  bool empty() const { return size == 0; }
  std::uint8_t operator[](std::size_t i) const { return data[i]; }
  ByteView sub(std::size_t off, std::size_t n) const { return {data + off, n}; }
  Bytes to_bytes() const { return Bytes(begin(), end()); }
};

std::string to_hex(ByteView bytes);
// Accepts upper or lower case, optional whitespace between bytes; nullopt on odd length/bad digit.
std::optional<Bytes> from_hex(std::string_view hex);

}  // namespace tp
