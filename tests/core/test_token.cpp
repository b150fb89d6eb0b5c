// Token vectors (tests/vectors/tokens.json) through the native core, plus the rules that the
// vectors reach only indirectly (base64url leniency, JSON text handling, malformed access).
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "tp/token/access.hpp"
#include "tp/token/token.hpp"

using nlohmann::json;
using nlohmann::ordered_json;
namespace tk = tp::token;

namespace {

ordered_json load(const char* name) {
  std::ifstream f(std::string(TP_VECTORS_DIR) + "/" + name);
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  return ordered_json::parse(ss.str());
}

const ordered_json& vectors() {
  static const ordered_json v = load("tokens.json");
  return v;
}

tp::Bytes secret_of(const ordered_json& s) {
  if (s.is_object() && s.contains("$hex")) return *tp::from_hex(s["$hex"].get<std::string>());
  std::string str = s.get<std::string>();
  return tp::Bytes(str.begin(), str.end());
}

json plain(const ordered_json& j) { return json::parse(j.dump()); }

// Evaluates a builder call as the vectors spell it: "allow('a', ['read'])",
// "chain: allowAll(['read','write']).deny('private/*')", ...
struct CallParser {
  std::string_view s;
  std::size_t i = 0;
  void ws() {
    while (i < s.size() && s[i] == ' ') ++i;
  }
  std::string str() {
    ws();
    REQUIRE(i < s.size());
    char q = s[i++];
    REQUIRE((q == '\'' || q == '"'));
    std::string out;
    while (i < s.size() && s[i] != q) out.push_back(s[i++]);
    ++i;
    return out;
  }
  std::vector<std::string> list() {
    ws();
    REQUIRE(s[i] == '[');
    ++i;
    std::vector<std::string> out;
    ws();
    while (s[i] != ']') {
      out.push_back(str());
      ws();
      if (s[i] == ',') ++i;
      ws();
    }
    ++i;
    return out;
  }
};

json run_builder(std::string call) {
  if (call.rfind("chain:", 0) == 0) call = call.substr(6);
  tk::DocumentAccessBuilder b;
  CallParser p{call};
  for (;;) {
    p.ws();
    if (p.i >= call.size()) break;
    if (call[p.i] == '.') ++p.i;
    std::size_t open = call.find('(', p.i);
    REQUIRE(open != std::string::npos);
    std::string name = call.substr(p.i, open - p.i);
    p.i = open + 1;
    std::vector<std::string> strs;
    std::vector<std::vector<std::string>> lists;
    p.ws();
    while (call[p.i] != ')') {
      if (call[p.i] == '[')
        lists.push_back(p.list());
      else
        strs.push_back(p.str());
      p.ws();
      if (call[p.i] == ',') ++p.i;
      p.ws();
    }
    ++p.i;
    if (name == "allow")
      b.allow(strs.at(0), lists.at(0));
    else if (name == "deny")
      b.deny(strs.at(0));
    else if (name == "denyDocument")
      b.deny_document(strs.at(0));
    else if (name == "allowAll")
      lists.empty() ? b.allow_all() : b.allow_all(lists[0]);
    else if (name == "readOnly")
      b.read_only(strs.at(0));
    else if (name == "write")
      b.write(strs.at(0));
    else if (name == "fullAccess")
      b.full_access(strs.at(0));
    else if (name == "admin")
      b.admin(strs.at(0));
    else if (name == "commentOnly")
      b.comment_only(strs.at(0));
    else if (name == "suggestOnly")
      b.suggest_only(strs.at(0));
    else if (name == "ownDocuments")
      lists.empty() ? b.own_documents(strs.at(0)) : b.own_documents(strs.at(0), lists[0]);
    else
      FAIL("unknown builder method " << name);
  }
  return b.build();
}

}  // namespace

