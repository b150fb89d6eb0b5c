// Verification and minting of Teleportal's HS256 tokens. The order of checks and the error
// strings reproduce jose 6.2.3's jwtVerify as Teleportal calls it (spec section 2.2), so the
// first failing check reports what the reference would report.
#include "tp/token/token.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base64url.hpp"
#include "json_text.hpp"

namespace tp::token {
namespace {

using nlohmann::json;

constexpr std::string_view kHs256Header = "eyJhbGciOiJIUzI1NiJ9";  // {"alg":"HS256"}

void ensure_sodium() {
  static const bool ready = [] { return sodium_init() >= 0; }();
  (void)ready;
}

std::string_view message_of(ErrorCode c) {
  switch (c) {
    case ErrorCode::none:
      return "";
    case ErrorCode::not_a_string:
      return "Compact JWS must be a string or Uint8Array";
    case ErrorCode::invalid_compact_jws:
      return "Invalid Compact JWS";
    case ErrorCode::header_invalid:
      return "JWS Protected Header is invalid";
    case ErrorCode::crit_invalid:
      return "\"crit\" (Critical) Header Parameter MUST be an array of non-empty strings when "
             "present";
    case ErrorCode::crit_unrecognized:
      return "Extension Header Parameter is not recognized";
    case ErrorCode::crit_missing:
      return "Extension Header Parameter is missing";
    case ErrorCode::b64_invalid:
      return "The \"b64\" (base64url-encode payload) Header Parameter must be a boolean";
    case ErrorCode::alg_invalid:
      return "JWS \"alg\" (Algorithm) Header Parameter missing or invalid";
    case ErrorCode::alg_not_allowed:
      return "\"alg\" (Algorithm) Header Parameter value not allowed";
    case ErrorCode::payload_not_ascii:
      return "non-ASCII string encountered in encode()";
    case ErrorCode::signature_decode:
      return "Failed to base64url decode the signature";
    case ErrorCode::key_empty:
      return "Zero-length key is not supported";
    case ErrorCode::signature_invalid:
      return "signature verification failed";
    case ErrorCode::payload_decode:
      return "Failed to base64url decode the payload";
    case ErrorCode::unencoded_payload:
      return "JWTs MUST NOT use unencoded payload";
    case ErrorCode::claims_invalid:
      return "JWT Claims Set must be a top-level JSON object";
    case ErrorCode::iss_missing:
      return "missing required \"iss\" claim";
    case ErrorCode::aud_missing:
      return "missing required \"aud\" claim";
    case ErrorCode::iss_invalid:
      return "unexpected \"iss\" claim value";
    case ErrorCode::aud_invalid:
      return "unexpected \"aud\" claim value";
    case ErrorCode::iat_invalid:
      return "\"iat\" claim must be a number";
    case ErrorCode::nbf_invalid:
      return "\"nbf\" claim must be a number";
    case ErrorCode::nbf_in_future:
      return "\"nbf\" claim timestamp check failed";
    case ErrorCode::exp_invalid:
      return "\"exp\" claim must be a number";
    case ErrorCode::expired:
      return "\"exp\" claim timestamp check failed";
  }
  return "unknown error";
}

VerifyResult fail(ErrorCode c, std::string message = {}) {
  VerifyResult r;
  r.code = c;
  r.error = message.empty() ? std::string(message_of(c)) : std::move(message);
  return r;
}

// One JSON value as JSON.stringify writes a string (UTF-8 kept, controls escaped).
std::string json_string(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// A number as JSON.stringify writes it, for the values tokens carry (integral seconds, or
// ordinary fractions). Non-finite numbers become null, as in JS.
std::string js_number(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == 0) return "0";
  if (v == std::floor(v) && std::fabs(v) < 1e21) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  return json(v).dump();
}

// The checks after the signature: jose's validateClaimsSet with Teleportal's options. One
// allocation-free scan decides validity and finds the claims; the payload DOM is built only
// when asked for.
VerifyResult check_claims(std::string payload_text, const VerifyOptions& o, double now_seconds) {
  using Kind = ClaimScan::Kind;
  const ClaimScan c = scan_claims(payload_text, o.issuer, o.audience);
  if (!c.object) return fail(ErrorCode::claims_invalid);
  // Presence first (iss before aud), then values.
  if (c.iss.kind == Kind::absent) return fail(ErrorCode::iss_missing);
  if (c.aud.kind == Kind::absent) return fail(ErrorCode::aud_missing);
  if (!o.issuer.empty() && !(c.iss.kind == Kind::string && c.iss.matches))
    return fail(ErrorCode::iss_invalid);
  if (!o.audience.empty() &&
      !((c.aud.kind == Kind::string || c.aud.kind == Kind::array) && c.aud.matches))
    return fail(ErrorCode::aud_invalid);
  const double now = std::floor(now_seconds);
  if (c.iat.kind != Kind::absent && c.iat.kind != Kind::number) return fail(ErrorCode::iat_invalid);
  if (c.nbf.kind != Kind::absent) {
    if (c.nbf.kind != Kind::number) return fail(ErrorCode::nbf_invalid);
    if (c.nbf.number > now) return fail(ErrorCode::nbf_in_future);
  }
  if (c.exp.kind != Kind::absent) {
    if (c.exp.kind != Kind::number) return fail(ErrorCode::exp_invalid);
    if (c.exp.number <= now) return fail(ErrorCode::expired);
  }
  VerifyResult r;
  if (o.build_payload) {
    std::optional<json> parsed = parse_json_like_js(payload_text);
    if (!parsed || !parsed->is_object()) return fail(ErrorCode::claims_invalid);  // defensive
    r.payload = std::move(*parsed);
  }
  r.valid = true;
  r.payload_text = std::move(payload_text);
  return r;
}

// Steps 3-6 for a header other than the common {"alg":"HS256"}: decoding, crit/b64, alg.
// Returns a failure, or a result with code none and the b64 flags set.
VerifyResult check_header(std::string_view h64, bool& b64, bool& crit_has_b64) {
  json header = json::object();  // an empty segment means {}
  if (!h64.empty()) {
    std::optional<Bytes> raw = base64url_decode(h64);
    if (!raw) return fail(ErrorCode::header_invalid);
    std::optional<json> parsed = parse_json_like_js(decode_utf8_like_js(ByteView(*raw)));
    if (!parsed) return fail(ErrorCode::header_invalid);
    header = std::move(*parsed);
  }
  const bool header_is_object = header.is_object();

  // 4: crit (only "b64" is understood), then the b64 parameter's type.
  if (header_is_object) {
    auto crit = header.find("crit");
    if (crit != header.end()) {
      if (!crit->is_array() || crit->empty()) return fail(ErrorCode::crit_invalid);
      for (const json& c : *crit)
        if (!c.is_string() || c.get_ref<const std::string&>().empty())
          return fail(ErrorCode::crit_invalid);
      for (const json& c : *crit) {
        const std::string& name = c.get_ref<const std::string&>();
        if (name != "b64")
          return fail(ErrorCode::crit_unrecognized,
                      "Extension Header Parameter \"" + name + "\" is not recognized");
        if (!header.contains("b64"))
          return fail(ErrorCode::crit_missing, "Extension Header Parameter \"b64\" is missing");
      }
      crit_has_b64 = true;
      const json& v = header["b64"];
      if (!v.is_boolean()) return fail(ErrorCode::b64_invalid);
      b64 = v.get<bool>();
    }
  }

  // 5-6: alg must be exactly "HS256".
  if (!header_is_object) return fail(ErrorCode::alg_invalid);
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || alg->get_ref<const std::string&>().empty())
    return fail(ErrorCode::alg_invalid);
  if (alg->get_ref<const std::string&>() != "HS256") return fail(ErrorCode::alg_not_allowed);
  return VerifyResult{};
}

// The whole jwtVerify pipeline. `state` is the HMAC key schedule (null: compute from the key).
VerifyResult verify_impl(std::string_view token, const VerifyOptions& o,
                         const crypto_auth_hmacsha256_state* state, double now_seconds) {
  // 1-2: three segments, split on '.' like String.prototype.split.
  std::size_t d1 = token.find('.');
  if (d1 == std::string_view::npos) return fail(ErrorCode::invalid_compact_jws);
  std::size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return fail(ErrorCode::invalid_compact_jws);
  std::string_view h64 = token.substr(0, d1);
  std::string_view p64 = token.substr(d1 + 1, d2 - d1 - 1);
  std::string_view s64 = token.substr(d2 + 1);

  // 3-6: the protected header. The one every minter writes, {"alg":"HS256"}, is recognised
  // from its encoding without decoding it.
  bool b64 = true;
  bool crit_has_b64 = false;
  if (h64 != kHs256Header) {
    VerifyResult bad = check_header(h64, b64, crit_has_b64);
    if (bad.code != ErrorCode::none) return bad;
  }

  // The payload is decoded here, before the signature is checked, so that its characters
  // are looked at once; a decoding failure is only reported after the signature (step 9).
  std::string payload_text;
  bool payload_ok = false;
  bool payload_ascii = true;
  if (b64) {
    payload_text.resize(base64url_decoded_max(p64.size()));
    auto* out = reinterpret_cast<std::uint8_t*>(payload_text.data());
    std::ptrdiff_t n = base64url_decode_to(p64, out, &payload_ascii);
    payload_ok = n >= 0;
    if (payload_ok) {
      payload_text.resize(static_cast<std::size_t>(n));  // p64 was ASCII: it decoded
    } else {
      // jose turns the encoded payload into ASCII bytes and rejects anything else.
      for (char c : p64)
        if (static_cast<unsigned char>(c) > 127) return fail(ErrorCode::payload_not_ascii);
    }
  }

  // 7-8: signature (43 characters when well formed).
  std::uint8_t sig_small[base64url_decoded_max(64)];
  std::optional<Bytes> sig_large;
  const std::uint8_t* sig = sig_small;
  std::ptrdiff_t sig_size = -1;
  if (s64.size() <= 64) {
    sig_size = base64url_decode_to(s64, sig_small);
  } else if ((sig_large = base64url_decode(s64))) {
    sig = sig_large->data();
    sig_size = static_cast<std::ptrdiff_t>(sig_large->size());
  }
  if (sig_size < 0) return fail(ErrorCode::signature_decode);
  if (o.secret.empty()) return fail(ErrorCode::key_empty);
  ensure_sodium();
  crypto_auth_hmacsha256_state st;
  if (state) {
    st = *state;
  } else {
    crypto_auth_hmacsha256_init(&st, o.secret.data(), o.secret.size());
  }
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(token.data()), d2);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_memzero(&st, sizeof st);
  if (sig_size != static_cast<std::ptrdiff_t>(sizeof mac) ||
      sodium_memcmp(sig, mac, sizeof mac) != 0)
    return fail(ErrorCode::signature_invalid);

