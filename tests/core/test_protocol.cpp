// Every case of tests/vectors/protocol.json (except lib0, see test_lib0_vectors.cpp) against the
// native codec, plus behaviour the vectors do not pin (strict envelopes, limits, round trips).
#include <catch2/catch.hpp>

#include "protocol_vectors.hpp"
#include "tp/protocol/envelope.hpp"
#include "tp/protocol/json.hpp"
#include "tp/protocol/message.hpp"

using namespace tp;
using namespace tp::protocol;
using tp::test::hex_bytes;
using tp::test::protocol_vectors;
using json = nlohmann::json;

namespace {

json rendered(const Message& m) { return json::parse(message_to_json(m).dump()); }
json rendered(const ContentEncryptedEnvelope& e) { return json::parse(envelope_to_json(e).dump()); }

std::vector<std::string> chain_messages(const json& chain) {
  std::vector<std::string> out;
  for (const json& e : chain) out.push_back(e["message"].get<std::string>());
  return out;
}

// Checks an error against the reference chain: stable code from the innermost error; messages
// equal, except runtime-specific TypeError texts (bad any tag) where the project prefix must match.
void check_error(const Error& err, const json& ref_chain) {
  const std::string want_code = test::code_for_reference_error(ref_chain.back());
  CHECK(err.code == want_code);
  std::vector<std::string> got = error_chain(err);
  std::vector<std::string> want = chain_messages(ref_chain);
  if (want_code == "bad_any_tag") {
    REQUIRE(got.size() == want.size());
    const std::string prefix = "Failed to decode update message: ";
    CHECK(got.front().rfind(prefix, 0) == 0);
    CHECK(want.front().rfind(prefix, 0) == 0);
  } else {
    CHECK(got == want);
  }
}

}  // namespace

TEST_CASE("valid frames decode to the reference shape, id and bytes", "[protocol][vectors]") {
  const json& valid = protocol_vectors()["valid"];
  REQUIRE(valid.size() >= 45);
  for (const json& v : valid) {
    INFO(v["name"].get<std::string>());
    Bytes frame = hex_bytes(v["hex"]);
    Result<Message> m = decode_message(frame);
    REQUIRE(m.ok());
    CHECK(rendered(m.value()) == v["decoded"]);
    CHECK(m.value().id == v["id"].get<std::string>());
    CHECK(message_id(frame) == v["id"].get<std::string>());
    if (v.value("reencodeIdentical", false)) CHECK(to_hex(encode_message(m.value())) == v["hex"]);
    CHECK_FALSE(validate_message(m.value()).has_value());
  }
}

TEST_CASE("lenient frames are accepted like the reference", "[protocol][vectors]") {
  const json& lenient = protocol_vectors()["lenient"];
  REQUIRE(lenient.size() >= 14);
  for (const json& v : lenient) {
    INFO(v["name"].get<std::string>());
    Bytes frame = hex_bytes(v["hex"]);
    Result<Message> m = decode_message(frame);
    REQUIRE(m.ok());
    CHECK(rendered(m.value()) == v["decoded"]);
    CHECK(message_id(frame) == v["hashOfRawBytes"].get<std::string>());
    // Re-encoding yields the canonical frame, which decodes to the same message.
    Result<Message> again = decode_message(encode_message(m.value()));
    REQUIRE(again.ok());
    json a = rendered(again.value()), b = rendered(m.value());
    a.erase("id");
    b.erase("id");
    CHECK(a == b);
  }
}

TEST_CASE("invalid frames are rejected with stable codes and the reference messages",
          "[protocol][vectors]") {
  const json& invalid = protocol_vectors()["invalid"];
  REQUIRE(invalid.size() >= 37);
  for (const json& v : invalid) {
    INFO(v["name"].get<std::string>());
    Result<Message> m = decode_message(hex_bytes(v["hex"]));
    REQUIRE_FALSE(m.ok());
    check_error(m.error(), v["errorChain"]);
    CHECK(error_chain(m.error()).front().rfind("Failed to decode update message: ", 0) == 0);
    if (test::code_for_reference_error(v["errorChain"].back()) != "bad_any_tag") {
      CHECK(error_chain(m.error()).front() == v["message"].get<std::string>());
    }
  }
}

