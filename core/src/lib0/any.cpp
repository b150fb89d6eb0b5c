#include "tp/lib0/any.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <nlohmann/json.hpp>

namespace tp::lib0 {

bool Any::Float32::operator==(const Float32& o) const {
  return std::memcmp(&value, &o.value, sizeof value) == 0;
}
bool Any::Float64::operator==(const Float64& o) const {
  return std::memcmp(&value, &o.value, sizeof value) == 0;
}

Any Any::integer(std::int64_t v) { return Any(std::in_place, Integer{v, v < 0}); }

Any Any::number(double v) {
  constexpr double kMaxInt31 = 2147483647.0;
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) <= kMaxInt31) {
    return Any(std::in_place, Integer{static_cast<std::int64_t>(v), std::signbit(v)});
  }
  // Survives a float32 round trip (NaN never does, +-Infinity always does). Finite values beyond
  // the float range are not converted at all (that cast is undefined in C++).
  if (std::isinf(v) || (std::isfinite(v) && std::fabs(v) <= FLT_MAX &&
                        static_cast<double>(static_cast<float>(v)) == v)) {
    return float32(static_cast<float>(v));
  }
  return float64(v);
}

double Any::as_number() const {
  switch (kind()) {
    case AnyKind::integer: {
      const Integer& i = std::get<Integer>(v_);
      return i.value == 0 && i.negative ? -0.0 : static_cast<double>(i.value);
    }
    case AnyKind::float32:
      return std::get<Float32>(v_).value;
    case AnyKind::float64:
      return std::get<Float64>(v_).value;
    case AnyKind::bigint:
      return static_cast<double>(std::get<BigInt>(v_).value);
    default:
      return 0;
  }
}

bool Any::operator==(const Any& o) const { return v_ == o.v_; }

// ---- reader ------------------------------------------------------------------------------------

static Any read_any_at(Decoder& d, int depth) {
  if (!d.ok()) return {};
  if (depth > kMaxAnyDepth) {
    d.fail("nesting_too_deep", "Any value nested deeper than " + std::to_string(kMaxAnyDepth));
    return {};
  }
  if (!d.has_more()) {
    // lib0 indexes its reader table with 127 - undefined and throws a TypeError.
    d.fail("bad_any_tag", "Missing any value tag");
    return {};
  }
  const std::uint8_t tag = d.read_u8();
  switch (static_cast<AnyTag>(tag)) {
    case AnyTag::undefined:
      return Any::undefined();
    case AnyTag::null:
      return Any::null();
    case AnyTag::integer: {
      // lib0's readVarInt at the end of the buffer yields 0 without an error.
      if (!d.has_more()) return Any::integer(0);
      bool negative_zero = false;
      std::int64_t v = d.read_var_int(&negative_zero);
      if (!d.ok()) return {};
      return negative_zero ? Any::negative_zero() : Any::integer(v);
    }
    case AnyTag::float32: {
      float f = d.read_float32_be();
      return d.ok() ? Any::float32(f) : Any();
    }
    case AnyTag::float64: {
      double f = d.read_float64_be();
      return d.ok() ? Any::float64(f) : Any();
    }
    case AnyTag::bigint: {
      std::int64_t v = d.read_int64_be();
      return d.ok() ? Any::bigint(v) : Any();
    }
    case AnyTag::false_:
      return Any::boolean(false);
    case AnyTag::true_:
      return Any::boolean(true);
    case AnyTag::string: {
      std::string_view s = d.read_var_string_view();
      return d.ok() ? Any::string(std::string(s)) : Any();
    }
    case AnyTag::object: {
      // No reserve from the declared count: every entry consumes at least one byte or fails.
      std::uint64_t n = d.read_var_uint();
      AnyObject obj;
      for (std::uint64_t i = 0; i < n && d.ok(); ++i) {
        std::string key(d.read_var_string_view());
        Any value = read_any_at(d, depth + 1);
        if (!d.ok()) break;
        obj.emplace_back(std::move(key), std::move(value));
      }
      return d.ok() ? Any::object(std::move(obj)) : Any();
    }
    case AnyTag::array: {
      std::uint64_t n = d.read_var_uint();
      AnyArray arr;
      for (std::uint64_t i = 0; i < n && d.ok(); ++i) {
        Any value = read_any_at(d, depth + 1);
        if (!d.ok()) break;
        arr.push_back(std::move(value));
      }
      return d.ok() ? Any::array(std::move(arr)) : Any();
    }
    case AnyTag::bytes: {
      ByteView b = d.read_var_bytes();
      return d.ok() ? Any::bytes(b.to_bytes()) : Any();
    }
  }
  d.fail("bad_any_tag", "Invalid any value tag " + std::to_string(tag) + " (expected 116..127)");
  return {};
}

Any read_any(Decoder& d) { return read_any_at(d, 0); }

Result<Any> decode_any(ByteView bytes) {
  Decoder d(bytes);
  Any v = read_any(d);
  if (!d.ok()) return d.error();
  return v;
}

// ---- writer ------------------------------------------------------------------------------------