TEST_CASE("minted tokens are byte-identical to the reference", "[token]") {
  const auto& minted = vectors()["minted"];
  REQUIRE(minted.size() >= 8);
  for (const auto& m : minted) {
    INFO(m["name"].get<std::string>());
    auto payload = ordered_json::parse(m["payloadJson"].get<std::string>());
    tk::MintOptions o;
    o.secret = secret_of(m["managerOptions"]["secret"]);
    o.expires_in = payload["exp"].get<double>() - payload["iat"].get<double>();
    o.issuer = payload["iss"].get<std::string>();
    o.audience = payload["aud"].get<std::string>();
    double now = m["nowMs"].get<double>() / 1000.0;
    auto token =
        tk::mint_text(payload["userId"].get<std::string>(), payload["room"].get<std::string>(),
                      payload["documentAccess"].dump(), o, now);
    REQUIRE(token.ok());
    CHECK(token.value() == m["token"].get<std::string>());
    const std::string& t = token.value();
    CHECK(t.substr(0, t.rfind('.')) == m["signingInput"].get<std::string>());
    auto sig = tk::base64url_decode(t.substr(t.rfind('.') + 1));
    REQUIRE(sig);
    CHECK(tp::to_hex(*sig) == m["signatureHex"].get<std::string>());
    // And it verifies with the same manager settings one second before it expires (or not at
    // all when expiresIn is 0: exp == now is already expired).
    tk::VerifyOptions vo{o.secret, o.issuer, o.audience};
    auto r = tk::verify(t, vo, now);
    if (o.expires_in > 0) {
      CHECK(r.valid);
      CHECK(r.payload == plain(payload));
    } else {
      CHECK(r.code == tk::ErrorCode::expired);
    }
  }
}

TEST_CASE("mint through the json overload and with a fractional clock", "[token]") {
  tk::MintOptions o;
  o.secret = {1, 2, 3};
  o.expires_in = 60;
  json access = tk::DocumentAccessBuilder().read_only("d").build();
  auto t = tk::mint("u", "r", access, o, 1700000000.999);
  REQUIRE(t.ok());
  auto r = tk::verify(t.value(), {o.secret, "teleportal", "teleportal"}, 1700000059.5);
  REQUIRE(r.valid);
  CHECK(r.payload["iat"] == 1700000000);
  CHECK(r.payload["exp"] == 1700000060);
  CHECK(r.payload["documentAccess"] == access);
  CHECK(r.payload_text.find("\"iat\":1700000000,") != std::string::npos);

  o.expires_in = 0.5;
  auto frac = tk::mint("u", "r", json::array(), o, 1700000000);
  REQUIRE(frac.ok());
  auto rf = tk::verify(frac.value(), {o.secret, "teleportal", "teleportal"}, 1700000000);
  CHECK(rf.payload_text.find("\"exp\":1700000000.5,") != std::string::npos);

  o.secret.clear();
  auto empty = tk::mint("u", "r", json::array(), o, 1700000000);
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().code == "key_empty");
  CHECK(empty.error().message == "Zero-length key is not supported");
  o.secret = {1};
  auto bad = tk::mint_text("u", "r", "[1,", o, 1700000000);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == "invalid_document_access");
  auto smuggle = tk::mint_text("u", "r", "[],\"admin\":true", o, 1700000000);
  CHECK_FALSE(smuggle.ok());
}

TEST_CASE("every verify vector gives the reference result (Bun column)", "[token]") {
  const auto& cases = vectors()["verify"];
  REQUIRE(cases.size() >= 55);
  for (const auto& c : cases) {
    INFO(c["name"].get<std::string>());
    tk::VerifyOptions o;
    o.secret = secret_of(c["secret"]);
    o.issuer = c["options"]["issuer"].get<std::string>();
    o.audience = c["options"]["audience"].get<std::string>();
    double now = c["nowSeconds"].get<double>();
    const auto& expect = c["expect"];
    // pass 0: verify(); 1: Verifier; 2: Verifier without the payload DOM (the wasm path).
    for (int pass = 0; pass < 3; ++pass) {
      tk::VerifyResult r;
      tk::VerifyOptions text_only = o;
      text_only.build_payload = false;
      if (!c["token"].is_string()) {
        r = tk::not_a_string_result();
      } else if (pass == 0) {
        r = tk::verify(c["token"].get<std::string>(), o, now);
      } else {
        r = tk::Verifier(pass == 1 ? o : text_only).verify(c["token"].get<std::string>(), now);
      }
      CHECK(r.valid == expect["valid"].get<bool>());
      if (expect["valid"].get<bool>()) {
        if (pass < 2) CHECK(r.payload == plain(expect["payload"]));
        if (pass == 2) CHECK(r.payload.is_null());
        CHECK(json::parse(r.payload_text) == plain(expect["payload"]));
        CHECK(r.error.empty());
        CHECK(r.code == tk::ErrorCode::none);
      } else {
        CHECK(r.error == expect["error"].get<std::string>());
        CHECK(r.code != tk::ErrorCode::none);
        CHECK(r.payload.is_null());
      }
    }
  }
}

