#include <catch2/catch.hpp>

#include "tp/lib0/decoding.hpp"
#include "tp/lib0/encoding.hpp"

using namespace tp;

TEST_CASE("varUint round-trips and is minimal", "[lib0]") {
  for (std::uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, 4294967295ull, 9007199254740991ull}) {
    lib0::Encoder e;
    e.write_var_uint(v);
    lib0::Decoder d(e.bytes());
    CHECK(d.read_var_uint() == v);
    CHECK(d.ok());
    CHECK(d.remaining() == 0);
  }
  lib0::Encoder e;
  e.write_var_uint(300);
  CHECK(to_hex(e.bytes()) == "ac02");
}

TEST_CASE("decoder errors are sticky and bounded", "[lib0]") {
  Bytes b{0x05, 'a', 'b'};
  lib0::Decoder d(b);
  CHECK(d.read_var_bytes().size == 0);
  CHECK_FALSE(d.ok());
  CHECK(d.error().code == "length_out_of_range");
  CHECK(d.read_u8() == 0);
}
