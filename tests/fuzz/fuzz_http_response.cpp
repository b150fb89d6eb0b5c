// libFuzzer target for HTTP/1.x response framing (tp/ops/http_response.hpp), which reads bytes
// from the network for `teleportal stats`. Whether the stream has ended must not change an error
// or a complete answer; a prefix of the input is incomplete, or complete with the same response.
//   scripts/fuzz 60 http_response   (seeds: tests/fuzz/seeds-fuzz_http_response/)
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tp/ops/http_response.hpp"

using namespace tp::ops;

namespace {

[[noreturn]] void fail() {
  std::abort();
}

bool same(const HttpResponse& a, const HttpResponse& b) {
  return a.status == b.status && a.reason == b.reason && a.headers == b.headers && a.body == b.body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto open = parse_http_response(input, false);
  auto ended = parse_http_response(input, true);
  if (!open) {
    if (ended || ended.error().code != open.error().code) fail();
    return 0;
  }
  if (ended) {
    if (!ended.value()) fail();  // at the end there is an answer or an error
    const HttpResponse& r = *ended.value();
    if (r.status < 100 || r.status > 999 || r.body.size() > size) fail();
  }
  if (!open.value()) return 0;
  if (!ended || !same(*open.value(), *ended.value())) fail();
  // Any prefix (here: one picked by the input) is incomplete, or complete and the same.
  std::size_t cut = size == 0 ? 0 : (data[0] * 131u + size) % (size + 1);
  auto prefix = parse_http_response(input.substr(0, cut), false);
  if (!prefix) fail();
  if (prefix.value() && !same(*prefix.value(), *open.value())) fail();
  return 0;
}