TEST_CASE("runtime-dependent cases follow Bun, not Node 20", "[token]") {
  auto diff = load("tokens.node-runtime-diff.json");
  std::set<std::string> names;
  for (const auto& d : diff["diffs"]) names.insert(d["name"].get<std::string>());
  REQUIRE_FALSE(names.empty());
  std::size_t seen = 0;
  for (const auto& c : vectors()["verify"]) {
    auto name = c["name"].get<std::string>();
    if (!names.count(name)) continue;
    ++seen;
    for (const auto& d : diff["diffs"]) {
      if (d["name"] != name) continue;
      tk::VerifyOptions o{secret_of(c["secret"]), c["options"]["issuer"], c["options"]["audience"]};
      auto r = tk::verify(c["token"].get<std::string>(), o, c["nowSeconds"].get<double>());
      INFO(name);
      CHECK(r.valid == d["bun"]["valid"].get<bool>());
      if (!r.valid) CHECK(r.error == d["bun"]["error"].get<std::string>());
      bool differs_from_node = r.valid != d["node"]["valid"].get<bool>() ||
                               (!r.valid && r.error != d["node"].value("error", ""));
      CHECK(differs_from_node);
    }
  }
  CHECK(seen == names.size());
}

TEST_CASE("permission vectors; missing documentAccess is our documented deviation", "[token]") {
  const auto& cases = vectors()["permissions"];
  REQUIRE(cases.size() >= 84);
  int deviations = 0;
  for (const auto& c : cases) {
    json payload = {{"userId", "u"}, {"room", "r"}};
    if (!c["documentAccess"].is_null()) payload["documentAccess"] = plain(c["documentAccess"]);
    auto doc = c["documentName"].get<std::string>();
    auto perm = c["permission"].get<std::string>();
    INFO(doc << " / " << perm << " / " << c["documentAccess"].dump());
    bool ref_has = c["expect"]["hasDocumentPermission"].get<bool>();
    tk::PermissionOptions compat;
    compat.allow_missing_document_access = true;
    // Compatibility mode reproduces the reference exactly, every case.
    CHECK(tk::has_document_permission(payload, doc, perm, compat) == ref_has);
    if (c["documentAccess"].is_null()) {
      ++deviations;  // reference: fail-open (true); ours by default: denied
      CHECK_FALSE(tk::has_document_permission(payload, doc, perm));
      payload["documentAccess"] = nullptr;  // explicit null is "missing" too
      CHECK_FALSE(tk::has_document_permission(payload, doc, perm));
      CHECK(tk::has_document_permission(payload, doc, perm, compat) == ref_has);
    } else {
      CHECK(tk::has_document_permission(payload, doc, perm) == ref_has);
    }
    std::vector<std::string> expect_perms;
    for (const auto& p : c["expect"]["getDocumentPermissions"]) expect_perms.push_back(p);
    CHECK(tk::get_document_permissions(payload, doc) == expect_perms);
  }
  CHECK(deviations >= 1);
}

TEST_CASE("DocumentAccessBuilder vectors", "[token]") {
  const auto& cases = vectors()["documentAccessBuilder"];
  REQUIRE(cases.size() >= 14);
  for (const auto& c : cases) {
    INFO(c["call"].get<std::string>());
    CHECK(run_builder(c["call"].get<std::string>()) == plain(c["build"]));
  }
}

