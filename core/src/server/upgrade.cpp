#include "tp/server/upgrade.hpp"

#include <cctype>

#include "tp/token/token.hpp"

namespace tp::server {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding, as URLSearchParams does it: '+' is a space and
// malformed %-escapes stay literal.
std::string form_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> query_param(std::string_view url, std::string_view name) {
  std::size_t q = url.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = url.substr(q + 1);
  std::size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string key = form_decode(pair.substr(0, eq));
    if (key == name) return form_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::string> extract_token(std::string_view url, std::string_view authorization) {
  if (auto t = query_param(url, "token"); t && !t->empty()) return t;
  // "Bearer" scheme, case-insensitive, then at least one space or tab.
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() > scheme.size()) {
    bool match = true;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) match = false;
    }
    std::size_t i = scheme.size();
    if (match && (authorization[i] == ' ' || authorization[i] == '\t')) {
      while (i < authorization.size() && (authorization[i] == ' ' || authorization[i] == '\t')) ++i;
      std::string_view token = authorization.substr(i);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      if (!token.empty()) return std::string(token);
    }
  }
  return std::nullopt;
}

UpgradeVerdict authenticate_upgrade(std::string_view url, std::string_view authorization,
                                    const UpgradeAuthOptions& options, double now_seconds) {
  UpgradeVerdict v;
  if (!options.has_secret) {
    v.error = "no_secret_configured";
    v.body = "Unauthorized: the server has no token secret configured";
    return v;
  }
  auto token = extract_token(url, authorization);
  if (!token) {
    v.error = "missing_token";
    v.body = "Unauthorized: no token (pass ?token= or Authorization: Bearer)";
    return v;
  }
  token::VerifyOptions vo;
  vo.secret = options.secret.to_bytes();
  vo.issuer = options.issuer;
  vo.audience = options.audience;
  auto result = token::verify(*token, vo, now_seconds);
  if (!result.valid) {
    v.error = "invalid_token";
    v.body = "Unauthorized: invalid token (" + result.error + ")";
    return v;
  }
  v.ok = true;
  v.status = 101;
  v.context = result.payload;
  if (!v.context.contains("token")) v.context["token"] = *token;
  return v;
}

}  // namespace tp::server
