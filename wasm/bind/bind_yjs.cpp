// embind glue for teleportal/updates: conversion and naming only. Each operation is one crossing:
// bytes in (a batch of updates arrives as one concatenation plus a Uint32 length list), and out
// comes either a fresh Uint8Array or the string "code\nmessage" that the JS wrapper throws.
#include <emscripten/bind.h>

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

// `lengths` holds little-endian uint32 byte lengths, one per update, in order.
bool split(const std::string& concat, const std::string& lengths, std::vector<tp::ByteView>& views) {
  if (lengths.size() % 4 != 0) return false;
  std::size_t n = lengths.size() / 4, pos = 0;
  views.reserve(n);
  const auto* base = reinterpret_cast<const std::uint8_t*>(concat.data());
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t len;
    std::memcpy(&len, lengths.data() + 4 * i, 4);
    if (len > concat.size() - pos) return false;
    views.emplace_back(base + pos, len);
    pos += len;
  }
  return pos == concat.size();
}

val merge(const std::string& concat, const std::string& lengths, int version) {
  std::vector<tp::ByteView> views;
  if (!split(concat, lengths, views)) return val(std::string("invalid_argument\nBad update batch"));
  return out(version == 1 ? tp::yjs::merge_updates_v1(views) : tp::yjs::merge_updates_v2(views));
}

val diff(const std::string& update, const std::string& sv, int version) {
  auto u = tp::wasm::view_of(update), s = tp::wasm::view_of(sv);
  return out(version == 1 ? tp::yjs::diff_update_v1(u, s) : tp::yjs::diff_update_v2(u, s));
}

val state_vector(const std::string& update, int version) {
  auto u = tp::wasm::view_of(update);
  return out(version == 1 ? tp::yjs::encode_state_vector_from_update_v1(u)
                          : tp::yjs::encode_state_vector_from_update_v2(u));
}

val convert(const std::string& update, int from_version) {
  auto u = tp::wasm::view_of(update);
  return out(from_version == 1 ? tp::yjs::convert_update_format_v1_to_v2(u)
                               : tp::yjs::convert_update_format_v2_to_v1(u));
}

// Success: "1 structs clients deleteRanges"; failure: "0code\nmessage".
std::string validate(const std::string& update, int version) {
  auto u = tp::wasm::view_of(update);
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
