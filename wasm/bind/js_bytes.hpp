// Conversions at the JS/wasm boundary. Bytes cross once per frame or per batch:
// a JS Uint8Array arrives as std::string (embind copies it in one memcpy) and leaves as a
// fresh Uint8Array copied from a typed-memory view.
#pragma once
#include <emscripten/val.h>

#include <string>

#include "tp/common/bytes.hpp"

namespace tp::wasm {

inline ByteView view_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline emscripten::val to_js_bytes(ByteView b) {
  return emscripten::val::global("Uint8Array")
      .new_(emscripten::typed_memory_view(b.size, b.data));
}

}  // namespace tp::wasm