TEST_CASE("ping, pong and detection helpers", "[protocol][vectors]") {
  const json& s = protocol_vectors()["special"];
  for (const char* key : {"ping", "pong", "pingWithTrailingBytes", "truncatedPing"}) {
    INFO(key);
    const json& v = s[key];
    Bytes b = hex_bytes(v["hex"]);
    if (v.contains("isPingMessage")) CHECK(is_ping_message(b) == v["isPingMessage"].get<bool>());
    if (v.contains("isPongMessage")) CHECK(is_pong_message(b) == v["isPongMessage"].get<bool>());
    if (v.contains("isBinaryMessage")) CHECK(is_binary_message(b) == v["isBinaryMessage"].get<bool>());
  }
  CHECK(to_hex(ping_message()) == s["ping"]["hex"].get<std::string>());
  CHECK(to_hex(pong_message()) == s["pong"]["hex"].get<std::string>());
  for (const json& c : s["isBinaryMessage"]) {
    INFO(c["hex"].get<std::string>());
    CHECK(is_binary_message(hex_bytes(c["hex"])) == c["expect"].get<bool>());
  }
  Result<Message> m = decode_message(ping_message());
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().code == "bad_version");
  CHECK(error_chain(m.error()) == chain_messages(s["decodePingThrows"]));
}

TEST_CASE("message array", "[protocol][vectors]") {
  const json& a = protocol_vectors()["messageArray"];
  Bytes bytes = hex_bytes(a["hex"]);
  Result<std::vector<Message>> msgs = decode_message_array(bytes);
  REQUIRE(msgs.ok());
  REQUIRE(msgs.value().size() == a["decoded"].size());
  for (std::size_t i = 0; i < msgs.value().size(); ++i) CHECK(rendered(msgs.value()[i]) == a["decoded"][i]);

  Result<std::vector<ByteView>> parts = split_message_array(bytes);
  REQUIRE(parts.ok());
  CHECK(to_hex(encode_message_array(parts.value())) == a["hex"].get<std::string>());
  std::vector<Bytes> reencoded;
  for (const Message& m : msgs.value()) reencoded.push_back(encode_message(m));
  CHECK(to_hex(encode_message_array({reencoded[0], reencoded[1]})) == a["hex"].get<std::string>());

  Result<std::vector<Message>> empty = decode_message_array(hex_bytes(a["empty"]["hex"]));
  REQUIRE(empty.ok());
  CHECK(empty.value().size() == a["empty"]["decodedCount"].get<std::size_t>());
  CHECK(encode_message_array({}).empty());

  Result<std::vector<Message>> bad = decode_message_array(hex_bytes(a["invalidElement"]["hex"]));
  REQUIRE_FALSE(bad.ok());
  check_error(bad.error(), a["invalidElement"]["error"]);

  // An element whose declared length overruns the buffer, and an undecodable YJS element.
  CHECK(decode_message_array(hex_bytes("09594a53")).error().code == "length_out_of_range");
  CHECK(decode_message_array(hex_bytes("04594a5302")).error().code == "bad_version");
}

TEST_CASE("pub/sub envelope", "[protocol][vectors]") {
  const json& p = protocol_vectors()["pubsub"];
  Bytes bytes = hex_bytes(p["hex"]);  // the decoded message is a view into these bytes
  Result<PubSubMessage> d = decode_pubsub_message(bytes);
  REQUIRE(d.ok());
  CHECK(d.value().source_id == p["sourceId"].get<std::string>());
  CHECK(to_hex(d.value().message) == p["messageHex"].get<std::string>());
  CHECK(to_hex(encode_pubsub_message(hex_bytes(p["messageHex"]), p["sourceId"].get<std::string>())) ==
        p["hex"].get<std::string>());
  CHECK(decode_pubsub_message(hex_bytes("05616263")).error().code == "length_out_of_range");
  CHECK(decode_pubsub_message(hex_bytes("02ff00")).error().code == "invalid_utf8");
}

TEST_CASE("content-encrypted envelope", "[protocol][vectors][envelope]") {
  const json& e = protocol_vectors()["contentEncryptedEnvelope"];
  for (const json& v : e["vectors"]) {
    INFO(v["name"].get<std::string>());
    Bytes bytes = hex_bytes(v["hex"]);
    auto env = decode_content_encrypted(bytes);
    REQUIRE(env.ok());
    CHECK(rendered(env.value()) == v["decoded"]);
    CHECK(to_hex(encode_content_encrypted(env.value())) == v["hex"].get<std::string>());
    auto strict = decode_content_encrypted(bytes, EnvelopeMode::strict);
    REQUIRE(strict.ok());
    CHECK(strict.value() == env.value());
    if (v.contains("structureUpdate")) {
      CHECK(to_hex(wrap_plain_update(hex_bytes(v["structureUpdate"]))) == v["hex"].get<std::string>());
    }
  }
  for (const json& v : e["decodeErrors"]) {
    INFO(v["name"].get<std::string>());
    auto env = decode_content_encrypted(hex_bytes(v["hex"]));
    if (v["error"].is_null()) {
      REQUIRE(env.ok());
      CHECK(rendered(env.value()) == v["decoded"]);
    } else {
      REQUIRE_FALSE(env.ok());
      check_error(env.error(), v["error"]);
    }
  }
  CHECK(to_hex(encode_content_encrypted({})) ==
        protocol_vectors()["constants"]["emptyContentEncryptedPayload"].get<std::string>());
}