TEST_CASE("isTokenExpired vectors; exp == now and exp == 0 are documented deviations", "[token]") {
  int deviations = 0;
  for (const auto& c : vectors()["isTokenExpired"]) {
    json payload = plain(c["payload"]);
    double now = c["nowSeconds"].get<double>() + c.value("nowExtraMs", 0.0) / 1000.0;
    bool expected = c["expect"].get<bool>();
    INFO(payload.dump() << " now=" << now);
    // Our rule agrees with verify(): expired when exp <= floor(now). The reference uses `>` and
    // treats a falsy exp (0) as no expiry; those two classes are the only allowed differences.
    auto exp = payload.find("exp");
    if (exp != payload.end() && exp->is_number() &&
        (exp->get<double>() == std::floor(now) || exp->get<double>() == 0)) {
      if (!expected) ++deviations;
      expected = true;
    }
    CHECK(tk::is_token_expired(payload, now) == expected);
    // Agreement with verify() on the same clock.
    if (exp != payload.end()) {
      json claims = payload;
      claims["iss"] = "teleportal";
      claims["aud"] = "teleportal";
      tk::MintOptions o;
      o.secret = {7};
      std::string text = claims.dump();
      std::string token = "eyJhbGciOiJIUzI1NiJ9." + tk::base64url_encode(tp::ByteView(text));
      unsigned char mac[32];
      crypto_auth_hmacsha256_state st;
      crypto_auth_hmacsha256_init(&st, o.secret.data(), 1);
      crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(token.data()),
                                    token.size());
      crypto_auth_hmacsha256_final(&st, mac);
      token += "." + tk::base64url_encode(tp::ByteView(mac, 32));
      auto r = tk::verify(token, {o.secret, "teleportal", "teleportal"}, now);
      CHECK(r.valid == !tk::is_token_expired(payload, now));
    }
  }
  CHECK(deviations >= 1);
  CHECK(tk::is_token_expired(json{{"exp", "soon"}}, 1));  // verify rejects it: expired
  CHECK(tk::is_token_expired(json{{"exp", nullptr}}, 1));
  CHECK_FALSE(tk::is_token_expired(json{{"exp", 2.5}}, 2.9));
  CHECK(tk::is_token_expired(json{{"exp", 2.5}}, 3));
}

TEST_CASE("extractContextFromToken vectors", "[token]") {
  for (const auto& c : vectors()["extractContextFromToken"]) {
    auto ctx = tk::extract_context(plain(c["payload"]));
    CHECK(ctx.user_id == plain(c["expect"]["userId"]));
    CHECK(ctx.room == plain(c["expect"]["room"]));
  }
  auto none = tk::extract_context(json::object());
  CHECK(none.user_id.is_null());
}

// ---- rules below the vectors ------------------------------------------------------------------

namespace {
std::string sign(std::string_view header_json, std::string_view payload_json,
                 const tp::Bytes& key = {'k'}) {
  std::string t = tk::base64url_encode(tp::ByteView(header_json)) + "." +
                  tk::base64url_encode(tp::ByteView(payload_json));
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(t.data()), t.size());
  unsigned char mac[32];
  crypto_auth_hmacsha256_final(&st, mac);
  return t + "." + tk::base64url_encode(tp::ByteView(mac, 32));
}
const tk::VerifyOptions kOpts{{'k'}, "teleportal", "teleportal"};
constexpr const char* kClaims = R"({"iss":"teleportal","aud":"teleportal","exp":2000000000})";
}  // namespace

TEST_CASE("base64url decoding follows Bun's fromBase64 (loose)", "[token][base64]") {
  auto hex = [](std::string_view s) {
    auto b = tk::base64url_decode(s);
    return b ? tp::to_hex(*b) : std::string("ERR");
  };
  CHECK(hex("") == "");
  CHECK(hex("AA") == "00");
  CHECK(hex("AAA") == "0000");
  CHECK(hex("AAAA") == "000000");
  CHECK(hex("A") == "ERR");
  CHECK(hex("AAAAA") == "ERR");
  CHECK(hex("-_8") == "fbff");
  CHECK(hex("+/8") == "ERR");
  CHECK(hex("AB") == "00");  // non-zero unused bits tolerated
  CHECK(hex("AA==") == "00");
  CHECK(hex("AA=") == "ERR");
  CHECK(hex("AAA=") == "0000");
  CHECK(hex("AAA==") == "ERR");
  CHECK(hex("=") == "ERR");
  CHECK(hex("AAAA=") == "ERR");
  CHECK(hex(" A\tA\n=\r=\f ") == "00");
  CHECK(hex("AA==A") == "ERR");
  CHECK(hex("A\xC3\xA9") == "ERR");
  CHECK(hex("AA\v") == "ERR");  // vertical tab is not ASCII whitespace
  tp::Bytes all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::uint8_t>(i));
  for (std::size_t n = 0; n < 8; ++n) {
    tp::ByteView v(all.data() + n * 5, 200 + n);
    auto enc = tk::base64url_encode(v);
    CHECK(enc.find('=') == std::string::npos);
    CHECK(tk::base64url_decode(enc) == v.to_bytes());
  }
}

