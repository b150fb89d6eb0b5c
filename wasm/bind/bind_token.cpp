// embind glue for teleportal/token: conversion and naming only. Every result crosses as ONE
// string (no per-field crossings): "1" + payload JSON text / token on success, or
// "0" + code + "\n" + message on failure. The JS wrapper parses it (JSON.parse for payloads).
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "js_bytes.hpp"
#include "tp/token/access.hpp"
#include "tp/token/token.hpp"

namespace {

using nlohmann::json;

std::string failure(std::string_view code, std::string_view message) {
  std::string out = "0";
  out += code;
  out += '\n';
  out += message;
  return out;
}

std::string encode(const tp::token::VerifyResult& r) {
  if (r.valid) return "1" + r.payload_text;
  return failure(tp::token::error_code_name(r.code), r.error);
}

tp::Bytes bytes_of(const std::string& s) { return tp::Bytes(s.begin(), s.end()); }

// A verifier per TokenManager, used in place to avoid embind's per-character string
// conversions (they cost about as much as the HMAC for a 500-byte token): JS encodes the token with
// TextEncoder.encodeInto straight into buffer(), calls tp_token_verify_in_place(address(),
// length, now) (a plain wasm export: an embind method call costs ~0.3 us in Bun, a sixth of
// everything but the HMAC) and decodes the returned number of result bytes from the same buffer
// with TextDecoder.
class TokenVerifier {
 public:
  TokenVerifier(const std::string& secret, const std::string& issuer, const std::string& audience)
      : v_(tp::token::VerifyOptions{bytes_of(secret), issuer, audience, /*build_payload=*/false}) {}
  // Makes the buffer hold at least `capacity` bytes; returns its address in wasm memory.
  std::uintptr_t reserve(std::size_t capacity) {
    if (buffer_.size() < capacity) buffer_.resize(capacity);
    return reinterpret_cast<std::uintptr_t>(buffer_.data());
  }
  // This object's address, for tp_token_verify_in_place.
  std::uintptr_t address() { return reinterpret_cast<std::uintptr_t>(this); }
  // Verifies the first `length` bytes of the buffer and writes the encoded result over them
  // ("1" + payload JSON text, or "0" + code + "\n" + message). The result never outgrows a
  // buffer reserved at 3 * token.length + 256 (payload text is at most 3/4 of the token,
  // messages are short); it is truncated rather than overflow.
  std::size_t verify_in_place(std::size_t length, double now_seconds) {
    length = std::min(length, buffer_.size());
    tp::token::VerifyResult r = v_.verify(std::string_view(buffer_.data(), length), now_seconds);
    if (r.valid) {
      if (buffer_.empty()) return 0;
      buffer_[0] = '1';
      std::size_t n = std::min(r.payload_text.size(), buffer_.size() - 1);
      std::memcpy(buffer_.data() + 1, r.payload_text.data(), n);
      return n + 1;
    }
    std::string out = encode(r);
    std::size_t n = std::min(out.size(), buffer_.size());
    std::memcpy(buffer_.data(), out.data(), n);
    return n;
  }

 private:
  tp::token::Verifier v_;
  std::vector<char> buffer_;
};

std::string token_not_a_string() { return encode(tp::token::not_a_string_result()); }

std::string token_mint(const std::string& secret, const std::string& user_id,
                       const std::string& room, const std::string& access_json, double expires_in,
                       const std::string& issuer, const std::string& audience, double now_seconds) {
  tp::token::MintOptions o{bytes_of(secret), expires_in, issuer, audience};
  auto r = tp::token::mint_text(user_id, room, access_json, o, now_seconds);
  if (!r.ok()) return failure(r.error().code, r.error().message);
  return "1" + r.value();
}

// documentAccess arrives as JSON.stringify text ("null" when absent). Text that does not parse
// (it cannot from JSON.stringify, barring lone surrogates) denies.
bool token_has_permission(const std::string& access_json, const std::string& document,
                          const std::string& permission, bool allow_missing) {
  json access = json::parse(access_json, nullptr, false);
  if (access.is_discarded()) return false;
  tp::token::PermissionOptions o;
  o.allow_missing_document_access = allow_missing;
  return tp::token::access_has_permission(access, document, permission, o);
}

std::string token_get_permissions(const std::string& access_json, const std::string& document) {
  json access = json::parse(access_json, nullptr, false);
  if (access.is_discarded()) return "[]";
  return json(tp::token::access_permissions(access, document))
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

// kind: 0 = no exp, 1 = exp is a number (in `exp`), 2 = exp present but not a number.
bool token_is_expired(int kind, double exp, double now_seconds) {
  json payload = json::object();
  if (kind == 1) payload["exp"] = exp;  // +-Infinity compare as in JS; NaN never expires
  if (kind == 2) payload["exp"] = "not a number";
  return tp::token::is_token_expired(payload, now_seconds);
}

}  // namespace

// The hot path as a plain export (JS: core._tp_token_verify_in_place); `verifier` comes from
// TokenVerifier.address().
extern "C" EMSCRIPTEN_KEEPALIVE std::size_t tp_token_verify_in_place(std::uintptr_t verifier,
                                                                    std::size_t length,
                                                                    double now_seconds) {
  return reinterpret_cast<TokenVerifier*>(verifier)->verify_in_place(length, now_seconds);
}

EMSCRIPTEN_BINDINGS(tp_token) {
  emscripten::class_<TokenVerifier>("TokenVerifier")
      .constructor<const std::string&, const std::string&, const std::string&>()
      .function("reserve", &TokenVerifier::reserve)
      .function("address", &TokenVerifier::address)
      .function("verifyInPlace", &TokenVerifier::verify_in_place);
  emscripten::function("tokenNotAString", &token_not_a_string);
  emscripten::function("tokenMint", &token_mint);
  emscripten::function("tokenHasPermission", &token_has_permission);
  emscripten::function("tokenGetPermissions", &token_get_permissions);
  emscripten::function("tokenIsExpired", &token_is_expired);
}
