// Upgrade-time authentication: which token a request carries and what its verified claims allow.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "tp/common/bytes.hpp"

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

}  // namespace tp::server