TEST_CASE("payload JSON text is read the way TextDecoder + JSON.parse read it", "[token][json]") {
  // BOM stripped once; a second BOM is not whitespace.
  auto r = tk::verify(sign(R"({"alg":"HS256"})", std::string("\xEF\xBB\xBF") + kClaims), kOpts, 1);
  CHECK(r.valid);
  CHECK(r.payload_text == kClaims);
  r = tk::verify(sign(R"({"alg":"HS256"})", std::string("\xEF\xBB\xBF\xEF\xBB\xBF") + kClaims),
                 kOpts, 1);
  CHECK(r.error == "JWT Claims Set must be a top-level JSON object");
  // Invalid UTF-8 inside a string becomes U+FFFD (maximal subparts).
  r = tk::verify(sign(R"({"alg":"HS256"})", R"({"iss":"teleportal","aud":"teleportal","n":"a)"
                                            "\xF0\x9F\x98"
                                            "b\xED\xA0\x80"
                                            "c\xC0"
                                            R"("})"),
                 kOpts, 1);
  REQUIRE(r.valid);
  CHECK(r.payload["n"] ==
        "a\xEF\xBF\xBD"
        "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
        "c\xEF\xBF\xBD");
  // Escaped lone surrogates are valid JSON for JSON.parse; the JS side receives the raw text.
  r = tk::verify(
      sign(R"({"alg":"HS256"})", R"({"iss":"teleportal","aud":"teleportal","n":"\ud800x\udc00"})"),
      kOpts, 1);
  REQUIRE(r.valid);
  CHECK(r.payload_text.find(R"(\ud800x\udc00)") != std::string::npos);
  CHECK(r.payload["n"] == "\xEF\xBF\xBDx\xEF\xBF\xBD");
  r = tk::verify(
      sign(R"({"alg":"HS256"})", R"({"iss":"teleportal","aud":"teleportal","n":"\ud83d\ude00"})"),
      kOpts, 1);
  CHECK(r.payload["n"] == "\xF0\x9F\x98\x80");
  // Overflowing numbers are Infinity in JS: exp 1e400 never expires, -1e400 always has.
  r = tk::verify(
      sign(R"({"alg":"HS256"})", R"({"iss":"teleportal","aud":"teleportal","exp":1e400})"), kOpts,
      1e12);
  CHECK(r.valid);
  r = tk::verify(
      sign(R"({"alg":"HS256"})", R"({"iss":"teleportal","aud":"teleportal","exp":-1E+400})"), kOpts,
      1);
  CHECK(r.error == "\"exp\" claim timestamp check failed");
  r = tk::verify(
      sign(R"({"alg":"HS256"})", R"({"iss":"teleportal","aud":"teleportal","x":01e400})"), kOpts,
      1);
  CHECK(r.code == tk::ErrorCode::claims_invalid);
  // Duplicate keys: last wins. Huge integers compare as doubles.
  r = tk::verify(
      sign(
          R"({"alg":"HS256"})",
          R"({"iss":"x","iss":"teleportal","aud":"teleportal","exp":123456789012345678901234567890})"),
      kOpts, 1);
  CHECK(r.valid);
  // Arrays, strings and numbers are JSON but not claims sets.
  for (const char* p : {"[]", "\"x\"", "1", "true", "{} {}", "{\"a\":1,}", ""}) {
    INFO(p);
    CHECK(tk::verify(sign(R"({"alg":"HS256"})", p), kOpts, 1).code ==
          tk::ErrorCode::claims_invalid);
  }
}

