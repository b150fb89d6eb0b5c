#include "tp/server/upgrade.hpp"

#include <algorithm>
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
  if (s.find_first_of("+%") == std::string_view::npos) return std::string(s);  // tokens: nothing to decode
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

namespace {

token::VerifyOptions text_options(const UpgradeAuthOptions& options) {
  token::VerifyOptions vo;
  vo.secret = options.secret.to_bytes();
  vo.issuer = options.issuer;
  vo.audience = options.audience;
  vo.build_payload = false;
  return vo;
}

}  // namespace

UpgradeAuthenticator::UpgradeAuthenticator(const UpgradeAuthOptions& options)
    : options_(options), secret_(options.secret.to_bytes()), verifier_(text_options(options)) {
  options_.secret = secret_;
}

bool UpgradeAuthenticator::same_options(const UpgradeAuthOptions& o) const {
  return o.has_secret == options_.has_secret && o.issuer == options_.issuer && o.audience == options_.audience &&
         o.secret.size == secret_.size() && std::equal(secret_.begin(), secret_.end(), o.secret.begin());
}

UpgradeVerdict UpgradeAuthenticator::authenticate(std::string_view url, std::string_view authorization,
                                                  double now_seconds, std::string& context_text) const {
  UpgradeVerdict v;
  if (!options_.has_secret) return authenticate_upgrade(url, authorization, options_, now_seconds);
  auto token = extract_token(url, authorization);
  if (!token) return authenticate_upgrade(url, authorization, options_, now_seconds);
  auto result = verifier_.verify(*token, now_seconds);
  if (!result.valid) {
    v.error = "invalid_token";
    v.body = "Unauthorized: invalid token (" + result.error + ")";
    return v;
  }
  v.ok = true;
  v.status = 101;
  // The claims are a JSON object (the verifier checked); "token" goes last unless the claims
  // may already name one (then the DOM decides, as authenticate_upgrade does). A verified token
  // is base64url and dots: nothing to escape.
  std::string& text = result.payload_text;
  std::size_t close = text.find_last_of('}');
  if (text.find("token") != std::string::npos || text.find('\\') != std::string::npos || close == std::string::npos) {
    nlohmann::json context = nlohmann::json::parse(text, nullptr, false);
    if (context.is_object() && !context.contains("token")) context["token"] = *token;
    context_text = context.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return v;
  }
  std::size_t open = text.find('{');
  bool empty = text.find_first_not_of(" \t\r\n", open + 1) == close;
  context_text.assign(text, 0, close);
  context_text += empty ? "\"token\":\"" : ",\"token\":\"";
  context_text += *token;
  context_text += "\"}";
  return v;
}

}  // namespace tp::server
