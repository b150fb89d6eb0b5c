// The Y.js update algebra against tests/vectors/sync.json (bytes produced by yjs 13.6.31).
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tp/yjs/updates.hpp"

using namespace tp;
using json = nlohmann::json;

namespace {

const json& sync_vectors() {
  static const json j = [] {
    std::ifstream f(std::string(TP_VECTORS_DIR) + "/sync.json");
    return json::parse(f);
  }();
  return j;
}

Bytes hex(const json& v) {
  auto b = from_hex(v.get<std::string>());
  REQUIRE(b.has_value());
  return *b;
}

std::string hex_of(const Result<Bytes>& r) {
  if (!r) return "error:" + r.error().code + ":" + r.error().message;
  return to_hex(r.value());
}

std::vector<Bytes> hex_list(const json& arr) {
  std::vector<Bytes> out;
  for (const auto& v : arr) out.push_back(hex(v));
  return out;
}

std::vector<ByteView> views(const std::vector<Bytes>& v) { return {v.begin(), v.end()}; }

// Teleportal's plaintext content envelope around a V2 structure update (spec 1.4).
Bytes envelope(const Bytes& update) {
  Bytes out{1};
  std::size_t n = update.size();
  while (n > 0x7f) {
    out.push_back(static_cast<std::uint8_t>(0x80 | (n & 0x7f)));
    n >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(n));
  out.insert(out.end(), update.begin(), update.end());
  out.push_back(0);
  out.push_back(0);
  return out;
}

// Returns the structure update inside a plaintext envelope (as written by the storage vectors).
Bytes unwrap(const Bytes& env) {
  REQUIRE(env.size() >= 3);
  REQUIRE(env[0] == 1);
  std::size_t pos = 1, n = 0, shift = 0;
  while (true) {
    std::uint8_t b = env[pos++];
    n |= static_cast<std::size_t>(b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) break;
  }
  return Bytes(env.begin() + static_cast<long>(pos), env.begin() + static_cast<long>(pos + n));
}

}  // namespace

TEST_CASE("sync.json facts: empty updates, empty lists, zero-length inputs", "[yjs]") {
  const json& f = sync_vectors()["facts"];
  CHECK(to_hex(yjs::empty_update_v1()) == f["emptyDocUpdateV1"]);
  CHECK(to_hex(yjs::empty_update_v2()) == f["emptyDocUpdateV2"]);
  CHECK(hex_of(yjs::merge_updates_v1({})) == f["mergeUpdatesEmptyList"]);
  CHECK(hex_of(yjs::merge_updates_v2({})) == f["mergeUpdatesV2EmptyList"]);
  CHECK(to_hex(yjs::encode_state_vector({})) == f["emptyStateVector"]);

  Bytes hello = hex(sync_vectors()["cases"][0]["updatesV2"][0]);
  Bytes empty = yjs::empty_update_v2();
  CHECK(hex_of(yjs::merge_updates_v2({ByteView(empty), ByteView(hello)})) == f["mergeUpdatesV2WithEmptyUpdate"]);
  // A single input is returned as is, even a zero-length one.
  Bytes zero;
  CHECK(hex_of(yjs::merge_updates_v2({ByteView(zero)})) == f["mergeUpdatesV2ZeroLengthInput"]);
  CHECK(f["mergeUpdatesSingleReturnsSameBytes"] == true);
  CHECK(hex_of(yjs::merge_updates_v2({ByteView(hello)})) == to_hex(hello));

  auto two = yjs::merge_updates_v2({ByteView(hello), ByteView(zero)});
  REQUIRE_FALSE(two.ok());
  CHECK(two.error().code == "truncated");
  CHECK(two.error().message.find(f["mergeUpdatesV2TwoInputsOneZeroLength"]["error"][0].get<std::string>()) == 0);

  auto d = yjs::diff_update_v2(hello, ByteView(zero));
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().message.find(f["diffUpdateV2WithEmptySVBytes"]["error"][0].get<std::string>()) == 0);

  auto sv = yjs::encode_state_vector_from_update_v2(ByteView(zero));
  REQUIRE_FALSE(sv.ok());
  CHECK(sv.error().message.find(f["encodeStateVectorFromUpdateV2ZeroLength"]["error"][0].get<std::string>()) == 0);

  const json& ex = f["stateVectorExample"];
  yjs::StateVector s{{300, 2}, {1, 1}};
  CHECK(to_hex(yjs::encode_state_vector(s)) == ex["hex"]);
  auto back = yjs::decode_state_vector(hex(ex["hex"]));
  REQUIRE(back.ok());
  CHECK(back.value() == s);
}

