#include <emscripten/bind.h>

#include "tp/common/bytes.hpp"
#include "js_bytes.hpp"

namespace {
std::string core_version() { return "0.1.0"; }
emscripten::val bytes_from_hex(const std::string& hex) {
  auto b = tp::from_hex(hex);
  return b ? tp::wasm::to_js_bytes(*b) : emscripten::val::null();
}
std::string bytes_to_hex(const std::string& bytes) { return tp::to_hex(tp::wasm::view_of(bytes)); }
}  // namespace

EMSCRIPTEN_BINDINGS(tp_common) {
  emscripten::function("coreVersion", &core_version);
  emscripten::function("fromHex", &bytes_from_hex);
  emscripten::function("toHex", &bytes_to_hex);
}