TEST_CASE("strict envelope mode rejects what would poison storage", "[protocol][envelope]") {
  // A raw V1 update starting with 01 parses as an envelope in reference mode (spec 6 item 2).
  Bytes v1 = hex_bytes("01010100040101740568656c6c6f00");
  CHECK(decode_content_encrypted(v1).ok());
  auto strict = decode_content_encrypted(v1, EnvelopeMode::strict);
  REQUIRE_FALSE(strict.ok());
  CHECK(strict.error().code == "non_canonical_envelope");
  CHECK(decode_content_encrypted(hex_bytes("0100000000"), EnvelopeMode::strict).error().code ==
        "non_canonical_envelope");
  CHECK(decode_content_encrypted(hex_bytes("010000"), EnvelopeMode::strict).ok());  // legacy
  CHECK(decode_content_encrypted(hex_bytes("01ff")).error().code == "truncated");
  CHECK(decode_content_encrypted(hex_bytes("010500")).error().code == "length_out_of_range");
  CHECK(decode_content_encrypted(hex_bytes("0100ffffffff0f")).error().code == "truncated");
}

TEST_CASE("server-built messages encode canonically and round-trip", "[protocol]") {
  Message ack{"ignored", true, Ack{"65c81c1a189f6c90", std::nullopt, std::nullopt}, ""};
  CHECK(to_hex(encode_message(ack)) == "594a5301000002103635633831633161313839663663393000");

  Message auth{"doc", false, AuthMessage{Permission::denied, "no"}, ""};
  Bytes b = encode_message(auth);
  Result<Message> back = decode_message(b);
  REQUIRE(back.ok());
  REQUIRE(back.value().is<AuthMessage>());
  CHECK(back.value().get<AuthMessage>()->reason == "no");
  CHECK(back.value().id == message_id(b));
  CHECK(back.value().type() == MessageType::doc);

  // Presence ignores the encrypted flag when encoding; an RPC error with a null payload drops it.
  Message presence{"doc", true, PresenceAnnounce{5}, ""};
  CHECK(to_hex(encode_message(presence)) == "594a530103646f6300030005");
  Rpc rpc{"m", RpcRequestType::response, std::string("orig"), RpcError{500, "d", lib0::Any::null()}};
  Message rpcm{"doc", false, rpc, ""};
  CHECK(to_hex(encode_message(rpcm)) == "594a530103646f630004016d02046f72696701f403016400");

  Rpc missing{"m", RpcRequestType::stream, std::nullopt, RpcSuccess{lib0::Any::null()}};
  auto err = validate_message(Message{"doc", false, missing, ""});
  REQUIRE(err.has_value());
  CHECK(err->code == "missing_original_request_id");
}

