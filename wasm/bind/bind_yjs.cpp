// embind glue for teleportal/updates: conversion and naming only. Each operation is one crossing:
// bytes in (already in wasm memory, see below; a batch of updates is one concatenation plus a
// Uint32 length list), and out comes either a fresh Uint8Array (the one copy out) or the string
// "code\nmessage" that the JS wrapper throws.
#include <emscripten/bind.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "js_bytes.hpp"
#include "tp/yjs/updates.hpp"

namespace {

using emscripten::val;

val out(const tp::Result<tp::Bytes>& r) {
  if (r) return tp::wasm::to_js_bytes(r.value());
  return val(r.error().code + "\n" + r.error().message);
}

// Inputs arrive as (address, length) pairs in wasm memory: the JS wrapper mallocs one block,
// copies the bytes in with one TypedArray.set and frees the block after the call. (embind's
// std::string parameter would copy a Uint8Array byte by byte in JS.)
tp::ByteView at(std::uintptr_t ptr, std::size_t len) {
  return {reinterpret_cast<const std::uint8_t*>(ptr), len};
}

// `lengths` points at `count` uint32 byte lengths (native byte order), the updates follow each
// other from `data` on.
val merge(std::uintptr_t data, std::size_t size, std::uintptr_t lengths, std::size_t count, int version) {
  std::vector<tp::ByteView> views;
  views.reserve(count);
  std::size_t pos = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t len;
    std::memcpy(&len, reinterpret_cast<const void*>(lengths + 4 * i), 4);
    if (len > size - pos) return val(std::string("invalid_argument\nBad update batch"));
    views.push_back(at(data + pos, len));
    pos += len;
  }
  if (pos != size) return val(std::string("invalid_argument\nBad update batch"));
  return out(version == 1 ? tp::yjs::merge_updates_v1(views) : tp::yjs::merge_updates_v2(views));
}

val diff(std::uintptr_t update, std::size_t update_len, std::uintptr_t sv, std::size_t sv_len, int version) {
  auto u = at(update, update_len), s = at(sv, sv_len);
  return out(version == 1 ? tp::yjs::diff_update_v1(u, s) : tp::yjs::diff_update_v2(u, s));
}

val state_vector(std::uintptr_t update, std::size_t len, int version) {
  auto u = at(update, len);
  return out(version == 1 ? tp::yjs::encode_state_vector_from_update_v1(u)
                          : tp::yjs::encode_state_vector_from_update_v2(u));
}

val convert(std::uintptr_t update, std::size_t len, int from_version) {
  auto u = at(update, len);
  return out(from_version == 1 ? tp::yjs::convert_update_format_v1_to_v2(u)
                               : tp::yjs::convert_update_format_v2_to_v1(u));
}

// Success: "1 structs clients deleteRanges"; failure: "0code\nmessage".
std::string validate(std::uintptr_t update, std::size_t len, int version) {
  auto u = at(update, len);
  auto r = version == 1 ? tp::yjs::validate_update_v1(u) : tp::yjs::validate_update_v2(u);
  if (!r) return "0" + r.error().code + "\n" + r.error().message;
  const auto& i = r.value();
  return "1" + std::to_string(i.structs) + " " + std::to_string(i.clients) + " " +
         std::to_string(i.delete_ranges);
}

}  // namespace

EMSCRIPTEN_BINDINGS(tp_yjs) {
  emscripten::function("yjsMerge", &merge);
  emscripten::function("yjsDiff", &diff);
  emscripten::function("yjsStateVector", &state_vector);
  emscripten::function("yjsConvert", &convert);
  emscripten::function("yjsValidate", &validate);
}