  // 9-10: payload bytes.
  if (b64) {
    if (!payload_ok) return fail(ErrorCode::payload_decode);
  } else if (crit_has_b64) {
    return fail(ErrorCode::unencoded_payload);
  }
  // 11-18: claims, on the text TextDecoder would produce (the bytes themselves when ASCII).
  if (!payload_ascii) payload_text = decode_utf8_like_js(ByteView(std::string_view(payload_text)));
  return check_claims(std::move(payload_text), o, now_seconds);
}

}  // namespace

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::none:
      return "none";
    case ErrorCode::not_a_string:
      return "not_a_string";
    case ErrorCode::invalid_compact_jws:
      return "invalid_compact_jws";
    case ErrorCode::header_invalid:
      return "header_invalid";
    case ErrorCode::crit_invalid:
      return "crit_invalid";
    case ErrorCode::crit_unrecognized:
      return "crit_unrecognized";
    case ErrorCode::crit_missing:
      return "crit_missing";
    case ErrorCode::b64_invalid:
      return "b64_invalid";
    case ErrorCode::alg_invalid:
      return "alg_invalid";
    case ErrorCode::alg_not_allowed:
      return "alg_not_allowed";
    case ErrorCode::payload_not_ascii:
      return "payload_not_ascii";
    case ErrorCode::signature_decode:
      return "signature_decode";
    case ErrorCode::key_empty:
      return "key_empty";
    case ErrorCode::signature_invalid:
      return "signature_invalid";
    case ErrorCode::payload_decode:
      return "payload_decode";
    case ErrorCode::unencoded_payload:
      return "unencoded_payload";
    case ErrorCode::claims_invalid:
      return "claims_invalid";
    case ErrorCode::iss_missing:
      return "iss_missing";
    case ErrorCode::aud_missing:
      return "aud_missing";
    case ErrorCode::iss_invalid:
      return "iss_invalid";
    case ErrorCode::aud_invalid:
      return "aud_invalid";
    case ErrorCode::iat_invalid:
      return "iat_invalid";
    case ErrorCode::nbf_invalid:
      return "nbf_invalid";
    case ErrorCode::nbf_in_future:
      return "nbf_in_future";
    case ErrorCode::exp_invalid:
      return "exp_invalid";
    case ErrorCode::expired:
      return "expired";
  }
  return "unknown";
}