TEST_CASE("sync.json cases: per-update state vectors and conversions", "[yjs]") {
  for (const auto& c : sync_vectors()["cases"]) {
    INFO("case " << c["name"].get<std::string>());
    auto v1 = hex_list(c["updatesV1"]);
    auto v2 = hex_list(c["updatesV2"]);
    REQUIRE(v1.size() == c["perUpdate"].size());
    for (std::size_t i = 0; i < v1.size(); ++i) {
      INFO("update " << i);
      const json& p = c["perUpdate"][i];
      CHECK(yjs::validate_update_v1(v1[i]).ok());
      CHECK(yjs::validate_update_v2(v2[i]).ok());
      CHECK(hex_of(yjs::encode_state_vector_from_update_v1(v1[i])) == p["stateVectorFromV1"]);
      CHECK(hex_of(yjs::encode_state_vector_from_update_v2(v2[i])) == p["stateVectorFromV2"]);
      CHECK(hex_of(yjs::convert_update_format_v1_to_v2(v1[i])) == p["v1ToV2"]);
      CHECK(hex_of(yjs::convert_update_format_v2_to_v1(v2[i])) == p["v2ToV1"]);
    }
  }
}

TEST_CASE("sync.json cases: merges in both orders, merged state vectors and conversions", "[yjs]") {
  for (const auto& c : sync_vectors()["cases"]) {
    INFO("case " << c["name"].get<std::string>());
    auto v1 = hex_list(c["updatesV1"]);
    auto v2 = hex_list(c["updatesV2"]);
    CHECK(hex_of(yjs::merge_updates_v1(views(v1))) == c["mergeUpdates"]);
    CHECK(hex_of(yjs::merge_updates_v2(views(v2))) == c["mergeUpdatesV2"]);
    auto r1 = v1;
    auto r2 = v2;
    std::reverse(r1.begin(), r1.end());
    std::reverse(r2.begin(), r2.end());
    CHECK(hex_of(yjs::merge_updates_v1(views(r1))) == c["mergeUpdatesReversedOrder"]);
    CHECK(hex_of(yjs::merge_updates_v2(views(r2))) == c["mergeUpdatesV2ReversedOrder"]);
    Bytes m1 = hex(c["mergeUpdates"]), m2 = hex(c["mergeUpdatesV2"]);
    CHECK(hex_of(yjs::encode_state_vector_from_update_v1(m1)) == c["stateVectorFromMergedV1"]);
    CHECK(hex_of(yjs::encode_state_vector_from_update_v2(m2)) == c["stateVectorFromMergedV2"]);
    CHECK(hex_of(yjs::convert_update_format_v1_to_v2(m1)) == c["mergedV1ToV2"]);
    CHECK(hex_of(yjs::convert_update_format_v2_to_v1(m2)) == c["mergedV2ToV1"]);
    for (const auto& d : c["diffs"]) {
      INFO("diff against " << d["stateVectorLabel"].get<std::string>());
      Bytes sv = hex(d["stateVector"]);
      CHECK(hex_of(yjs::diff_update_v1(m1, sv)) == d["diffUpdate"]);
      CHECK(hex_of(yjs::diff_update_v2(m2, sv)) == d["diffUpdateV2"]);
    }
  }
}

TEST_CASE("sync.json teleportalStorage: pending log, materialized state, sync-step-1 replies", "[yjs]") {
  const json& t = sync_vectors()["teleportalStorage"];
  std::vector<Bytes> pending;
  for (const auto& s : t["steps"]) {
    Bytes u = unwrap(hex(s["updateDataHex"]));
    REQUIRE(yjs::validate_update_v2(u).ok());
    pending.push_back(u);
  }
  REQUIRE(pending.size() == t["pendingLog"].size());
  for (std::size_t i = 0; i < pending.size(); ++i) CHECK(to_hex(pending[i]) == t["pendingLog"][i]);
  auto state = yjs::merge_updates_v2(views(pending));
  REQUIRE(state.ok());
  CHECK(to_hex(state.value()) == t["materializedStateV2"]);
  for (const auto& s : t["syncStep1"]) {
    Bytes sv = hex(s["clientStateVector"]);
    if (s.contains("note")) {
      CHECK(s["replyUpdateEnvelope"] == "01000000");
      continue;
    }
    auto diff = yjs::diff_update_v2(state.value(), sv);
    REQUIRE(diff.ok());
    CHECK(to_hex(envelope(diff.value())) == s["replyUpdateEnvelope"]);
    CHECK(hex_of(yjs::encode_state_vector_from_update_v2(state.value())) == s["replyStateVector"]);
  }
}

