// Upgrade-time authentication: which token a request carries and what its verified claims allow.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tp/common/bytes.hpp"
#include "tp/token/token.hpp"

namespace tp::server {

// The token of an upgrade request: `?token=` (URLSearchParams decoding) first, else an
// `Authorization: Bearer <token>` header (scheme case-insensitive). nullopt when neither is present.
std::optional<std::string> extract_token(std::string_view url, std::string_view authorization);

// Value of one query parameter (first occurrence), decoded like URLSearchParams.
std::optional<std::string> query_param(std::string_view url, std::string_view name);

struct UpgradeAuthOptions {
  ByteView secret;
  bool has_secret = false;  // false: no secret configured -> every upgrade is rejected
  std::string issuer = "teleportal";
  std::string audience = "teleportal";
};

struct UpgradeVerdict {
  bool ok = false;
  int status = 401;
  std::string body;        // response body for a rejection
  std::string error;       // stable code: no_secret_configured, missing_token, invalid_token
  nlohmann::json context;  // on success: the verified claims plus "token"
};

UpgradeVerdict authenticate_upgrade(std::string_view url, std::string_view authorization,
                                    const UpgradeAuthOptions& options, double now_seconds);

// The same check for many requests with one secret: the HMAC key schedule is computed once and
// the context is written as text (the claims exactly as signed, plus "token") without building
// a JSON DOM. `context_text` is set on success; `context` stays null.
class UpgradeAuthenticator {
 public:
  explicit UpgradeAuthenticator(const UpgradeAuthOptions& options);
  UpgradeVerdict authenticate(std::string_view url, std::string_view authorization, double now_seconds,
                              std::string& context_text) const;
  bool same_options(const UpgradeAuthOptions& options) const;

 private:
  UpgradeAuthOptions options_;
  Bytes secret_;
  token::Verifier verifier_;
};

}  // namespace tp::server
