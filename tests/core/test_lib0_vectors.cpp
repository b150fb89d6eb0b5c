// protocol.json -> lib0: varUint, varInt, varString, varUint8Array, `any`, reader edge cases.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "protocol_vectors.hpp"
#include "tp/lib0/any.hpp"
#include "tp/lib0/decoding.hpp"
#include "tp/lib0/encoding.hpp"

using namespace tp;
using tp::test::hex_bytes;
using ojson = nlohmann::ordered_json;

namespace {

const ojson& lib0_vectors() { return tp::test::protocol_vectors_ordered()["lib0"]; }

double special_number(const std::string& s) {
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "Infinity") return std::numeric_limits<double>::infinity();
  if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (s == "-0") return -0.0;
  FAIL("unknown $number " << s);
  return 0;
}

// A vector value in JSON conventions -> the JS value it stands for -> Any, as lib0's writer would.
lib0::Any from_js(const ojson& j) {
  if (j.is_null()) return lib0::Any::null();
  if (j.is_boolean()) return lib0::Any::boolean(j.get<bool>());
  if (j.is_number()) return lib0::Any::number(j.get<double>());
  if (j.is_string()) return lib0::Any::string(j.get<std::string>());
  if (j.is_array()) {
    lib0::AnyArray a;
    for (const ojson& x : j) a.push_back(from_js(x));
    return lib0::Any::array(std::move(a));
  }
  if (j.size() == 1 && j.contains("$hex")) return lib0::Any::bytes(hex_bytes(j["$hex"]));
  if (j.size() == 1 && j.contains("$bigint"))
    return lib0::Any::bigint(std::stoll(j["$bigint"].get<std::string>()));
  if (j.size() == 1 && j.contains("$undefined")) return lib0::Any::undefined();
  if (j.size() == 1 && j.contains("$number")) return lib0::Any::number(special_number(j["$number"]));
  lib0::AnyObject o;
  for (auto it = j.begin(); it != j.end(); ++it) o.emplace_back(it.key(), from_js(it.value()));
  return lib0::Any::object(std::move(o));
}

}  // namespace

TEST_CASE("lib0 varUint vectors", "[lib0][vectors]") {
  for (const ojson& v : lib0_vectors()["varUint"]) {
    INFO(v["hex"].get<std::string>());
    lib0::Encoder e;
    e.write_var_uint(v["value"].get<std::uint64_t>());
    CHECK(to_hex(e.bytes()) == v["hex"].get<std::string>());
    Bytes b = hex_bytes(v["hex"]);
    lib0::Decoder d(b);
    CHECK(d.read_var_uint() == v["value"].get<std::uint64_t>());
    CHECK(d.ok());
    CHECK(d.remaining() == 0);
  }
}

TEST_CASE("lib0 varInt vectors (sign-magnitude, -0)", "[lib0][vectors]") {
  for (const ojson& v : lib0_vectors()["varInt"]) {
    INFO(v["hex"].get<std::string>());
    const bool neg_zero = v["value"].is_object();
    const std::int64_t value = neg_zero ? 0 : v["value"].get<std::int64_t>();
    lib0::Encoder e;
    if (neg_zero) {
      e.write_var_int_sign(0, true);
    } else {
      e.write_var_int(value);
    }
    CHECK(to_hex(e.bytes()) == v["hex"].get<std::string>());
    Bytes b = hex_bytes(v["hex"]);
    lib0::Decoder d(b);
    bool nz = false;
    CHECK(d.read_var_int(&nz) == value);
    CHECK(nz == neg_zero);
    CHECK(d.ok());
  }
}

TEST_CASE("lib0 varString vectors", "[lib0][vectors]") {
  for (const ojson& v : lib0_vectors()["varString"]) {
    INFO(v["hex"].get<std::string>());
    lib0::Encoder e;
    e.write_var_string(v["value"].get<std::string>());  // lone surrogates were replaced by U+FFFD
    CHECK(to_hex(e.bytes()) == v["hex"].get<std::string>());
    Bytes b = hex_bytes(v["hex"]);
    lib0::Decoder d(b);
    CHECK(d.read_var_string() == v["roundTrip"].get<std::string>());
    CHECK(d.ok());
  }
}

TEST_CASE("lib0 varUint8Array vectors", "[lib0][vectors]") {
  for (const ojson& v : lib0_vectors()["varUint8Array"]) {
    lib0::Encoder e;
    e.write_var_bytes(hex_bytes(v["valueHex"]));
    CHECK(to_hex(e.bytes()) == v["hex"].get<std::string>());
    Bytes b = hex_bytes(v["hex"]);
    lib0::Decoder d(b);
    CHECK(to_hex(d.read_var_bytes()) == v["valueHex"].get<std::string>());
    CHECK(d.remaining() == 0);
  }
}