VerifyResult verify(std::string_view token, const VerifyOptions& options, double now_seconds) {
  return verify_impl(token, options, nullptr, now_seconds);
}

VerifyResult not_a_string_result() { return fail(ErrorCode::not_a_string); }

Verifier::Verifier(VerifyOptions options) : options_(std::move(options)) {
  ensure_sodium();
  // An empty key is refused at verify time; libsodium must still never see a null pointer.
  static const unsigned char kNoKey = 0;
  const unsigned char* key = options_.secret.empty() ? &kNoKey : options_.secret.data();
  crypto_auth_hmacsha256_init(&state_, key, options_.secret.size());
}

VerifyResult Verifier::verify(std::string_view token, double now_seconds) const {
  return verify_impl(token, options_, &state_, now_seconds);
}

Result<std::string> mint_text(std::string_view user_id, std::string_view room,
                              std::string_view document_access_json, const MintOptions& o,
                              double now_seconds) {
  if (o.secret.empty())
    return make_error("key_empty", std::string(message_of(ErrorCode::key_empty)));
  if (!json::accept(document_access_json))
    return make_error("invalid_document_access", "documentAccess must be valid JSON text");
  if (!std::isfinite(o.expires_in) || !std::isfinite(now_seconds))
    return make_error("invalid_expires_in", "expiresIn and the clock must be finite numbers");
  const double now = std::floor(now_seconds);
  std::string payload;
  payload.reserve(160 + user_id.size() + room.size() + document_access_json.size());
  payload += "{\"userId\":";
  payload += json_string(user_id);
  payload += ",\"room\":";
  payload += json_string(room);
  payload += ",\"documentAccess\":";
  payload += document_access_json;
  payload += ",\"exp\":";
  payload += js_number(now + o.expires_in);
  payload += ",\"iat\":";
  payload += js_number(now);
  payload += ",\"iss\":";
  payload += json_string(o.issuer);
  payload += ",\"aud\":";
  payload += json_string(o.audience);
  payload += '}';

  // base64url of {"alg":"HS256"}
  std::string token(kHs256Header);
  token += '.';
  token += base64url_encode(ByteView(std::string_view(payload)));
  ensure_sodium();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, o.secret.data(), o.secret.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(token.data()),
                                token.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, mac);
  token += '.';
  token += base64url_encode(ByteView(mac, sizeof mac));
  return token;
}

Result<std::string> mint(std::string_view user_id, std::string_view room,
                         const nlohmann::json& document_access, const MintOptions& options,
                         double now_seconds) {
  return mint_text(user_id, room,
                   document_access.dump(-1, ' ', false, json::error_handler_t::replace), options,
                   now_seconds);
}

bool is_token_expired(const nlohmann::json& payload, double now_seconds) {
  if (!payload.is_object()) return false;
  auto it = payload.find("exp");
  if (it == payload.end()) return false;
  if (!it->is_number()) return true;
  return it->get<double>() <= std::floor(now_seconds);
}

Context extract_context(const nlohmann::json& payload) {
  Context c;
  if (!payload.is_object()) return c;
  if (auto it = payload.find("userId"); it != payload.end()) c.user_id = *it;
  if (auto it = payload.find("room"); it != payload.end()) c.room = *it;
  return c;
}

}  // namespace tp::token
