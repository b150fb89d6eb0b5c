// `teleportal token mint|verify` and `teleportal permission`: the token core from a shell.
// Their arguments, defaults and output are described once, in the Specs below (and so in --help).
// The CLI is an edge: it reads the clock (when --now is absent) and turns results into exit codes.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli.hpp"
#include "tp/token/access.hpp"
#include "tp/token/token.hpp"

namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using tp::cli::Args;
using tp::cli::Spec;

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

const tp::token::MintOptions kMintDefaults;
const tp::token::VerifyOptions kVerifyDefaults;

const char kTokenSummary[] = "mint or verify HS256 tokens";

const Spec kMint{
    "token mint",
    "mint an HS256 token with Teleportal's claims and print it",
    {},
    {
        {"secret", "S", "HMAC secret as text", {}, true, "secret-hex"},
        {"secret-hex", "H", "HMAC secret as hex bytes", {}, true, "secret"},
        {"user", "U", "userId claim", {}, true},
        {"room", "R", "room claim", {}, true},
        {"access", "JSON", "documentAccess claim, any JSON (written compactly, key order kept)",
         std::string("[]")},
        {"expires-in", "SECONDS", "lifetime: exp = iat + SECONDS",
         number_text(kMintDefaults.expires_in)},
        {"now", "SECONDS", "the time to mint at, Unix seconds (default: the system clock)"},
        {"issuer", "I", "iss claim", kMintDefaults.issuer},
        {"audience", "A", "aud claim", kMintDefaults.audience},
    },
    "Prints the token (exit 0); a core error prints 'teleportal token mint: MESSAGE (CODE)' to "
    "stderr (exit 1)."};

const Spec kVerify{
    "token verify",
    "verify an HS256 token and print its claims as JSON",
    {{"TOKEN", "the token; put it after -- if it starts with -"}},
    {
        {"secret", "S", "HMAC secret as text", {}, true, "secret-hex"},
        {"secret-hex", "H", "HMAC secret as hex bytes", {}, true, "secret"},
        {"issuer", "I", "required iss claim; empty accepts any", kVerifyDefaults.issuer},
        {"audience", "A", "required aud claim; empty accepts any", kVerifyDefaults.audience},
        {"now", "SECONDS", "the time to verify at, Unix seconds (default: the system clock)"},
    },
    "Prints {\"valid\": true, \"payload\": {...}} (exit 0) or {\"valid\": false, \"error\": "
    "\"...\"} (exit 1)."};

const Spec kPermission{
    "permission",
    "check a document permission against a documentAccess list",
    {},
    {
        {"access", "JSON", "the documentAccess list, as in a token", {}, true},
        {"doc", "NAME", "document name", {}, true},
        {"perm", "P", "permission to check (read, write, comment, admin, ...)", {}, true},
        {"allow-missing", nullptr, "treat missing documentAccess as full access (compatibility)"},
    },
    "Prints {\"has\": BOOL, \"permissions\": [...]} (exit 0)."};

tp::Bytes read_secret(const Args& a, bool& ok) {
  ok = true;
  if (a.has("secret")) {
    std::string text = a.get("secret");
    return tp::Bytes(text.begin(), text.end());
  }
  auto bytes = tp::from_hex(a.get("secret-hex"));
  ok = bytes.has_value();
  return bytes ? std::move(*bytes) : tp::Bytes();
}

// The option's value or default; `out` stays as it is when there is neither. False: not a number.
bool read_number(const Args& a, const char* name, double& out) {
  std::string text = a.get(name);
  if (text.empty() && !a.has(name)) return true;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || !end || *end != '\0') return false;
  out = v;
  return true;
}

double wall_clock_seconds() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count() / 1000.0;
}

std::string compact(const ordered_json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

int run_mint(int argc, char** argv) {
  Args a = tp::cli::parse(kMint, argc, argv);
  if (a.exit_code >= 0) return a.exit_code;
  tp::token::MintOptions o;
  bool ok = false;
  o.secret = read_secret(a, ok);
  if (!ok) return tp::cli::usage_error(kMint, "--secret-hex is not hex");
  double now = wall_clock_seconds();
  if (!read_number(a, "expires-in", o.expires_in)) {
    return tp::cli::usage_error(kMint, "--expires-in takes a number of seconds");
  }
  if (!read_number(a, "now", now)) return tp::cli::usage_error(kMint, "--now takes Unix seconds");
  o.issuer = a.get("issuer");
  o.audience = a.get("audience");
  // --access is any JSON; written compactly with its key order kept (like JSON.stringify).
  ordered_json access = ordered_json::parse(a.get("access"), nullptr, false);
  if (access.is_discarded()) return tp::cli::usage_error(kMint, "--access is not valid JSON");
  auto token = tp::token::mint_text(a.get("user"), a.get("room"), compact(access), o, now);
  if (!token.ok()) {
    std::fprintf(stderr, "teleportal token mint: %s (%s)\n", token.error().message.c_str(),
                 token.error().code.c_str());
    return 1;
  }
  std::printf("%s\n", token.value().c_str());
  return 0;
}

int run_verify(int argc, char** argv) {
  Args a = tp::cli::parse(kVerify, argc, argv);
  if (a.exit_code >= 0) return a.exit_code;
  tp::token::VerifyOptions o;
  bool ok = false;
  o.secret = read_secret(a, ok);
  if (!ok) return tp::cli::usage_error(kVerify, "--secret-hex is not hex");
  o.issuer = a.get("issuer");
  o.audience = a.get("audience");
  double now = wall_clock_seconds();
  if (!read_number(a, "now", now)) return tp::cli::usage_error(kVerify, "--now takes Unix seconds");
  auto r = tp::token::verify(a.positional[0], o, now);
  if (!r.valid) {
    std::printf("{\"valid\": false, \"error\": %s}\n", compact(ordered_json(r.error)).c_str());
    return 1;
  }
  // Re-serialise the signed text compactly, keeping its key order.
  ordered_json payload = ordered_json::parse(r.payload_text, nullptr, false);
  std::string text = payload.is_discarded()
                         ? r.payload.dump(-1, ' ', false, json::error_handler_t::replace)
                         : compact(payload);
  std::printf("{\"valid\": true, \"payload\": %s}\n", text.c_str());
  return 0;
}

int run_token(int argc, char** argv) {
  return tp::cli::dispatch(
      "token", kTokenSummary,
      {tp::cli::command(kMint, &run_mint), tp::cli::command(kVerify, &run_verify)}, argc, argv);
}

int run_permission(int argc, char** argv) {
  Args a = tp::cli::parse(kPermission, argc, argv);
  if (a.exit_code >= 0) return a.exit_code;
  json access = json::parse(a.get("access"), nullptr, false);
  if (access.is_discarded()) return tp::cli::usage_error(kPermission, "--access is not valid JSON");
  tp::token::PermissionOptions po;
  po.allow_missing_document_access = a.has("allow-missing");
  bool has = tp::token::access_has_permission(access, a.get("doc"), a.get("perm"), po);
  json perms = tp::token::access_permissions(access, a.get("doc"));
  std::printf("{\"has\": %s, \"permissions\": %s}\n", has ? "true" : "false",
              perms.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  return 0;
}

const tp::cli::Registrar token_cmd({"token", kTokenSummary, &run_token});
const tp::cli::Registrar permission_cmd(tp::cli::command(kPermission, &run_permission));

}  // namespace
