// Behaviour of the server core where we deliberately differ from the reference (spec section 6),
// plus limits the reference does not have. Frames come from the reference transcripts.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tp/protocol/message.hpp"
#include "server_host.hpp"
#include "tp/server/server.hpp"

using nlohmann::json;
using namespace tp;

namespace {

const Bytes kSyncStep1 = *from_hex("594a530103646f630000000100");  // doc "doc", empty SV

struct Sent {
  server::ClientHandle to;
  protocol::Message msg;
  Bytes raw;
};

std::vector<Sent> frames(const server::Outputs& outs) {
  std::vector<Sent> v;
  for (const auto& o : outs) {
    if (const auto* s = std::get_if<server::SendOutput>(&o)) {
      for (auto h : s->to) {
        auto m = protocol::decode_message(s->frame);
        if (protocol::is_pong_message(s->frame)) {
          v.push_back({h, {}, s->frame});
          continue;
        }
        REQUIRE(m);
        v.push_back({h, m.value(), s->frame});
      }
    }
  }
  return v;
}

bool closes(const server::Outputs& outs, server::ClientHandle h, int code) {
  for (const auto& o : outs) {
    if (const auto* c = std::get_if<server::CloseOutput>(&o); c && c->client == h && c->code == code) return true;
  }
  return false;
}

server::ServerConfig open_config() {
  server::ServerConfig c;
  c.permissions = server::PermissionMode::none;
  return c;
}

json token_context(const char* user, json access) {
  return {{"userId", user}, {"room", "room-1"}, {"documentAccess", std::move(access)}};
}

}  // namespace

TEST_CASE("awareness and presence need read permission; relays reach readers only", "[server]") {
  testing::ServerHost srv;
  auto reader = srv.open("reader", token_context("reader", json::parse(R"([{"pattern":"doc","permissions":["read"]}])")));
  auto writer = srv.open("writer", token_context("writer", json::parse(R"([{"pattern":"*","permissions":["read","write"]}])")));

  // The reader tries to join 'secret' through awareness: denied, not joined.
  Bytes awareness_secret = testing::vector_frame("token-auth-and-permissions", "awareness on 'secret'");
  auto out = frames(srv.send(reader, awareness_secret));
  REQUIRE(out.size() == 1);
  const auto* auth = out[0].msg.get<protocol::AuthMessage>();
  REQUIRE(auth);
  CHECK(auth->permission == protocol::Permission::denied);
  CHECK(auth->reason == "Insufficient permissions to access document secret");

  // The writer updates 'secret': nothing reaches the reader.
  Bytes secret_update = testing::vector_frame("token-auth-and-permissions", "writer updates 'secret'");
  out = frames(srv.send(writer, secret_update));
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == writer);
  CHECK(out[0].msg.is<protocol::Ack>());

  // On 'doc', which the reader may read, the same update is relayed to it.
  Bytes doc_update = testing::vector_frame("token-auth-and-permissions", "writer update ->");
  CHECK(frames(srv.send(reader, kSyncStep1)).size() == 3);
  out = frames(srv.send(writer, doc_update));
  REQUIRE(out.size() == 2);
  CHECK(out[0].to == reader);
  CHECK(out[0].raw == doc_update);
}

TEST_CASE("an invalid update is refused before it is relayed or stored", "[server]") {
  testing::ServerHost srv(open_config());
  json ctx = {{"userId", "a"}, {"room", "room-1"}};
  auto a = srv.open("A", ctx);
  auto b = srv.open("B", ctx);
  CHECK(frames(srv.send(b, kSyncStep1)).size() == 3);

  for (const char* label : {"raw V2 update", "raw V2 sync-step-2", "raw V1 update"}) {
    INFO(label);
    auto out = frames(srv.send(a, testing::vector_frame("bad-update-payloads", label)));
    REQUIRE(out.size() == 1);  // a NACK to the sender, nothing to B
    CHECK(out[0].to == a);
    const auto* ack = out[0].msg.get<protocol::Ack>();
    REQUIRE(ack);
    REQUIRE(ack->error);
  }
  // The document is still readable: sync-step-1 answers with the (empty) state and an ack.
  auto out = frames(srv.send(b, kSyncStep1));
  REQUIRE(out.size() == 3);
  CHECK(out[0].msg.is<protocol::SyncStep2>());
  CHECK_FALSE(out[2].msg.get<protocol::Ack>()->error);
  CHECK(srv.srv.document_state("room-1/doc").empty());
}

TEST_CASE("valid updates are stored, merged and served to a late joiner", "[server]") {
  testing::ServerHost srv(open_config());
  json ctx = {{"userId", "a"}, {"room", "room-1"}};
  auto a = srv.open("A", ctx);
  srv.send(a, testing::vector_frame("basic-sync-and-fanout", "A sync-step-2 with its full state"));
  srv.send(a, testing::vector_frame("basic-sync-and-fanout", "A incremental update"));
  auto c = srv.open("C", ctx);
  auto out = frames(srv.send(c, kSyncStep1));
  REQUIRE(out.size() == 3);
  const auto* step2 = out[0].msg.get<protocol::SyncStep2>();
  REQUIRE(step2);
  // Same bytes as the reference answer after the same two writes (without the empty update).
  CHECK(to_hex(out[0].raw) ==
        "594a530103646f63000001022a0126000003e5010001080003040084100c7468656c6c6f20776f726c640105060101"
        "0000010200000000");
  CHECK(to_hex(out[1].raw) == "594a530103646f630000000301650b");
}