TEST_CASE("header rules: crit, b64, alg, non-ASCII payload, key", "[token]") {
  auto err = [](std::string_view header, std::string_view claims = kClaims) {
    return tk::verify(sign(header, claims), kOpts, 1).error;
  };
  CHECK(err(R"({"alg":"HS256","crit":["b64"]})") ==
        "Extension Header Parameter \"b64\" is missing");
  CHECK(err(R"({"alg":"HS256","crit":["b64"],"b64":"no"})") ==
        "The \"b64\" (base64url-encode payload) Header Parameter must be a boolean");
  CHECK(err(R"({"alg":"HS256","crit":["b64"],"b64":true})").empty());
  CHECK(err(R"({"alg":"HS256","crit":["b64",""]})") ==
        "\"crit\" (Critical) Header Parameter MUST be an array of non-empty strings when present");
  CHECK(err(R"({"alg":"HS256","crit":null})") ==
        "\"crit\" (Critical) Header Parameter MUST be an array of non-empty strings when present");
  CHECK(err(R"({"alg":"HS256","crit":["b64","zip"],"b64":true})") ==
        "Extension Header Parameter \"zip\" is not recognized");
  CHECK(err(R"({"crit":["x"]})") == "Extension Header Parameter \"x\" is not recognized");
  CHECK(err(R"("HS256")") == "JWS \"alg\" (Algorithm) Header Parameter missing or invalid");
  CHECK(err(R"(null)") == "JWS \"alg\" (Algorithm) Header Parameter missing or invalid");
  CHECK(err(R"({"alg":256})") == "JWS \"alg\" (Algorithm) Header Parameter missing or invalid");
  CHECK(err(R"({"alg":"HS512"})") == "\"alg\" (Algorithm) Header Parameter value not allowed");

  // b64:false (unencoded payload): the signature covers the raw segment, then JWTs refuse it.
  std::string h = tk::base64url_encode(
      tp::ByteView(std::string_view(R"({"alg":"HS256","crit":["b64"],"b64":false})")));
  std::string t = h + ".raw payload \xC3\xA9";
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, kOpts.secret.data(), kOpts.secret.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(t.data()), t.size());
  unsigned char mac[32];
  crypto_auth_hmacsha256_final(&st, mac);
  CHECK(tk::verify(t + "." + tk::base64url_encode(tp::ByteView(mac, 32)), kOpts, 1).error ==
        "JWTs MUST NOT use unencoded payload");
  CHECK(tk::verify(t + ".AAAA", kOpts, 1).error == "signature verification failed");

  // A non-ASCII character in the payload segment fails before the signature is looked at.
  std::string good = sign(R"({"alg":"HS256"})", kClaims);
  std::string bad = good;
  bad.insert(good.find('.') + 3, "\xC3\xA9");
  CHECK(tk::verify(bad, kOpts, 1).error == "non-ASCII string encountered in encode()");

  // The empty key is reported after the signature decodes, before HMAC.
  tk::VerifyOptions empty{{}, "teleportal", "teleportal"};
  CHECK(tk::verify(good, empty, 1).error == "Zero-length key is not supported");
  CHECK(tk::verify(good.substr(0, good.rfind('.') + 1) + "*", empty, 1).error ==
        "Failed to base64url decode the signature");
  CHECK(tk::Verifier(empty).verify(good, 1).code == tk::ErrorCode::key_empty);
  // Whitespace inside a segment is skipped by the decoder but is part of the signed bytes.
  std::string spaced = good;
  spaced.insert(good.rfind('.') + 5, " ");
  CHECK(tk::verify(spaced, kOpts, 1).valid);
}

