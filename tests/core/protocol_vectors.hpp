// Shared helpers for the protocol / lib0 vector tests: loading protocol.json and mapping the
// reference's error texts to our stable error codes.
#pragma once
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tp/common/bytes.hpp"

namespace tp::test {

// nlohmann rejects lone UTF-16 surrogate escapes, which the vectors use on purpose (a JS string
// with an unpaired surrogate). The platform UTF-8 encoder turns them into U+FFFD, so do that here.
inline std::string replace_lone_surrogates(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  auto hexval = [&](std::size_t at) -> int {
    if (at + 6 > text.size() || text[at] != '\\' || text[at + 1] != 'u') return -1;
    return std::stoi(text.substr(at + 2, 4), nullptr, 16);
  };
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == '\\') {
      out += "\\\\";
      i += 2;
      continue;
    }
    int u = hexval(i);
    if (u >= 0xd800 && u <= 0xdbff) {
      int next = hexval(i + 6);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += text.substr(i, 12);
        i += 12;
      } else {
        out += "\\ufffd";
        i += 6;
      }
      continue;
    }
    if (u >= 0xdc00 && u <= 0xdfff) {
      out += "\\ufffd";
      i += 6;
      continue;
    }
    out += text[i++];
  }
  return out;
}

inline const nlohmann::json& protocol_vectors() {
  static const nlohmann::json v = [] {
    std::ifstream f(std::string(TP_VECTORS_DIR) + "/protocol.json");
    std::stringstream ss;
    ss << f.rdbuf();
    return nlohmann::json::parse(replace_lone_surrogates(ss.str()));
  }();
  return v;
}

// Same file with object key order preserved (for `any` objects, whose key order is on the wire).
inline const nlohmann::ordered_json& protocol_vectors_ordered() {
  static const nlohmann::ordered_json v = [] {
    std::ifstream f(std::string(TP_VECTORS_DIR) + "/protocol.json");
    std::stringstream ss;
    ss << f.rdbuf();
    return nlohmann::ordered_json::parse(replace_lone_surrogates(ss.str()));
  }();
  return v;
}

inline Bytes hex_bytes(const std::string& hex) {
  auto b = from_hex(hex);
  REQUIRE(b.has_value());
  return *b;
}

// The reference's innermost error (name + message) -> our stable code.
inline std::string code_for_reference_error(const nlohmann::json& inner) {
  const std::string name = inner.value("name", "Error");
  const std::string msg = inner.value("message", "");
  auto has = [&](const char* s) { return msg.find(s) != std::string::npos; };
  if (msg == "Invalid magic number") return "bad_magic";
  if (msg == "Invalid version") return "bad_version";
  if (msg == "Unexpected end of array") return "truncated";
  if (msg == "Integer out of Range") return "integer_out_of_range";
  if (msg == "Invalid target type") return "unknown_message_type";
  if (msg == "Failed to decode doc update, unexpected value") return "unknown_subtype";
  if (msg == "Invalid presence sub-type") return "bad_presence_subtype";
  if (msg == "Invalid presence data: expected an object") return "bad_presence_data";
  if (msg == "Invalid RPC request type") return "bad_rpc_request_type";
  if (msg == "Invalid message") return "invalid_message";
  if (has("Unsupported content-encrypted version")) return "unsupported_envelope_version";
  if (has("utf-8") || has("UTF-8")) return "invalid_utf8";
  if (name == "RangeError") return "length_out_of_range";
  if (name == "TypeError") return "bad_any_tag";  // readAnyLookupTable[...] is not a function
  return "unmapped: " + msg;
}

}  // namespace tp::test
