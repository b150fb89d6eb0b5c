// HS256 JSON Web Tokens as Teleportal mints and verifies them (spec section 2.1/2.2).
//
// Everything here is pure: no clock, no I/O. The caller passes the current time in seconds
// (`now_seconds`, fractional allowed; it is floored like `Math.floor(Date.now() / 1000)`).
// Errors are data: every failure has a stable snake_case code and jose's message text.
#pragma once
#include <sodium.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"

namespace tp::token {

// Every reason a verification fails, in the order the checks run (spec 2.2). The wire name
// (`error_code_name`) is stable and part of the interface; the message matches jose 6.2.3.
enum class ErrorCode : std::uint8_t {
  none = 0,
  not_a_string,         // Compact JWS must be a string or Uint8Array
  invalid_compact_jws,  // Invalid Compact JWS
  header_invalid,       // JWS Protected Header is invalid
  crit_invalid,  // "crit" (Critical) Header Parameter MUST be an array of non-empty strings ...
  crit_unrecognized,  // Extension Header Parameter "X" is not recognized
  crit_missing,       // Extension Header Parameter "b64" is missing
  b64_invalid,        // The "b64" (base64url-encode payload) Header Parameter must be a boolean
  alg_invalid,        // JWS "alg" (Algorithm) Header Parameter missing or invalid
  alg_not_allowed,    // "alg" (Algorithm) Header Parameter value not allowed
  payload_not_ascii,  // non-ASCII string encountered in encode()
  signature_decode,   // Failed to base64url decode the signature
  key_empty,          // Zero-length key is not supported
  signature_invalid,  // signature verification failed
  payload_decode,     // Failed to base64url decode the payload
  unencoded_payload,  // JWTs MUST NOT use unencoded payload
  claims_invalid,     // JWT Claims Set must be a top-level JSON object
  iss_missing,        // missing required "iss" claim
  aud_missing,        // missing required "aud" claim
  iss_invalid,        // unexpected "iss" claim value
  aud_invalid,        // unexpected "aud" claim value
  iat_invalid,        // "iat" claim must be a number
  nbf_invalid,        // "nbf" claim must be a number
  nbf_in_future,      // "nbf" claim timestamp check failed
  exp_invalid,        // "exp" claim must be a number
  expired,            // "exp" claim timestamp check failed
};

// Stable snake_case name of a code ("expired", "signature_invalid", ...).
std::string_view error_code_name(ErrorCode code);

struct VerifyOptions {
  Bytes secret;                         // raw key bytes (a string secret is its UTF-8 bytes)
  std::string issuer = "teleportal";    // required claim; its value is checked when non-empty
  std::string audience = "teleportal";  // required claim; its value is checked when non-empty
  // Build VerifyResult::payload (a DOM). Off when only payload_text is needed (the wasm
  // binding hands the text to JSON.parse), which makes verification about twice as fast.
  bool build_payload = true;
};

struct VerifyResult {
  bool valid = false;
  // On success: the complete claims object (every claim, not only Teleportal's fields);
  // null when VerifyOptions::build_payload is false.
  nlohmann::json payload;
  // On success: the payload JSON text exactly as signed (UTF-8 repaired, BOM stripped). Parsing
  // it with JSON.parse gives the JS payload bit for bit (number precision, key order, duplicates).
  std::string payload_text;
  ErrorCode code = ErrorCode::none;
  std::string error;  // jose's message for `code`; empty when valid
};

// Verifies a compact JWS HS256 token. Never throws for any input.
VerifyResult verify(std::string_view token, const VerifyOptions& options, double now_seconds);

// A verifier with the HMAC key schedule computed once; verify() is then cheaper per token.
// Holds a copy of the options. Thread-compatible (const methods only after construction).
class Verifier {
 public:
  explicit Verifier(VerifyOptions options);
  VerifyResult verify(std::string_view token, double now_seconds) const;
  const VerifyOptions& options() const { return options_; }

 private:
  VerifyOptions options_;
  crypto_auth_hmacsha256_state state_{};  // key schedule after init, copied per verify
};

// Result of verify() for a value that is not a string (JS `null` from a missing query param).
VerifyResult not_a_string_result();

struct MintOptions {
  Bytes secret;
  double expires_in = 3600;
  std::string issuer = "teleportal";
  std::string audience = "teleportal";
};

// Mints `{"alg":"HS256"}.{userId,room,documentAccess,exp,iat,iss,aud}` signed with HS256, byte
// for byte what Teleportal's TokenManager (jose SignJWT) produces at the same clock.
// `document_access_json` is spliced verbatim (after checking it is one valid JSON value) so text
// from JS's JSON.stringify keeps its exact bytes; pass "[]" for none.
// Errors: "key_empty" for an empty secret, "invalid_document_access" for invalid JSON text.
Result<std::string> mint_text(std::string_view user_id, std::string_view room,
                              std::string_view document_access_json, const MintOptions& options,
                              double now_seconds);
// Same, serialising a JSON value (compact, like JSON.stringify).
Result<std::string> mint(std::string_view user_id, std::string_view room,
                         const nlohmann::json& document_access, const MintOptions& options,
                         double now_seconds);

// `isTokenExpired`, made consistent with verify(): a payload whose `exp` is a number is expired
// when exp <= floor(now); a present non-number `exp` (verify rejects it) counts as expired; no
// `exp` never expires. (The reference uses `>` and treats exp 0 as "no expiry"; see README.)
bool is_token_expired(const nlohmann::json& payload, double now_seconds);

// `extractContextFromToken`: {userId, room} copied as they are (absent -> null).
struct Context {
  nlohmann::json user_id;
  nlohmann::json room;
};
Context extract_context(const nlohmann::json& payload);

// base64url (RFC 4648 section 5) without padding, as jose encodes.
std::string base64url_encode(ByteView bytes);
// base64url decoding with Bun's Uint8Array.fromBase64({alphabet: "base64url"}) rules (the
// reference runtime): ASCII whitespace (TAB LF FF CR SP) anywhere is skipped; '+' and '/' are
// rejected; '=' padding is accepted when well placed; non-zero unused trailing bits are
// tolerated; a final chunk of one character is an error.
std::optional<Bytes> base64url_decode(std::string_view text);

}  // namespace tp::token