TEST_CASE("claims: issuer/audience edge values", "[token]") {
  auto with = [](std::string_view claims, tk::VerifyOptions o = kOpts) {
    return tk::verify(sign(R"({"alg":"HS256"})", claims), o, 1);
  };
  CHECK(with(R"({"iss":"teleportal","aud":["a","teleportal"]})").valid);
  CHECK(with(R"({"iss":"teleportal","aud":[]})").error == "unexpected \"aud\" claim value");
  CHECK(with(R"({"iss":"teleportal","aud":null})").error == "unexpected \"aud\" claim value");
  CHECK(with(R"({"iss":null,"aud":"teleportal"})").error == "unexpected \"iss\" claim value");
  CHECK(with(R"({"aud":"teleportal"})").error == "missing required \"iss\" claim");
  // An empty configured issuer/audience still requires the claim but accepts any value
  // (jose: presence check on `!== undefined`, value check on truthiness).
  tk::VerifyOptions open{{'k'}, "", ""};
  CHECK(with(R"({"iss":5,"aud":{}})", open).valid);
  CHECK(with(R"({"iss":5})", open).error == "missing required \"aud\" claim");
  CHECK(with(R"({"iss":"teleportal","aud":"teleportal","iat":"1"})").error ==
        "\"iat\" claim must be a number");
  CHECK(with(R"({"iss":"teleportal","aud":"teleportal","nbf":null})").error ==
        "\"nbf\" claim must be a number");
  CHECK(with(R"({"iss":"teleportal","aud":"teleportal","exp":true})").error ==
        "\"exp\" claim must be a number");
}

TEST_CASE("verify never throws on arbitrary bytes", "[token]") {
  std::string good = sign(R"({"alg":"HS256"})", kClaims);
  std::uint32_t x = 12345;
  for (int i = 0; i < 3000; ++i) {
    std::string t = good;
    for (int k = 0; k < 1 + i % 4; ++k) {
      x = x * 1103515245 + 12345;
      t[(x >> 8) % t.size()] = static_cast<char>(x >> 24);
    }
    auto r = tk::verify(t, kOpts, 1);
    CHECK((r.valid || !r.error.empty()));
  }
}

TEST_CASE("malformed documentAccess entries match nothing and never throw", "[token][access]") {
  json payload = {
      {"documentAccess",
       json::array({1, nullptr, "x", json{{"pattern", 5}, {"permissions", {"read"}}},
                    json{{"pattern", "a"}}, json{{"pattern", "b"}, {"permissions", "read"}},
                    json{{"pattern", "c"}, {"permissions", {1, "read", nullptr}}},
                    json{{"permissions", {"admin"}}}})}};
  CHECK_FALSE(tk::has_document_permission(payload, "a", "read"));
  CHECK_FALSE(tk::has_document_permission(payload, "b", "read"));
  CHECK(tk::has_document_permission(payload, "c", "read"));
  CHECK(tk::get_document_permissions(payload, "c") == std::vector<std::string>{"read"});
  CHECK(tk::get_document_permissions(payload, "b").empty());
  // documentAccess that is not an array denies (even in compatibility mode).
  tk::PermissionOptions compat{true};
  CHECK_FALSE(tk::has_document_permission(json{{"documentAccess", "*"}}, "x", "read", compat));
  CHECK_FALSE(tk::has_document_permission(json{{"documentAccess", json::object()}}, "x", "read"));
  CHECK_FALSE(tk::has_document_permission(json(nullptr), "x", "read"));
  CHECK(tk::has_document_permission(json(nullptr), "x", "read", compat));
  // An exclusion needs only a string pattern.
  json ex = {{"documentAccess", json::array({json{{"pattern", "*"}, {"permissions", {"read"}}},
                                             json{{"pattern", "!x"}}})}};
  CHECK_FALSE(tk::has_document_permission(ex, "x", "read"));
  CHECK(tk::has_document_permission(ex, "y", "read"));
}

TEST_CASE("glob matching corner cases", "[token][access]") {
  CHECK(tk::matches_pattern("*", ""));
  CHECK(tk::matches_pattern("a**b", "ab"));
  CHECK(tk::matches_pattern("*a*a*a*", "xaxaxa"));
  CHECK_FALSE(tk::matches_pattern("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
  CHECK(tk::matches_pattern("\xE6\x97\xA5*\xE6\x9C\xAC", "\xE6\x97\xA5/x/\xE6\x9C\xAC"));
  CHECK_FALSE(tk::matches_pattern("a", "A"));
  CHECK(tk::matches_pattern("", ""));
}