TEST_CASE("strict validation rejects malformed updates with stable codes", "[yjs]") {
  Bytes hello = hex(sync_vectors()["cases"][0]["updatesV2"][0]);
  Bytes hello_v1 = hex(sync_vectors()["cases"][0]["updatesV1"][0]);

  Bytes trailing = hello;
  trailing.push_back(0);
  auto r = yjs::validate_update_v2(trailing);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "trailing_bytes");

  Bytes trailing1 = hello_v1;
  trailing1.push_back(7);
  CHECK(yjs::validate_update_v1(trailing1).error().code == "trailing_bytes");

  for (std::size_t cut = 0; cut < hello.size(); ++cut) {
    Bytes t(hello.begin(), hello.begin() + static_cast<long>(cut));
    auto v = yjs::validate_update_v2(t);
    INFO("cut at " << cut);
    CHECK_FALSE(v.ok());
  }
  for (std::size_t cut = 0; cut < hello_v1.size(); ++cut) {
    Bytes t(hello_v1.begin(), hello_v1.begin() + static_cast<long>(cut));
    CHECK_FALSE(yjs::validate_update_v1(t).ok());
  }

  // V1: 1 client, 1 struct, client 1, clock 0, info with content ref 12 (unknown).
  Bytes unknown_ref{1, 1, 1, 0, 0x0c, 1, 1, 't', 0};
  CHECK(yjs::validate_update_v1(unknown_ref).error().code == "unknown_content_ref");
  // String content with invalid UTF-8.
  Bytes bad_utf8{1, 1, 1, 0, 0x04, 1, 1, 't', 1, 0xff, 0};
  CHECK(yjs::validate_update_v1(bad_utf8).error().code == "invalid_utf8");
  // A declared string length far beyond the input.
  Bytes huge_len{1, 1, 1, 0, 0x04, 1, 1, 't', 0xff, 0xff, 0xff, 0x7f, 0};
  CHECK(yjs::validate_update_v1(huge_len).error().code == "length_out_of_range");
  // Millions of clients declared in four bytes.
  Bytes many{0xff, 0xff, 0xff, 0x0f};
  CHECK(yjs::validate_update_v1(many).error().code == "length_out_of_range");
  // Type content with type ref 9.
  Bytes bad_type{1, 1, 1, 0, 0x07, 1, 1, 't', 9, 0};
  CHECK(yjs::validate_update_v1(bad_type).error().code == "unknown_type_ref");
  // Zero-length GC.
  Bytes zero_gc{1, 1, 1, 0, 0x00, 0, 0};
  CHECK(yjs::validate_update_v1(zero_gc).error().code == "zero_length_struct");
  // V2 with a non-zero feature flag.
  Bytes flagged = yjs::empty_update_v2();
  flagged[0] = 1;
  CHECK(yjs::validate_update_v2(flagged).error().code == "unsupported_feature_flag");
  // Delete set with an empty range (V1) and unsorted ranges.
  Bytes empty_range{0, 1, 5, 1, 3, 0};
  CHECK(yjs::validate_update_v1(empty_range).error().code == "invalid_delete_set");
  Bytes unsorted{0, 1, 5, 2, 9, 1, 3, 1};
  CHECK(yjs::validate_update_v1(unsorted).error().code == "invalid_delete_set");
  // An Any content with an unknown tag.
  Bytes bad_any{1, 1, 1, 0, 0x08, 1, 1, 'a', 1, 50, 0};
  CHECK(yjs::validate_update_v1(bad_any).error().code == "unknown_any_tag");
  // Invalid JSON in an embed (V1).
  Bytes bad_json{1, 1, 1, 0, 0x05, 1, 1, 't', 2, '{', 'x', 0};
  CHECK(yjs::validate_update_v1(bad_json).error().code == "invalid_json");

  auto info = yjs::validate_update_v2(hello);
  REQUIRE(info.ok());
  CHECK(info.value().structs == 1);
  CHECK(info.value().clients == 1);
  CHECK(yjs::validate_update_v2(yjs::empty_update_v2()).value().empty);

  // State vectors are strict too.
  Bytes sv_trailing{1, 1, 1, 9};
  CHECK(yjs::decode_state_vector(sv_trailing).error().code == "trailing_bytes");
  Bytes sv_dup{2, 1, 1, 1, 2};
  CHECK(yjs::decode_state_vector(sv_dup).error().code == "duplicate_client");
}

TEST_CASE("a V1 update that lists a client twice converts to V2 without shifting clocks (fuzz_yjs)", "[yjs]") {
  // Found by fuzz_yjs: client 0 listed in two struct blocks, both at clock 0, the second one
  // 2^53-1 long. Each block is valid on its own; the converter used to continue the first
  // block's clocks into the second (as yjs does), which ran past 2^53-1.
  auto from = from_hex(
      "03010000010000ffffff2003010000010000ffff01ffffffffffffff0f0101010100010101010101"
      "01ffff8d8101");
  REQUIRE(from.has_value());
  const Bytes& v1 = *from;
  REQUIRE(yjs::validate_update_v1(v1).ok());
  auto v2 = yjs::convert_update_format_v1_to_v2(v1);
  REQUIRE(v2.ok());
  auto info = yjs::validate_update_v2(v2.value());
  INFO(hex_of(v2));
  REQUIRE(info.ok());
  // Nothing is lost or moved: the same structs, and converting back gives the input's state vector.
  CHECK(info.value().structs == yjs::validate_update_v1(v1).value().structs);
  auto back = yjs::convert_update_format_v2_to_v1(v2.value());
  REQUIRE(back.ok());
  CHECK(yjs::validate_update_v1(back.value()).ok());
  CHECK(hex_of(yjs::encode_state_vector_from_update_v1(back.value())) ==
        hex_of(yjs::encode_state_vector_from_update_v1(v1)));
  // Updates that list each client once (everything yjs writes) convert byte for byte as before:
  // sync.json's conversion cases above still pass.
}
