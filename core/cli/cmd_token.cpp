// `teleportal token mint|verify` and `teleportal permission`: the token core from a shell.
//   token mint --secret S|--secret-hex H --user U --room R [--access JSON] [--expires-in N]
//              [--now SECONDS] [--issuer I] [--audience A]           -> prints the token
//   token verify --secret S|--secret-hex H [--issuer I] [--audience A] [--now SECONDS] TOKEN
//              -> {"valid": true, "payload": {...}} (exit 0) or {"valid": false, "error": "..."}
//                 (exit 1)
//   permission --access JSON --doc NAME --perm P [--allow-missing]
//              -> {"has": bool, "permissions": [...]}
// The CLI is an edge: it reads the clock (when --now is absent) and turns results into exit codes.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tp/token/access.hpp"
#include "tp/token/token.hpp"

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

struct Args {
  std::map<std::string, std::string> opts;
  std::vector<std::string> positional;
  std::string error;
};

// --name value pairs; `flags` take no value.
Args parse(int argc, char** argv, const std::vector<std::string>& valued,
           const std::vector<std::string>& flags) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string name = s.substr(2);
      bool is_flag = false, is_valued = false;
      for (const auto& f : flags) is_flag |= f == name;
      for (const auto& v : valued) is_valued |= v == name;
      if (is_flag) {
        a.opts[name] = "1";
      } else if (is_valued && i + 1 < argc) {
        a.opts[name] = argv[++i];
      } else {
        a.error = is_valued ? "missing value for " + s : "unknown option " + s;
        return a;
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

int usage(const char* text) {
  std::fprintf(stderr, "%s\n", text);
  return 2;
}

const char kMintUsage[] =
    "usage: teleportal token mint --secret S|--secret-hex H --user U --room R [--access JSON]\n"
    "       [--expires-in SECONDS] [--now SECONDS] [--issuer I] [--audience A]";
const char kVerifyUsage[] =
    "usage: teleportal token verify --secret S|--secret-hex H [--issuer I] [--audience A]\n"
    "       [--now SECONDS] TOKEN";
const char kPermissionUsage[] =
    "usage: teleportal permission --access JSON --doc NAME --perm P [--allow-missing]";

bool read_secret(const Args& a, tp::Bytes& out, std::string& error) {
  auto s = a.opts.find("secret");
  auto h = a.opts.find("secret-hex");
  if ((s == a.opts.end()) == (h == a.opts.end())) {
    error = "give exactly one of --secret or --secret-hex";
    return false;
  }
  if (s != a.opts.end()) {
    out.assign(s->second.begin(), s->second.end());
    return true;
  }
  auto bytes = tp::from_hex(h->second);
  if (!bytes) {
    error = "--secret-hex is not hex";
    return false;
  }
  out = std::move(*bytes);
  return true;
}

bool read_number(const Args& a, const char* name, double& out) {
  auto it = a.opts.find(name);
  if (it == a.opts.end()) return true;
  char* end = nullptr;
  out = std::strtod(it->second.c_str(), &end);
  return end && *end == '\0' && !it->second.empty();
}

double wall_clock_seconds() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count() / 1000.0;
}

std::string opt(const Args& a, const char* name, std::string fallback) {
  auto it = a.opts.find(name);
  return it == a.opts.end() ? fallback : it->second;
}

int run_mint(int argc, char** argv) {
  Args a = parse(
      argc, argv,
      {"secret", "secret-hex", "user", "room", "access", "expires-in", "now", "issuer", "audience"},
      {});
  if (!a.error.empty() || !a.positional.empty() || !a.opts.count("user") || !a.opts.count("room"))
    return usage(a.error.empty() ? kMintUsage : a.error.c_str());
  tp::token::MintOptions o;
  std::string error;
  if (!read_secret(a, o.secret, error)) return usage(error.c_str());
  double now = wall_clock_seconds();
  if (!read_number(a, "expires-in", o.expires_in) || !read_number(a, "now", now))
    return usage("--expires-in and --now take numbers");
  o.issuer = opt(a, "issuer", "teleportal");
  o.audience = opt(a, "audience", "teleportal");
  // --access is any JSON; written compactly with its key order kept (like JSON.stringify).
  ordered_json access = ordered_json::parse(opt(a, "access", "[]"), nullptr, false);
  if (access.is_discarded()) return usage("--access is not valid JSON");
  auto token =
      tp::token::mint_text(a.opts["user"], a.opts["room"],
                           access.dump(-1, ' ', false, json::error_handler_t::replace), o, now);
  if (!token.ok()) {
    std::fprintf(stderr, "teleportal token mint: %s (%s)\n", token.error().message.c_str(),
                 token.error().code.c_str());
    return 1;
  }
  std::printf("%s\n", token.value().c_str());
  return 0;
}

int run_verify(int argc, char** argv) {
  Args a = parse(argc, argv, {"secret", "secret-hex", "issuer", "audience", "now"}, {});
  if (!a.error.empty() || a.positional.size() != 1)
    return usage(a.error.empty() ? kVerifyUsage : a.error.c_str());
  tp::token::VerifyOptions o;
  std::string error;
  if (!read_secret(a, o.secret, error)) return usage(error.c_str());
  o.issuer = opt(a, "issuer", "teleportal");
  o.audience = opt(a, "audience", "teleportal");
  double now = wall_clock_seconds();
  if (!read_number(a, "now", now)) return usage("--now takes a number of seconds");
  auto r = tp::token::verify(a.positional[0], o, now);
  if (!r.valid) {
    std::printf("{\"valid\": false, \"error\": %s}\n",
                json(r.error).dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    return 1;
  }
  // Re-serialise the signed text compactly, keeping its key order.
  ordered_json payload = ordered_json::parse(r.payload_text, nullptr, false);
  std::string text = payload.is_discarded()
                         ? r.payload.dump(-1, ' ', false, json::error_handler_t::replace)
                         : payload.dump(-1, ' ', false, json::error_handler_t::replace);
  std::printf("{\"valid\": true, \"payload\": %s}\n", text.c_str());
  return 0;
}

int run_token(int argc, char** argv) {
  if (argc >= 1 && std::string(argv[0]) == "mint") return run_mint(argc - 1, argv + 1);
  if (argc >= 1 && std::string(argv[0]) == "verify") return run_verify(argc - 1, argv + 1);
  std::fprintf(stderr, "%s\n%s\n", kMintUsage, kVerifyUsage);
  return 2;
}

int run_permission(int argc, char** argv) {
  Args a = parse(argc, argv, {"access", "doc", "perm"}, {"allow-missing"});
  if (!a.error.empty() || !a.positional.empty() || !a.opts.count("access") ||
      !a.opts.count("doc") || !a.opts.count("perm"))
    return usage(a.error.empty() ? kPermissionUsage : a.error.c_str());
  json access = json::parse(a.opts["access"], nullptr, false);
  if (access.is_discarded()) return usage("--access is not valid JSON");
  tp::token::PermissionOptions po;
  po.allow_missing_document_access = a.opts.count("allow-missing") > 0;
  bool has = tp::token::access_has_permission(access, a.opts["doc"], a.opts["perm"], po);
  json perms = tp::token::access_permissions(access, a.opts["doc"]);
  std::printf("{\"has\": %s, \"permissions\": %s}\n", has ? "true" : "false",
              perms.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  return 0;
}

tp::cli::Registrar token_cmd({"token", "mint or verify HS256 tokens (token mint|verify --help)",
                              &run_token});
tp::cli::Registrar permission_cmd({"permission",
                                   "document permission check: --access JSON --doc NAME --perm P",
                                   &run_permission});

}  // namespace