TEST_CASE("lib0 any vectors: read back, re-encode, writer classification", "[lib0][any][vectors]") {
  REQUIRE(lib0_vectors()["any"].size() >= 34);
  for (const ojson& v : lib0_vectors()["any"]) {
    INFO(v["label"].get<std::string>());
    Bytes b = hex_bytes(v["hex"]);
    Result<lib0::Any> a = lib0::decode_any(b);
    REQUIRE(a.ok());
    CHECK(lib0::any_to_json(a.value()) == v["readBack"]);  // order-sensitive comparison
    CHECK(to_hex(lib0::encode_any(a.value())) == v["hex"].get<std::string>());
    // What lib0's writer emits for the JS value.
    CHECK(to_hex(lib0::encode_any(from_js(v["readBack"]))) == v["hex"].get<std::string>());
  }
}

TEST_CASE("lib0 reader edge cases", "[lib0][vectors]") {
  for (const ojson& v : lib0_vectors()["readEdgeCases"]) {
    INFO(v["name"].get<std::string>());
    Bytes b = hex_bytes(v["hex"]);
    lib0::Decoder d(b);
    std::uint64_t got = d.read_var_uint();
    if (v.contains("readVarUint")) {
      REQUIRE(d.ok());
      // JS returns a double; values above 2^53 are compared as the double they round to.
      CHECK(static_cast<double>(got) == v["readVarUint"].get<double>());
    } else {
      REQUIRE_FALSE(d.ok());
      CHECK(d.error().code == test::code_for_reference_error(v["error"].back()));
      CHECK(d.error().message == v["error"].back()["message"].get<std::string>());
    }
  }
  // readVarInt past the end returns 0: visible as an `any` integer tag with no body.
  Result<lib0::Any> a = lib0::decode_any(hex_bytes("7d"));
  REQUIRE(a.ok());
  CHECK(a.value().as_number() == lib0_vectors()["readVarIntPastEnd"]["value"].get<double>());
  CHECK_FALSE(std::signbit(a.value().as_number()));
}

TEST_CASE("any: JS key order, equality, limits", "[lib0][any]") {
  lib0::AnyObject o;
  o.emplace_back("z", lib0::Any::integer(1));
  o.emplace_back("2", lib0::Any::integer(2));
  o.emplace_back("1", lib0::Any::integer(3));
  o.emplace_back("z", lib0::Any::integer(4));  // duplicate: first position, last value
  o.emplace_back("01", lib0::Any::integer(5));  // not an array index
  std::vector<std::size_t> order = lib0::js_key_order(o);
  CHECK(order == std::vector<std::size_t>{2, 1, 3, 4});
  CHECK(lib0::any_to_json(lib0::Any::object(o)).dump() == R"({"1":3,"2":2,"z":4,"01":5})");
  CHECK(lib0::is_array_index_key("4294967294"));
  CHECK_FALSE(lib0::is_array_index_key("4294967295"));

  CHECK(lib0::Any::float64(NAN) == lib0::Any::float64(NAN));
  CHECK(lib0::Any::integer(0) != lib0::Any::negative_zero());
  CHECK(lib0::Any::number(-0.0) == lib0::Any::negative_zero());
  CHECK(lib0::Any::integer(1) != lib0::Any::float32(1));

  CHECK(lib0::decode_any(hex_bytes("73")).error().code == "bad_any_tag");
  CHECK(lib0::decode_any(hex_bytes("")).error().code == "bad_any_tag");
  CHECK(lib0::decode_any(hex_bytes("7405aa")).error().code == "length_out_of_range");
  CHECK(lib0::decode_any(hex_bytes("7c0000")).error().code == "length_out_of_range");
  CHECK(lib0::decode_any(hex_bytes("7701ff")).error().code == "invalid_utf8");
  // varUint beyond 64 bits (only reachable with non-minimal forms) is out of range, not wrapped.
  Bytes huge = hex_bytes("80808080808080808002");
  lib0::Decoder d(huge);
  d.read_var_uint();
  CHECK(d.error().code == "integer_out_of_range");
  // Non-minimal 9-byte form of 2^53-1 is fine (running value never exceeds 2^53-1 mid-way).
  Bytes nine = hex_bytes("ffffffffffffff8f00");
  lib0::Decoder d9(nine);
  CHECK(d9.read_var_uint() == lib0::kMaxSafeInteger);
  CHECK(d9.ok());
}
