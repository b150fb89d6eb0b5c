// Native token benchmark: verifications (and mints) per second. Prints a table; not a test.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tp/token/access.hpp"
#include "tp/token/token.hpp"

namespace {

template <class F>
double per_second(F&& f, int min_ms = 400) {
  using clock = std::chrono::steady_clock;
  long n = 0;
  auto start = clock::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < 1000; ++i) f(n++);
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed * 1000 < min_ms);
  return n / elapsed;
}

}  // namespace

int main() {
  namespace tk = tp::token;
  const double now = 1700000000;
  tk::MintOptions mo;
  std::string secret = "teleportal-bench-secret-0123456789abcdef";
  mo.secret.assign(secret.begin(), secret.end());
  std::vector<std::string> tokens;
  for (int i = 0; i < 64; ++i) {
    auto access = tk::DocumentAccessBuilder()
                      .own_documents("user-" + std::to_string(i))
                      .read_only("shared/*")
                      .deny("shared/secret")
                      .build();
    tokens.push_back(tk::mint("user-" + std::to_string(i), "room-1", access, mo, now).value());
  }
  tk::VerifyOptions vo{mo.secret, "teleportal", "teleportal"};
  tk::Verifier verifier(vo);
  long sink = 0;

  double v_pre = per_second([&](long n) { sink += verifier.verify(tokens[n & 63], now).valid; });
  tk::VerifyOptions text_only = vo;
  text_only.build_payload = false;
  tk::Verifier text_verifier(text_only);
  double v_text =
      per_second([&](long n) { sink += text_verifier.verify(tokens[n & 63], now).valid; });
  double v_cold = per_second([&](long n) { sink += tk::verify(tokens[n & 63], vo, now).valid; });
  std::string bad = tokens[0];
  bad[bad.size() - 2] = bad[bad.size() - 2] == 'A' ? 'B' : 'A';
  double v_bad = per_second([&](long) { sink += verifier.verify(bad, now).valid; });
  double m = per_second([&](long n) {
    sink += tk::mint("u", "r", nlohmann::json::array(), mo, now + n).value().size();
  });
  nlohmann::json payload = verifier.verify(tokens[0], now).payload;
  double perm = per_second([&](long n) {
    sink += tk::has_document_permission(payload, (n & 1) ? "user-0/doc" : "shared/secret", "write");
  });

  std::printf("native token benchmark (%zu-byte tokens, 64 distinct)\n", tokens[0].size());
  std::printf("| %-44s | %14s | %10s |\n", "operation", "ops/s", "us/op");
  std::printf("|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(16, '-').c_str(),
              std::string(12, '-').c_str());
  auto row = [](const char* name, double ops) {
    std::printf("| %-44s | %14.0f | %10.3f |\n", name, ops, 1e6 / ops);
  };
  row("verify, Verifier (key schedule precomputed)", v_pre);
  row("verify, Verifier, payload text only (wasm path)", v_text);
  row("verify, tp::token::verify (key per call)", v_cold);
  row("verify, bad signature (Verifier)", v_bad);
  row("mint", m);
  row("has_document_permission (3 entries)", perm);
  return sink == 42 ? 1 : 0;
}