TEST_CASE("decoding never reads past the frame", "[protocol]") {
  // Every prefix of every valid frame either decodes or fails cleanly, and huge declared counts
  // are never used to allocate.
  for (const json& v : protocol_vectors()["valid"]) {
    Bytes frame = hex_bytes(v["hex"]);
    for (std::size_t n = 0; n < frame.size(); ++n) {
      Bytes prefix(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
      Result<Message> m = decode_message(prefix);
      if (!m.ok()) CHECK_FALSE(m.error().code.empty());
    }
  }
  // presence heartbeat claiming 2^53-1 clients; any array claiming 2^53-1 items
  CHECK(decode_message(hex_bytes("594a530103646f63000303ffffffffffffff0f")).error().code == "truncated");
  CHECK(decode_message(hex_bytes("594a530103646f630004016d000009" "75ffffffffffffff0f")).error().code ==
        "bad_any_tag");
  // nesting bomb: 2000 nested arrays inside an RPC payload
  Bytes payload;
  for (int i = 0; i < 2000; ++i) {
    payload.push_back(0x75);
    payload.push_back(0x01);
  }
  payload.push_back(0x7e);
  lib0::Encoder e;
  e.write_raw(hex_bytes("594a530103646f630004016d0000"));
  e.write_var_bytes(payload);
  CHECK(decode_message(e.bytes()).error().code == "nesting_too_deep");
}

TEST_CASE("error JSON for the CLI", "[protocol]") {
  Result<Message> m = decode_message(hex_bytes("594a530103646f630000000500"));
  REQUIRE_FALSE(m.ok());
  nlohmann::ordered_json j = error_to_json(m.error());
  CHECK(j["error"] == "length_out_of_range");
  CHECK(j["message"] == "Failed to decode update message: Failed to decode doc step");
  CHECK(j["causes"].back() == "Length out of range of buffer");
}

// The relay path's view of a frame agrees with decode_message: on every vector frame (valid,
// lenient, invalid), on every prefix of the valid ones and on single-byte corruptions of them.
TEST_CASE("peek_relay_frame accepts exactly what decode_message accepts for updates and acks", "[protocol]") {
  auto agree = [](ByteView frame) {
    std::optional<FrameView> v = peek_relay_frame(frame);
    Result<Message> m = decode_message(frame);
    if (!m) {
      CHECK_FALSE(v.has_value());
      return;
    }
    const Message& msg = m.value();
    const bool relay_kind = msg.is<SyncStep2>() || msg.is<DocUpdate>() || msg.is<Ack>();
    REQUIRE(v.has_value() == relay_kind);
    if (!v) return;
    CHECK(v->type == msg.type());
    if (msg.is<Ack>()) return;
    CHECK(std::string(v->document) == msg.document);
    CHECK(v->encrypted == msg.encrypted);
    CHECK(v->step2 == msg.is<SyncStep2>());
    const Bytes& data = msg.is<SyncStep2>() ? msg.get<SyncStep2>()->data : msg.get<DocUpdate>()->data;
    CHECK(v->data.to_bytes() == data);
  };
  for (const char* set : {"valid", "lenient", "invalid"}) {
    for (const json& v : protocol_vectors()[set]) {
      INFO(set << " " << v["name"].get<std::string>());
      Bytes frame = hex_bytes(v["hex"]);
      agree(frame);
      if (std::string(set) != "valid") continue;
      for (std::size_t n = 0; n < frame.size(); ++n) agree(ByteView(frame.data(), n));
      for (std::size_t i = 0; i < frame.size(); ++i) {
        for (std::uint8_t x : {0x00, 0x01, 0x02, 0x7f, 0x80, 0xff}) {
          Bytes bad = frame;
          bad[i] = x;
          agree(bad);
        }
      }
    }
  }
}

TEST_CASE("peek_plain_envelope finds the structure update of exactly the plain envelopes", "[protocol][envelope]") {
  auto agree = [](const Bytes& bytes) {
    auto peeked = peek_plain_envelope(bytes);
    auto env = decode_content_encrypted(bytes, EnvelopeMode::strict);
    const bool plain = env && env.value().encrypted_sidecars.empty() && !env.value().compaction;
    REQUIRE(peeked.has_value() == plain);
    if (plain) CHECK(peeked->to_bytes() == env.value().structure_update);
  };
  const json& e = protocol_vectors()["contentEncryptedEnvelope"];
  for (const char* set : {"vectors", "decodeErrors"}) {
    for (const json& v : e[set]) {
      INFO(v["name"].get<std::string>());
      Bytes bytes = hex_bytes(v["hex"]);
      agree(bytes);
      for (std::size_t n = 0; n < bytes.size(); ++n) agree(Bytes(bytes.begin(), bytes.begin() + static_cast<long>(n)));
    }
  }
  for (const char* h : {"010000", "01000000", "0100000000", "0103aabbcc0000", "0103aabbcc0001", "0103aabbcc00", "020000"}) {
    INFO(h);
    agree(hex_bytes(h));
  }
}

TEST_CASE("ack frames written without allocation equal the encoder's", "[protocol]") {
  Bytes frame = hex_bytes("594a530103646f6300000003010102");
  MessageId id = message_id_chars(frame);
  CHECK(std::string(id.data(), id.size()) == message_id(frame));
  Message ack{"", false, Ack{message_id(frame), std::nullopt, std::nullopt}, ""};
  Bytes written(kAckFrameSize);
  write_ack_frame(id, written.data());
  CHECK(written == encode_message(ack));
}
