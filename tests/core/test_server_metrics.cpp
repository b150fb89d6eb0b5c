// The core's counters (tp/server/metrics.hpp) for a scripted sequence: open, sync, update, ack,
// a rate-limited frame, a permission denial, an invalid frame, a failed commit, close, unload.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "server_host.hpp"
#include "tp/protocol/envelope.hpp"
#include "tp/protocol/message.hpp"
#include "tp/server/metrics.hpp"

using nlohmann::json;
using namespace tp;
using server::FrameType;
using server::Refusal;

namespace {

const Bytes kSyncStep1 = *from_hex("594a530103646f630000000100");  // doc "doc", empty SV

json access(const char* perms) {
  return json::array({{{"pattern", "*"}, {"permissions", json::parse(perms)}}});
}
json ctx(const char* user, json a) { return {{"userId", user}, {"room", "room-1"}, {"documentAccess", std::move(a)}}; }

Bytes update_frame() {
  auto m = protocol::decode_message(testing::vector_frame("basic-sync-and-fanout", "A sync-step-2 with its full state"));
  auto e = protocol::decode_content_encrypted(m.value().get<protocol::SyncStep2>()->data, protocol::EnvelopeMode::strict);
  protocol::Message u;
  u.document = "doc";
  protocol::ContentEncryptedEnvelope env;
  env.structure_update = e.value().structure_update;
  u.payload = protocol::DocUpdate{2, protocol::encode_content_encrypted(env)};
  return protocol::encode_message(u);
}

double sample(const server::Server& s, const std::string& name) {
  for (const auto& [n, v] : s.metrics().samples(s.client_count(), s.session_count())) {
    if (n == name) return v;
  }
  FAIL("no sample " << name);
  return -1;
}

}  // namespace

TEST_CASE("frame_type reads the type from the header only", "[server][metrics]") {
  CHECK(server::frame_type(kSyncStep1) == FrameType::doc);
  CHECK(server::frame_type(protocol::ping_message()) == FrameType::ping);
  CHECK(server::frame_type(protocol::pong_message()) == FrameType::pong);
  CHECK(server::frame_type(*from_hex("594a530100000210")) == FrameType::ack);  // header of an ack
  CHECK(server::frame_type(*from_hex("594a530103646f630001")) == FrameType::awareness);
  CHECK(server::frame_type(*from_hex("594a530103646f630009")) == FrameType::invalid);  // unknown type
  CHECK(server::frame_type(*from_hex("594a5301ff")) == FrameType::invalid);            // truncated
  CHECK(server::frame_type(*from_hex("594a530160646f63")) == FrameType::invalid);      // name past the end
  CHECK(server::frame_type(*from_hex("deadbeef0000")) == FrameType::invalid);
}

TEST_CASE("counters move for open, sync, update, ack, rate limit, denial, failed commit, close", "[server][metrics]") {
  server::ServerConfig config;
  config.unload_after_ms = 0;
  config.rate_per_connection = 1;
  config.burst_per_connection = 4;
  testing::ServerHost h(config);
  h.tick(0);
  const server::Metrics& m = h.srv.metrics();

  auto writer = h.open("W", ctx("w", access(R"(["read","write"])")));
  auto reader = h.open("R", ctx("r", access(R"(["read"])")));
  CHECK(m.clients_connected == 2);
  CHECK(sample(h.srv, "clients_active") == 2);

  // Two sync-step-1s: each answered with sync-step-2, sync-step-1 and an ack.
  h.send(writer, kSyncStep1);
  h.send(reader, kSyncStep1);
  CHECK(m.documents_loaded == 1);
  CHECK(sample(h.srv, "sessions_active") == 1);
  CHECK(m.in(FrameType::doc) == 2);
  CHECK(m.out(FrameType::doc) == 4);
  CHECK(m.acks == 2);
  CHECK(m.out(FrameType::ack) == 2);
  CHECK(m.bytes_received == 2 * kSyncStep1.size());

  // An update: stored in one committed batch, relayed to the one reader, acked.
  const Bytes update = update_frame();
  h.send(writer, update);
  CHECK(m.in(FrameType::doc) == 3);
  CHECK(m.batches_committed == 1);
  CHECK(m.entries_written == 1);
  CHECK(m.bytes_written > 0);
  CHECK(m.acks == 3);
  CHECK(m.out(FrameType::doc) == 5);  // the relay to the reader (not back to the writer)

  // The reader may not write: denied (no ack), counted as a permission refusal.
  h.send(reader, update);
  CHECK(m.refusals(Refusal::permission) == 1);
  CHECK(m.acks == 3);

  // Pings are counted and answered, never rate limited; the writer's bucket (4) is empty now.
  h.send(writer, protocol::ping_message().to_bytes());
  CHECK(m.in(FrameType::ping) == 1);
  CHECK(m.out(FrameType::pong) == 1);
  h.send(writer, kSyncStep1);
  h.send(writer, kSyncStep1);
  h.send(writer, kSyncStep1);
  CHECK(m.refusals(Refusal::rate_limited) == 1);
  CHECK(sample(h.srv, "rate_limit_exceeded_total") == 1);
  CHECK(sample(h.srv, "nacks_total{reason=\"rate_limited\"}") == 1);

  // A frame that is no Teleportal message.
  h.tick(10'000);  // refill
  h.send(writer, *from_hex("594a5301ff"));
  CHECK(m.in(FrameType::invalid) == 1);
  CHECK(m.refusals(Refusal::invalid_frame) == 1);

  // A failed commit: a NACK, a failed batch, an error event; nothing relayed.
  h.fail_commits = true;
  const auto relayed = m.out(FrameType::doc);
  h.send(writer, update);
  CHECK(m.batches_failed == 1);
  CHECK(m.refusals(Refusal::storage_failed) == 1);
  CHECK(m.errors == 1);
  CHECK(m.out(FrameType::doc) == relayed);
  h.fail_commits = false;

  // Closing both: disconnects counted, the document unloads (unload_after_ms 0).
  h.close(writer);
  h.close(reader);
  CHECK(m.clients_disconnected == 2);
  CHECK(m.documents_unloaded == 1);
  CHECK(sample(h.srv, "clients_active") == 0);
  CHECK(sample(h.srv, "sessions_active") == 0);
  CHECK(sample(h.srv, "messages_total_all") == static_cast<double>(m.in(FrameType::doc) + m.in(FrameType::ping) + m.in(FrameType::invalid)));
  CHECK(m.bytes_sent > 0);
}

TEST_CASE("closes the core decides are counted by code", "[server][metrics]") {
  server::ServerConfig config;
  config.max_invalid_frames = 2;
  testing::ServerHost h(config);
  auto a = h.open("A", ctx("a", access(R"(["read"])")));
  h.send(a, *from_hex("00"));
  h.send(a, *from_hex("00"));
  CHECK(h.srv.metrics().closes_1008 == 1);
  json expired = ctx("b", access(R"(["read"])"));
  expired["exp"] = h.now_ms / 1000 - 1;
  h.open("B", expired);
  CHECK(h.srv.metrics().closes_4401 == 1);
  CHECK(sample(h.srv, "server_closes_total{code=\"4401\"}") == 1);
}
