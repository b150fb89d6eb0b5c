// Private: base64url decoding into a caller's buffer (no allocation), for the verification
// hot path. Same rules as tp::token::base64url_decode (see base64url.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tp::token {

// Bytes base64url_decode_to may write for `length` input characters.
constexpr std::size_t base64url_decoded_max(std::size_t length) { return length / 4 * 3 + 3; }

// Decodes `text` into `out` (room for base64url_decoded_max(text.size()) bytes). Returns the
// number of bytes written, or -1 where base64url_decode returns nullopt. On success `*ascii`
// (when given) tells whether every byte written is below 0x80.
std::ptrdiff_t base64url_decode_to(std::string_view text, std::uint8_t* out,
                                   bool* ascii = nullptr);

}  // namespace tp::token
