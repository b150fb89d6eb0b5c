// Private helpers: turn signed bytes into JSON the way JavaScript does (TextDecoder, then
// JSON.parse), so the C++ view of a token agrees with the reference on what is valid.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tp/common/bytes.hpp"

namespace tp::token {

// TextDecoder("utf-8") semantics: invalid sequences become U+FFFD (maximal subparts, as the
// Encoding Standard specifies) and one leading BOM is removed. The result is valid UTF-8.
std::string decode_utf8_like_js(ByteView bytes);

// JSON.parse semantics on valid UTF-8 text: duplicate keys keep the last value; escaped lone
// surrogates are accepted (the C++ value holds U+FFFD there); numbers overflowing a double are
// accepted (held as +-DBL_MAX, which compares like +-Infinity against any timestamp); a BOM is
// NOT skipped (JSON.parse rejects U+FEFF). nullopt when JSON.parse would throw.
std::optional<nlohmann::json> parse_json_like_js(std::string_view text);

// What verification needs from a claims set, found in one allocation-free pass that also
// decides whether JSON.parse would accept the text. Only top-level members count; for a key
// present several times the last one wins (as JSON.parse does); keys and string values are
// compared after unescaping.
struct ClaimScan {
  enum class Kind : std::uint8_t { absent, string, number, array, other };
  struct Claim {
    Kind kind = Kind::absent;
    double number = 0;     // Kind::number (overflow gives +-Infinity, like JS)
    bool matches = false;  // string equal to the expected value, or array containing it
  };
  bool object = false;  // valid JSON whose top-level value is an object
  Claim iss, aud, iat, nbf, exp;
};
ClaimScan scan_claims(std::string_view text, std::string_view issuer, std::string_view audience);

}  // namespace tp::token