void write_any(Encoder& e, const Any& v) {
  switch (v.kind()) {
    case AnyKind::undefined:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::undefined));
      return;
    case AnyKind::null:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::null));
      return;
    case AnyKind::integer: {
      const Any::Integer& i = v.as_integer();
      e.write_u8(static_cast<std::uint8_t>(AnyTag::integer));
      std::uint64_t magnitude = i.value < 0 ? 0 - static_cast<std::uint64_t>(i.value)
                                            : static_cast<std::uint64_t>(i.value);
      e.write_var_int_sign(magnitude, i.negative);
      return;
    }
    case AnyKind::float32:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::float32));
      e.write_float32_be(static_cast<float>(v.as_number()));
      return;
    case AnyKind::float64:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::float64));
      e.write_float64_be(v.as_number());
      return;
    case AnyKind::bigint:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::bigint));
      e.write_int64_be(v.as_bigint());
      return;
    case AnyKind::boolean:
      e.write_u8(static_cast<std::uint8_t>(v.as_bool() ? AnyTag::true_ : AnyTag::false_));
      return;
    case AnyKind::string:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::string));
      e.write_var_string(v.as_string());
      return;
    case AnyKind::object:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::object));
      e.write_var_uint(v.as_object().size());
      for (const auto& [key, value] : v.as_object()) {
        e.write_var_string(key);
        write_any(e, value);
      }
      return;
    case AnyKind::array:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::array));
      e.write_var_uint(v.as_array().size());
      for (const Any& item : v.as_array()) write_any(e, item);
      return;
    case AnyKind::bytes:
      e.write_u8(static_cast<std::uint8_t>(AnyTag::bytes));
      e.write_var_bytes(v.as_bytes());
      return;
  }
}

Bytes encode_any(const Any& v) {
  Encoder e;
  write_any(e, v);
  return e.take();
}

// ---- JS key order ------------------------------------------------------------------------------

bool is_array_index_key(const std::string& key) {
  // Canonical decimal of an integer in [0, 2^32 - 2]: no sign, no leading zero, <= 10 digits.
  if (key.empty() || key.size() > 10) return false;
  if (key.size() > 1 && key[0] == '0') return false;
  std::uint64_t v = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v <= 4294967294ull;
}

std::vector<std::size_t> js_key_order(const AnyObject& obj) {
  // First occurrence fixes the position, the last occurrence supplies the value.
  std::vector<std::size_t> order;
  std::unordered_map<std::string_view, std::size_t> slot;  // key -> position in `order`
  for (std::size_t i = 0; i < obj.size(); ++i) {
    auto [it, inserted] = slot.emplace(obj[i].first, order.size());
    if (inserted) {
      order.push_back(i);
    } else {
      order[it->second] = i;  // keep position, take the later value
    }
  }
  std::stable_partition(order.begin(), order.end(),
                        [&](std::size_t i) { return is_array_index_key(obj[i].first); });
  auto first_named = std::find_if(order.begin(), order.end(), [&](std::size_t i) {
    return !is_array_index_key(obj[i].first);
  });
  std::sort(order.begin(), first_named, [&](std::size_t a, std::size_t b) {
    return std::stoull(obj[a].first) < std::stoull(obj[b].first);
  });
  return order;
}

// ---- JSON --------------------------------------------------------------------------------------

static nlohmann::ordered_json special_number(const char* s) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["$number"] = s;
  return j;
}

static nlohmann::ordered_json number_to_json(double x) {
  if (std::isnan(x)) return special_number("NaN");
  if (std::isinf(x)) return special_number(x > 0 ? "Infinity" : "-Infinity");
  if (x == 0 && std::signbit(x)) return special_number("-0");
  if (std::floor(x) == x && std::fabs(x) < 9.2e18) return static_cast<std::int64_t>(x);
  return x;
}

nlohmann::ordered_json any_to_json(const Any& v) {
  using json = nlohmann::ordered_json;
  switch (v.kind()) {
    case AnyKind::undefined: {
      json j = json::object();
      j["$undefined"] = true;
      return j;
    }
    case AnyKind::null:
      return nullptr;
    case AnyKind::integer:
    case AnyKind::float32:
    case AnyKind::float64:
      return number_to_json(v.as_number());
    case AnyKind::bigint: {
      json j = json::object();
      j["$bigint"] = std::to_string(v.as_bigint());
      return j;
    }
    case AnyKind::boolean:
      return v.as_bool();
    case AnyKind::string:
      return v.as_string();
    case AnyKind::object: {
      json j = json::object();
      const AnyObject& obj = v.as_object();
      for (std::size_t i : js_key_order(obj)) j[obj[i].first] = any_to_json(obj[i].second);
      return j;
    }
    case AnyKind::array: {
      json j = json::array();
      for (const Any& item : v.as_array()) j.push_back(any_to_json(item));
      return j;
    }
    case AnyKind::bytes: {
      json j = json::object();
      j["$hex"] = to_hex(v.as_bytes());
      return j;
    }
  }
  return nullptr;
}

}  // namespace tp::lib0