TEST_CASE("malformed frames get a NACK; the connection stays usable until the limit", "[server]") {
  server::ServerConfig config = open_config();
  config.max_invalid_frames = 3;
  testing::ServerHost srv(config);
  auto a = srv.open("A", json::object());

  Bytes not_yjs = {'h', 'e', 'l', 'l', 'o'};
  auto outs = srv.send(a, not_yjs);
  auto out = frames(outs);
  REQUIRE(out.size() == 1);
  const auto* ack = out[0].msg.get<protocol::Ack>();
  REQUIRE(ack);
  CHECK(ack->message_id == protocol::message_id(not_yjs));
  CHECK(ack->error.value_or("").find("not a Teleportal frame") != std::string::npos);

  Bytes bad_version = *from_hex("594a5302");
  out = frames(srv.send(a, bad_version));
  REQUIRE(out.size() == 1);
  CHECK(out[0].msg.get<protocol::Ack>()->error.value_or("") == "Failed to decode update message: Invalid version");

  // A valid frame resets the count and is served normally.
  CHECK(frames(srv.send(a, kSyncStep1)).size() == 3);
  srv.send(a, bad_version);
  srv.send(a, bad_version);
  CHECK(closes(srv.send(a, bad_version), a, 1008));
}

TEST_CASE("oversized frames get a message-too-large NACK", "[server]") {
  server::ServerConfig config = open_config();
  config.max_message_size = 16;
  testing::ServerHost srv(config);
  auto a = srv.open("A", json::object());
  Bytes big = testing::vector_frame("basic-sync-and-fanout", "A incremental update");
  auto out = frames(srv.send(a, big));
  REQUIRE(out.size() == 1);
  CHECK(out[0].msg.get<protocol::Ack>()->error.value_or("") ==
        "message-too-large: " + std::to_string(big.size()) + " > 16 bytes");
}

TEST_CASE("ping gets pong; frames after close are ignored; close is idempotent", "[server]") {
  testing::ServerHost srv(open_config());
  auto a = srv.open("A", json::object());
  auto out = frames(srv.send(a, protocol::ping_message().to_bytes()));
  REQUIRE(out.size() == 1);
  CHECK(out[0].raw == protocol::pong_message().to_bytes());
  srv.close(a);
  CHECK(srv.send(a, kSyncStep1).empty());
  CHECK(srv.close(a).empty());
  CHECK(srv.srv.client_count() == 0);
}

TEST_CASE("presence: announce builds the roster, disconnect sends leave to the others", "[server]") {
  testing::ServerHost srv(open_config());
  auto a = srv.open("A", {{"userId", "alice"}, {"room", "r"}});
  auto b = srv.open("B", {{"userId", "bob"}, {"room", "r"}});
  auto announce = [](std::uint64_t id) {
    protocol::Message m;
    m.document = "doc";
    m.payload = protocol::PresenceAnnounce{id};
    return protocol::encode_message(m);
  };
  auto out = frames(srv.send(a, announce(7)));
  REQUIRE(out.size() == 2);  // roster (own join) + ack
  CHECK(out[0].msg.get<protocol::PresenceJoin>()->client.user_id == "alice");
  out = frames(srv.send(b, announce(9)));
  // B gets the roster (A's 7 and its own 9), A learns about 9, B gets its ack.
  REQUIRE(out.size() == 4);
  CHECK(out[0].to == b);
  CHECK(out[0].msg.get<protocol::PresenceJoin>()->client.awareness_id == 7);
  CHECK(out[1].msg.get<protocol::PresenceJoin>()->client.awareness_id == 9);
  CHECK(out[2].to == a);
  CHECK(out[2].msg.get<protocol::PresenceJoin>()->client.client_id == "B");
  out = frames(srv.close(b));
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == a);
  CHECK(out[0].msg.get<protocol::PresenceLeave>()->client.awareness_id == 9);
}

TEST_CASE("presence roster order follows clients, then ids; an id moves to its new announcer", "[server]") {
  testing::ServerHost srv(open_config());
  json ctx = {{"room", "r"}};
  auto a = srv.open("A", ctx);
  auto b = srv.open("B", ctx);
  auto c = srv.open("C", ctx);
  auto announce = [](std::uint64_t id) {
    protocol::Message m;
    m.document = "doc";
    m.payload = protocol::PresenceAnnounce{id};
    return protocol::encode_message(m);
  };
  srv.send(a, announce(1));
  srv.send(b, announce(2));
  srv.send(a, announce(3));
  auto roster_of = [&](const server::Outputs& outs, server::ClientHandle to) {
    std::vector<std::pair<std::string, std::uint64_t>> v;
    for (const auto& f : frames(outs)) {
      if (const auto* j = f.msg.get<protocol::PresenceJoin>(); j && f.to == to) {
        v.emplace_back(j->client.client_id, j->client.awareness_id);
      }
    }
    return v;
  };
  using R = std::vector<std::pair<std::string, std::uint64_t>>;
  CHECK(roster_of(srv.send(c, announce(9)), c) == R{{"A", 1}, {"A", 3}, {"B", 2}, {"C", 9}});
  // C takes over id 2 from B: B no longer holds anything, so only A (and C's roster) hear of it.
  auto outs = srv.send(c, announce(2));
  CHECK(roster_of(outs, c) == R{{"A", 1}, {"A", 3}, {"C", 9}, {"C", 2}});
  CHECK(roster_of(outs, a) == R{{"C", 2}});
  CHECK(roster_of(outs, b).empty());
}

