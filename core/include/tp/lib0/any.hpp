// lib0 `any`: the self-describing value encoding Teleportal uses for presence data and RPC payloads
// (spec 1.3). One tag byte (116..127) then the body. The model keeps the wire kind of every number
// (integer / float32 / float64) so a decoded value re-encodes byte for byte; `Any::number(double)`
// applies lib0's writer classification for values that come from JS or the server.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"
#include "tp/lib0/decoding.hpp"
#include "tp/lib0/encoding.hpp"

namespace tp::lib0 {

// Wire tags, written out (the reader indexes a table with 127 - tag).
enum class AnyTag : std::uint8_t {
  undefined = 127,
  null = 126,
  integer = 125,
  float32 = 124,
  float64 = 123,
  bigint = 122,
  false_ = 121,
  true_ = 120,
  string = 119,
  object = 118,
  array = 117,
  bytes = 116,
};

enum class AnyKind : std::uint8_t {
  undefined,
  null,
  integer,
  float32,
  float64,
  bigint,
  boolean,
  string,
  object,
  array,
  bytes,
};

class Any;
using AnyArray = std::vector<Any>;
// Keys in wire order (duplicates kept, so decode -> encode is byte-identical). JS objects order
// integer-like keys first and keep the last duplicate; `js_key_order` computes that view.
using AnyObject = std::vector<std::pair<std::string, Any>>;

class Any {
 public:
  struct Undefined {
    bool operator==(const Undefined&) const { return true; }
  };
  struct Null {
    bool operator==(const Null&) const { return true; }
  };
  // lib0 varInt is sign-magnitude: `negative` with value 0 is -0.
  struct Integer {
    std::int64_t value = 0;
    bool negative = false;
    bool operator==(const Integer& o) const { return value == o.value && negative == o.negative; }
  };
  struct Float32 {
    float value = 0;
    bool operator==(const Float32& o) const;  // bitwise, so NaN == NaN and -0 != 0
  };
  struct Float64 {
    double value = 0;
    bool operator==(const Float64& o) const;  // bitwise
  };
  struct BigInt {
    std::int64_t value = 0;
    bool operator==(const BigInt& o) const { return value == o.value; }
  };

  Any() = default;  // undefined

  static Any undefined() { return Any(); }
  static Any null() { return Any(std::in_place, Null{}); }
  static Any integer(std::int64_t v);
  static Any negative_zero() { return Any(std::in_place, Integer{0, true}); }
  static Any float32(float v) { return Any(std::in_place, Float32{v}); }
  static Any float64(double v) { return Any(std::in_place, Float64{v}); }
  // lib0 writeAny number classification: integer with |v| <= 2^31-1 (incl. -0) -> integer,
  // else a value that survives float32 -> float32, else float64.
  static Any number(double v);
  static Any bigint(std::int64_t v) { return Any(std::in_place, BigInt{v}); }
  static Any boolean(bool v) { return Any(std::in_place, v); }
  static Any string(std::string v) { return Any(std::in_place, std::move(v)); }
  static Any array(AnyArray v = {}) { return Any(std::in_place, std::move(v)); }
  static Any object(AnyObject v = {}) { return Any(std::in_place, std::move(v)); }
  static Any bytes(Bytes v) { return Any(std::in_place, std::move(v)); }

  AnyKind kind() const { return static_cast<AnyKind>(v_.index()); }
  bool is_undefined() const { return kind() == AnyKind::undefined; }
  bool is_null() const { return kind() == AnyKind::null; }
  bool is_object() const { return kind() == AnyKind::object; }
  bool is_array() const { return kind() == AnyKind::array; }

  // Numeric value as JS sees it (integer/float32/float64/bigint); 0 for other kinds.
  double as_number() const;
  const Integer& as_integer() const { return std::get<Integer>(v_); }
  std::int64_t as_bigint() const { return std::get<BigInt>(v_).value; }
  bool as_bool() const { return std::get<bool>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const AnyArray& as_array() const { return std::get<AnyArray>(v_); }
  AnyArray& as_array() { return std::get<AnyArray>(v_); }
  const AnyObject& as_object() const { return std::get<AnyObject>(v_); }
  AnyObject& as_object() { return std::get<AnyObject>(v_); }
  const Bytes& as_bytes() const { return std::get<Bytes>(v_); }

  // Structural equality (wire kinds must match; floats compared bitwise; object keys in order).
  bool operator==(const Any& o) const;
  bool operator!=(const Any& o) const { return !(*this == o); }

 private:
  using Value = std::variant<Undefined, Null, Integer, Float32, Float64, BigInt, bool, std::string,
                             AnyObject, AnyArray, Bytes>;
  template <class T>
  Any(std::in_place_t, T v) : v_(std::move(v)) {}
  Value v_;
};

// Nesting deeper than this is rejected ("nesting_too_deep"): JS would overflow its stack, and we
// must never recurse without bound on untrusted input.
constexpr int kMaxAnyDepth = 1000;

// Reads one `any`. On failure the decoder holds the error (codes: truncated, integer_out_of_range,
// length_out_of_range, invalid_utf8, bad_any_tag, nesting_too_deep).
Any read_any(Decoder& d);
void write_any(Encoder& e, const Any& v);
Bytes encode_any(const Any& v);
Result<Any> decode_any(ByteView bytes);  // reads one value, ignores trailing bytes (like lib0)

// JS property order of an object: indices into `obj`, integer-like keys ascending first, then the
// others in first-insertion order; a duplicated key keeps its first position and its last value.
std::vector<std::size_t> js_key_order(const AnyObject& obj);
bool is_array_index_key(const std::string& key);

// JSON rendering in the vectors' conventions: bytes {"$hex"}, bigint {"$bigint"},
// undefined {"$undefined":true}, NaN/Infinity/-Infinity/-0 {"$number"}; objects in JS key order.
nlohmann::ordered_json any_to_json(const Any& v);

}  // namespace tp::lib0
