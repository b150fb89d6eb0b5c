// Upgrade-time authentication: UpgradeAuthenticator (key schedule once, context as text) decides
// exactly as authenticate_upgrade does, and its context text parses to the same claims.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tp/server/upgrade.hpp"
#include "tp/token/token.hpp"

using namespace tp;
using nlohmann::json;

TEST_CASE("UpgradeAuthenticator agrees with authenticate_upgrade", "[server][upgrade]") {
  const std::string secret = "upgrade-secret";
  const double now = 1700000000;
  token::MintOptions mo;
  mo.secret.assign(secret.begin(), secret.end());
  auto mint = [&](const std::string& access) {
    auto t = token::mint_text("u1", "room-1", access, mo, now);
    REQUIRE(t);
    return t.value();
  };
  std::string good = mint(R"([{"pattern":"*","permissions":["read","write"]}])");
  std::string empty_access = mint("[]");
  mo.expires_in = -10;
  std::string expired = token::mint_text("u1", "room-1", "[]", mo, now).value();
  mo.expires_in = 3600;
  // claims that already carry a "token" (minted by hand: header.payload.signature)
  json claims = {{"userId", "u2"}, {"token", "mine"}, {"iss", "teleportal"}, {"aud", "teleportal"}, {"exp", now + 60}};
  // A token whose claims carry their own "token" (mint cannot make one): signed here.
  auto sign = [&](const json& payload) {
    std::string header = "eyJhbGciOiJIUzI1NiJ9";  // {"alg":"HS256"}
    std::string body = payload.dump();
    std::string b64;
    static const char* al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (std::size_t i = 0; i < body.size(); i += 3) {
      std::uint32_t n = static_cast<std::uint8_t>(body[i]) << 16;
      if (i + 1 < body.size()) n |= static_cast<std::uint8_t>(body[i + 1]) << 8;
      if (i + 2 < body.size()) n |= static_cast<std::uint8_t>(body[i + 2]);
      b64 += al[(n >> 18) & 63];
      b64 += al[(n >> 12) & 63];
      if (i + 1 < body.size()) b64 += al[(n >> 6) & 63];
      if (i + 2 < body.size()) b64 += al[n & 63];
    }
    std::string input = header + "." + b64;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    crypto_auth_hmacsha256_final(&st, mac);
    std::string sig;
    for (std::size_t i = 0; i < sizeof mac; i += 3) {
      std::uint32_t n = mac[i] << 16;
      if (i + 1 < sizeof mac) n |= mac[i + 1] << 8;
      if (i + 2 < sizeof mac) n |= mac[i + 2];
      sig += al[(n >> 18) & 63];
      sig += al[(n >> 12) & 63];
      if (i + 1 < sizeof mac) sig += al[(n >> 6) & 63];
      if (i + 2 < sizeof mac) sig += al[n & 63];
    }
    return input + "." + sig;
  };
  std::string with_token = sign(claims);

  server::UpgradeAuthOptions o;
  o.secret = ByteView(std::string_view(secret));
  o.has_secret = true;
  server::UpgradeAuthenticator auth(o);
  CHECK(auth.same_options(o));
  struct Case {
    std::string url, authorization;
  };
  std::vector<Case> cases = {
      {"/?token=" + good, ""},          {"/x?a=1&token=" + empty_access, ""}, {"/", "Bearer " + good},
      {"/", "bearer\t" + with_token},   {"/?token=" + expired, ""},         {"/?token=not.a.token", ""},
      {"/", ""},                        {"/?token=", "Basic abc"},
  };
  std::size_t accepted = 0;
  for (const auto& c : cases) {
    INFO(c.url << " | " << c.authorization);
    auto want = server::authenticate_upgrade(c.url, c.authorization, o, now);
    accepted += want.ok;
    std::string text;
    auto got = auth.authenticate(c.url, c.authorization, now, text);
    CHECK(got.ok == want.ok);
    CHECK(got.status == want.status);
    CHECK(got.error == want.error);
    CHECK(got.body == want.body);
    if (want.ok) {
      json parsed = text.empty() ? got.context : json::parse(text);
      CHECK(parsed == want.context);
    }
  }
  CHECK(accepted == 4);
  server::UpgradeAuthOptions none;
  server::UpgradeAuthenticator no_secret(none);
  std::string text;
  CHECK(no_secret.authenticate("/?token=" + good, "", now, text).error == "no_secret_configured");
}
