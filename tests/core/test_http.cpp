// The HTTP/SSE transport's byte work: POST bodies (message arrays) and the classification of
// frames sent to HTTP clients, against the bytes of the `http` vectors.
#include <catch2/catch.hpp>

#include <string>

#include "tp/common/bytes.hpp"
#include "tp/server/http.hpp"

using namespace tp;

namespace {
Bytes hex(const char* h) { return from_hex(h).value(); }
std::string id(const protocol::MessageId& m) { return {m.data(), m.size()}; }
}  // namespace

TEST_CASE("decode_http_body splits a message array into frames with their ids", "[server][http]") {
  // The client sink's batch: sync-step-1 + update (vector http.steps[1]).
  Bytes body = hex(
      "0d594a530103646f6300000001002e594a530103646f630000020221011d00000137000001040c09747669612068747470010801010000010100000000");
  auto b = server::decode_http_body(body);
  REQUIRE(b.error.empty());
  REQUIRE(b.frames.size() == 2);
  CHECK(id(b.frames[0].id) == "9bc4b470bbcb99a6");
  CHECK(id(b.frames[1].id) == "c8886de378504655");
  CHECK(b.frames[0].needs_answer);
  CHECK(to_hex(b.frames[0].frame) == "594a530103646f630000000100");
  // Two acks (the client's POST of acks, vector clientFallback): nothing to wait for.
  Bytes acks = hex("19594a5301000002106338396235363831323966616434663300");
  auto a = server::decode_http_body(acks);
  REQUIRE(a.error.empty());
  REQUIRE(a.frames.size() == 1);
  CHECK_FALSE(a.frames[0].needs_answer);
  CHECK(server::decode_http_body({}).frames.empty());
  CHECK(server::decode_http_body({}).error.empty());
}

TEST_CASE("decode_http_body refuses the whole body for one bad element", "[server][http]") {
  // YJSping inside the array: the reference's decode error.
  CHECK(server::decode_http_body(hex("07594a5370696e67")).error == "Failed to decode update message: Invalid version");
  auto b = server::decode_http_body(hex("0d594a530103646f63000000010003616263"));
  CHECK(b.error == "Invalid message");
  CHECK(b.frames.empty());
  CHECK_FALSE(server::decode_http_body(hex("0d594a53")).error.empty());  // truncated element
  CHECK_FALSE(server::decode_http_body(hex("ff")).error.empty());
}

TEST_CASE("classify_sent_frame names a frame and the message an ack answers", "[server][http]") {
  auto ack = server::classify_sent_frame(hex("594a5301000002103962633462343730626263623939613600"));
  CHECK(ack.is_ack);
  CHECK(ack.answers == "9bc4b470bbcb99a6");
  CHECK(id(ack.id) == "21a6f14730f82a51");
  auto step2 = server::classify_sent_frame(
      hex("594a530103646f630000010221011d00000137000001040c09747669612068747470010801010000010100000000"));
  CHECK_FALSE(step2.is_ack);
  CHECK(id(step2.id) == "e6da63d49bf53e8a");
  auto step1 = server::classify_sent_frame(hex("594a530103646f6300000003013708"));
  CHECK(id(step1.id) == "7fead74a7918c248");
  CHECK_FALSE(server::classify_sent_frame(hex("594a5370696e67")).is_ack);  // not a message: never an ack
}
