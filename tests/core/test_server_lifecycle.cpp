// The server core's document lifecycle and security model: load on demand (frames queued in
// order), acknowledgement only after commit, failing storage, unload and reload, compaction,
// per-connection limits, token expiry and in-band refresh, application permission callbacks.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "server_host.hpp"
#include "tp/protocol/envelope.hpp"
#include "tp/protocol/message.hpp"
#include "tp/token/token.hpp"
#include "tp/yjs/updates.hpp"

using nlohmann::json;
using namespace tp;

namespace {

const Bytes kSyncStep1 = *from_hex("594a530103646f630000000100");  // doc "doc", empty SV

json full_access() { return json::parse(R"([{"pattern":"*","permissions":["read","write"]}])"); }
json read_only() { return json::parse(R"([{"pattern":"*","permissions":["read"]}])"); }
json ctx(const char* user, json access = full_access(), const char* room = "room-1") {
  return {{"userId", user}, {"room", room}, {"documentAccess", std::move(access)}};
}

std::vector<protocol::Message> sent_to(const server::Outputs& outs, server::ClientHandle to) {
  std::vector<protocol::Message> v;
  for (const auto& o : outs) {
    const auto* s = std::get_if<server::SendOutput>(&o);
    if (!s || std::find(s->to.begin(), s->to.end(), to) == s->to.end()) continue;
    auto m = protocol::decode_message(s->frame);
    if (m) v.push_back(m.value());
  }
  return v;
}
bool got_raw(const server::Outputs& outs, server::ClientHandle to, const Bytes& frame) {
  for (const auto& o : outs) {
    const auto* s = std::get_if<server::SendOutput>(&o);
    if (s && s->frame == frame && std::find(s->to.begin(), s->to.end(), to) != s->to.end()) return true;
  }
  return false;
}
std::optional<protocol::Ack> ack_of(const std::vector<protocol::Message>& msgs, const std::string& id) {
  for (const auto& m : msgs) {
    if (const auto* a = m.get<protocol::Ack>(); a && a->message_id == id) return *a;
  }
  return std::nullopt;
}
bool has_log(const server::Outputs& outs, const std::string& event) {
  for (const auto& o : outs) {
    if (const auto* l = std::get_if<server::LogOutput>(&o); l && l->event == event) return true;
  }
  return false;
}
int close_code(const server::Outputs& outs, server::ClientHandle c) {
  for (const auto& o : outs) {
    if (const auto* x = std::get_if<server::CloseOutput>(&o); x && x->client == c) return x->code;
  }
  return 0;
}

Bytes update_frame(const std::string& document, const Bytes& v2);

// "hello world" by Y.js client 101 (a self-contained V2 update from the reference transcripts).
Bytes update_v2() {
  auto m = protocol::decode_message(testing::vector_frame("basic-sync-and-fanout", "A sync-step-2 with its full state"));
  auto e = protocol::decode_content_encrypted(m.value().get<protocol::SyncStep2>()->data, protocol::EnvelopeMode::strict);
  return e.value().structure_update;
}
const Bytes kUpdate = update_frame("doc", update_v2());

Bytes update_frame(const std::string& document, const Bytes& v2) {
  protocol::Message m;
  m.document = document;
  protocol::ContentEncryptedEnvelope e;
  e.structure_update = v2;
  m.payload = protocol::DocUpdate{2, protocol::encode_content_encrypted(e)};
  return protocol::encode_message(m);
}


std::string mint(const std::string& secret, const std::string& user, const std::string& room, double now_s,
                 double expires_in, const std::string& access_json) {
  token::MintOptions mo;
  mo.secret.assign(secret.begin(), secret.end());
  mo.expires_in = expires_in;
  auto t = token::mint_text(user, room, access_json, mo, now_s);
  REQUIRE(t);
  return t.value();
}

Bytes auth_frame(const std::string& document, const std::string& token) {
  protocol::Message m;
  m.document = document;
  m.payload = protocol::AuthMessage{protocol::Permission::allowed, token};
  return protocol::encode_message(m);
}

}  // namespace

TEST_CASE("session keys are unambiguous across rooms and document names", "[server][lifecycle]") {
  CHECK(server::session_key("a", "b/c") == "a/b/c");
  CHECK(server::session_key("a/b", "c") == "a%2Fb/c");
  CHECK(server::session_key("", "x") == "/x");
  CHECK(server::session_key("50%", "d") == "50%25/d");

  testing::ServerHost h;
  auto a = h.open("A", ctx("a", full_access(), "a"));
  auto b = h.open("B", ctx("b", full_access(), "a/b"));
  auto doc_bc = update_frame("b/c", update_v2());
  h.send(a, doc_bc);
  // B in room "a/b" opens document "c": a different document, nothing of A's content.
  protocol::Message step1;
  step1.document = "c";
  step1.payload = protocol::SyncStep1{{0}};
  auto out = sent_to(h.send(b, protocol::encode_message(step1)), b);
  REQUIRE(out.size() == 3);
  auto step2 = out[0].get<protocol::SyncStep2>();
  REQUIRE(step2);
  CHECK(to_hex(step2->data) == "01000000");  // empty document
  CHECK(h.store["a/b/c"].size() == 1);
  CHECK(h.store["a%2Fb/c"].empty());
}

TEST_CASE("frames wait for the document's load and run in arrival order", "[server][lifecycle]") {
  testing::ServerHost h;
  protocol::ContentEncryptedEnvelope stored;
  stored.structure_update = update_v2();
  h.store["room-1/doc"] = {protocol::encode_content_encrypted(stored)};
  h.hold_loads = true;
  auto a = h.open("A", ctx("a"));
  auto out = h.send(a, kSyncStep1);
  CHECK(sent_to(out, a).empty());  // nothing before the load
  CHECK(h.held == std::vector<std::string>{"room-1/doc"});
  h.send(a, protocol::ping_message().to_bytes());  // pings are answered at once
  auto later = h.answer_loads();
  auto msgs = sent_to(later, a);
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[0].is<protocol::SyncStep2>());
  CHECK(msgs[1].get<protocol::SyncStep1>()->state_vector == Bytes({0x01, 0x65, 0x05}));  // stored state loaded
  CHECK(msgs[2].is<protocol::Ack>());
}

TEST_CASE("a failing load NACKs the waiting frames with retryAfter; the next message retries", "[server][lifecycle]") {
  testing::ServerHost h;
  h.fail_loads = true;
  auto a = h.open("A", ctx("a"));
  auto msgs = sent_to(h.send(a, kSyncStep1), a);
  REQUIRE(msgs.size() == 1);
  const auto* nack = msgs[0].get<protocol::Ack>();
  REQUIRE(nack);
  CHECK(nack->error.value_or("") == "Failed to load document: database is locked");
  CHECK(nack->retry_after.value_or(0) == 1000);
  h.fail_loads = false;
  CHECK(sent_to(h.send(a, kSyncStep1), a).size() == 3);
}

TEST_CASE("an update is acknowledged and relayed only after its batch committed", "[server][lifecycle]") {
  testing::ServerHost h;
  auto a = h.open("A", ctx("a"));
  auto b = h.open("B", ctx("b"));
  h.send(a, kSyncStep1);
  h.send(b, kSyncStep1);
  // Drive the core by hand: message, then flush, then commit.
  auto direct = h.srv.message(a, kUpdate);
  CHECK(sent_to(direct, a).empty());
  CHECK(sent_to(direct, b).empty());
  auto batch = h.srv.flush();
  REQUIRE(batch.writes.size() == 1);
  CHECK(batch.writes[0].key == "room-1/doc");
  auto after = h.srv.committed(batch.id, true);
  h.settle(after);
  CHECK(got_raw(after, b, kUpdate));
  CHECK(ack_of(sent_to(after, a), protocol::message_id(kUpdate)));
  CHECK_FALSE(ack_of(sent_to(after, a), protocol::message_id(kUpdate))->error);
}

namespace {

Bytes merged_of(const std::vector<Bytes>& updates) {
  return yjs::merge_updates_v2({updates.begin(), updates.end()}).value();
}

// The V2 updates of sync.json's "two-clients-concurrent" case (yjs 13.6.31): client 10's, then 20's.
std::vector<Bytes> concurrent_updates(std::vector<Bytes>* of_10 = nullptr, std::vector<Bytes>* of_20 = nullptr) {
  std::ifstream f(std::string(TP_VECTORS_DIR) + "/sync.json");
  json j = json::parse(f);
  for (const auto& c : j["cases"]) {
    if (c["name"] != "two-clients-concurrent") continue;
    std::vector<Bytes> all;
    std::string client;  // whose update: from its metadata (a delete-only update has none: the previous one's)
    for (std::size_t i = 0; i < c["updatesV2"].size(); ++i) {
      all.push_back(*from_hex(c["updatesV2"][i].get<std::string>()));
      const json& from = c["perUpdate"][i]["metaV1"]["from"];
      if (!from.empty()) client = from.begin().key();
      auto* list = client == "10" ? of_10 : of_20;
      if (list) list->push_back(all.back());
    }
    REQUIRE(to_hex(merged_of(all)) == c["mergeUpdatesV2"].get<std::string>());
    return all;
  }
  FAIL("no two-clients-concurrent case");
  return {};
}

// The structure updates in the doc updates `outs` sends to `to`.
std::vector<Bytes> updates_to(const server::Outputs& outs, server::ClientHandle to) {
  std::vector<Bytes> v;
  for (const auto& m : sent_to(outs, to)) {
    if (const auto* u = m.get<protocol::DocUpdate>()) {
      v.push_back(protocol::decode_content_encrypted(u->data, protocol::EnvelopeMode::strict).value().structure_update);
    }
  }
  return v;
}

}  // namespace

TEST_CASE("a batch's updates to a document reach each reader as one frame, never its own updates", "[server][lifecycle][coalescing]") {
  std::vector<Bytes> of_10, of_20;
  std::vector<Bytes> all = concurrent_updates(&of_10, &of_20);
  REQUIRE(of_10.size() >= 2);
  REQUIRE(of_20.size() >= 2);
  testing::ServerHost h;
  auto a = h.open("A", ctx("a"));  // sends client 10's updates
  auto b = h.open("B", ctx("b"));  // sends client 20's updates
  auto c = h.open("C", ctx("c"));  // only reads
  for (auto x : {a, b, c}) h.send(x, kSyncStep1);
  std::size_t stored_before = h.store["room-1/doc"].size();

  // One batch (one host turn): every update arrives before the flush.
  server::Outputs out;
  std::vector<std::pair<server::ClientHandle, Bytes>> sent;
  for (const auto& u : all) {
    auto sender = std::find(of_10.begin(), of_10.end(), u) != of_10.end() ? a : b;
    sent.emplace_back(sender, update_frame("doc", u));
    auto direct = h.srv.message(sender, sent.back().second);
    CHECK(direct.empty());
  }
  h.settle(out);

  // C sent nothing: one frame, the merge of all of them. A and B: the merge of the other's.
  CHECK(updates_to(out, c) == std::vector<Bytes>{merged_of(all)});
  CHECK(updates_to(out, a) == std::vector<Bytes>{merged_of(of_20)});
  CHECK(updates_to(out, b) == std::vector<Bytes>{merged_of(of_10)});
  // Every update is acknowledged to its sender, after the relay, in order.
  for (auto x : {a, b}) {
    auto msgs = sent_to(out, x);
    std::vector<std::string> acked;
    for (const auto& m : msgs) {
      if (const auto* ack = m.get<protocol::Ack>()) {
        CHECK_FALSE(ack->error);
        acked.push_back(ack->message_id);
      }
    }
    std::vector<std::string> want;
    for (const auto& [sender, frame] : sent) {
      if (sender == x) want.push_back(protocol::message_id(frame));
    }
    CHECK(acked == want);
    CHECK(msgs.front().is<protocol::DocUpdate>());
  }
  // Storage appended one entry: the merge.
  REQUIRE(h.store["room-1/doc"].size() == stored_before + 1);
  CHECK(h.store["room-1/doc"].back() == protocol::wrap_plain_update(merged_of(all)));
  CHECK(h.srv.document_state("room-1/doc") == merged_of(all));
}

TEST_CASE("a single update in a batch is relayed verbatim; one sender's updates reach only the others", "[server][lifecycle][coalescing]") {
  std::vector<Bytes> of_10;
  concurrent_updates(&of_10);
  testing::ServerHost h;
  auto a = h.open("A", ctx("a"));
  auto c = h.open("C", ctx("c"));
  auto w = h.open("W", ctx("w", json::parse(R"([{"pattern":"*","permissions":["write"]}])")));  // writes, cannot read
  for (auto x : {a, c}) h.send(x, kSyncStep1);
  h.send(w, update_frame("doc", of_10[0]));
  server::Outputs out;
  for (std::size_t i = 1; i < of_10.size(); ++i) CHECK(h.srv.message(a, update_frame("doc", of_10[i])).empty());
  h.settle(out);
  CHECK(updates_to(out, c) == std::vector<Bytes>{merged_of({of_10.begin() + 1, of_10.end()})});
  CHECK(updates_to(out, a).empty());
  CHECK(updates_to(out, w).empty());
}

TEST_CASE("an empty update is acknowledged and relayed but not stored", "[server][lifecycle]") {
  testing::ServerHost h;
  auto a = h.open("A", ctx("a"));
  auto b = h.open("B", ctx("b"));
  h.send(b, kSyncStep1);
  protocol::Message step2;
  step2.document = "doc";
  step2.payload = protocol::SyncStep2{2, protocol::wrap_plain_update(yjs::empty_update_v2())};
  Bytes frame = protocol::encode_message(step2);
  auto out = h.send(a, frame);
  CHECK(got_raw(out, b, frame));
  auto msgs = sent_to(out, a);
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0].is<protocol::SyncDone>());
  CHECK(msgs[1].get<protocol::Ack>()->message_id == protocol::message_id(frame));
  CHECK(h.store["room-1/doc"].empty());
}

TEST_CASE("a refresh that drops write access refuses the next update of a client that was writing", "[server][lifecycle]") {
  server::ServerConfig config;
  config.tokens.secret = {'s', 'e', 'c'};
  testing::ServerHost h(config);
  auto a = h.open("A", ctx("a"));
  auto b = h.open("B", ctx("b"));
  h.send(b, kSyncStep1);
  CHECK(got_raw(h.send(a, kUpdate), b, kUpdate));  // A's next update to "doc" would skip the lookups
  std::string read = mint("sec", "a", "room-1", h.now_ms / 1000, 3600, R"([{"pattern":"*","permissions":["read"]}])");
  h.send(a, auth_frame("doc", read));
  auto out = h.send(a, kUpdate);
  CHECK_FALSE(got_raw(out, b, kUpdate));
  CHECK(sent_to(out, a)[0].is<protocol::AuthMessage>());
}

TEST_CASE("a failed commit NACKs the update, relays nothing and leaves the state unchanged", "[server][lifecycle]") {
  testing::ServerHost h;
  auto a = h.open("A", ctx("a"));
  auto b = h.open("B", ctx("b"));
  h.send(a, kSyncStep1);
  h.send(b, kSyncStep1);
  h.fail_commits = true;
  auto out = h.send(a, kUpdate);
  CHECK_FALSE(got_raw(out, b, kUpdate));
  auto nack = ack_of(sent_to(out, a), protocol::message_id(kUpdate));
  REQUIRE(nack);
  CHECK(nack->error.value_or("") == "Storage write failed: disk full");
  CHECK(has_log(out, "storage_write_failed"));
  CHECK(h.srv.document_state("room-1/doc").empty());
  h.fail_commits = false;
  out = h.send(a, kUpdate);  // the client resends: now it is stored, relayed, acked
  CHECK(got_raw(out, b, kUpdate));
  CHECK(h.store["room-1/doc"].size() == 1);
}

TEST_CASE("documents unload when idle and reload with the same state", "[server][lifecycle]") {
  server::ServerConfig config;
  config.unload_after_ms = 3000;
  testing::ServerHost h(config);
  auto a = h.open("A", ctx("a"));
  h.send(a, kUpdate);
  Bytes before = h.srv.document_state("room-1/doc");
  REQUIRE_FALSE(before.empty());
  h.close(a);
  CHECK(h.srv.session_count() == 1);
  CHECK(h.srv.next_deadline().value_or(0) == Approx(h.now_ms + 3000));
  h.tick(1000);
  CHECK(h.srv.session_count() == 1);
  auto out = h.tick(2500);
  CHECK(has_log(out, "document_unloaded"));
  CHECK(h.srv.session_count() == 0);
  auto b = h.open("B", ctx("b"));
  auto msgs = sent_to(h.send(b, kSyncStep1), b);
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[1].get<protocol::SyncStep1>()->state_vector == Bytes({0x01, 0x65, 0x05}));
  CHECK(h.srv.document_state("room-1/doc") == before);
}

TEST_CASE("stored entries are compacted into one, corrupt entries skipped", "[server][lifecycle]") {
  server::ServerConfig config;
  config.compact_after = 4;
  config.unload_after_ms = 0;
  testing::ServerHost h(config);
  auto a = h.open("A", ctx("a"));
  for (int i = 0; i < 3; ++i) h.send(a, kUpdate);  // the same update thrice: idempotent content
  CHECK(h.store["room-1/doc"].size() == 3);
  h.send(a, kUpdate);
  CHECK(h.store["room-1/doc"].size() == 1);  // the 4th entry triggered compaction
  h.store["room-1/doc"].push_back(Bytes{0x01, 0x05, 0xff});  // damaged
  Bytes state = h.srv.document_state("room-1/doc");
  h.close(a);  // unloads at once (unload_after_ms 0)
  CHECK(h.srv.session_count() == 0);
  auto b = h.open("B", ctx("b"));
  auto out = h.send(b, kSyncStep1);
  CHECK(has_log(out, "storage_entry_invalid"));
  CHECK(h.srv.document_state("room-1/doc") == state);
}

TEST_CASE("a large document is compacted when what came since is half its size, not every few entries", "[server][lifecycle]") {
  // A 2,000-character insert by client 5 into Y.Text "t", as a V1 update, converted to V2.
  Bytes v1{1, 1, 5, 0, 0x04, 1, 1, 't'};
  std::string text(2000, 'x');
  v1.push_back(0xd0), v1.push_back(0x0f);  // varuint 2000
  v1.insert(v1.end(), text.begin(), text.end());
  v1.push_back(0);
  Bytes big = yjs::convert_update_format_v1_to_v2(v1).value();
  REQUIRE(yjs::validate_update_v2(big));
  server::ServerConfig config;
  config.compact_after = 4;
  testing::ServerHost h(config);
  h.store["room-1/doc"] = {protocol::wrap_plain_update(big)};
  auto a = h.open("A", ctx("a"));
  h.send(a, kSyncStep1);
  std::size_t entry = protocol::wrap_plain_update(update_v2()).size();
  std::size_t sent = 0;
  while (h.store["room-1/doc"].size() > 1 || sent == 0) {
    h.send(a, kUpdate);
    ++sent;
    REQUIRE(sent <= 64);  // 16 x compact_after: compacted by then whatever the sizes
  }
  CHECK(sent * entry * 2 >= big.size());  // not before the new entries are half as large
  CHECK(sent > 4);
  CHECK(h.srv.document_state("room-1/doc") == merged_of({big, update_v2()}));
}

TEST_CASE("a connection may open a bounded number of documents", "[server][lifecycle]") {
  server::ServerConfig config;
  config.max_documents_per_connection = 2;
  testing::ServerHost h(config);
  auto a = h.open("A", ctx("a"));
  auto open_doc = [&](const std::string& name) {
    protocol::Message m;
    m.document = name;
    m.payload = protocol::SyncStep1{{0}};
    return sent_to(h.send(a, protocol::encode_message(m)), a);
  };
  CHECK(open_doc("one").size() == 3);
  CHECK(open_doc("two").size() == 3);
  auto refused = open_doc("three");
  REQUIRE(refused.size() == 1);
  const auto* auth = refused[0].get<protocol::AuthMessage>();
  REQUIRE(auth);
  CHECK(auth->permission == protocol::Permission::denied);
  CHECK(auth->reason == "Too many open documents on this connection (limit 2)");
  CHECK(h.srv.session_count() == 2);
  CHECK(open_doc("one").size() == 3);  // the open ones keep working
}

TEST_CASE("token mode is the default: a context without claims gets nothing", "[server][lifecycle]") {
  testing::ServerHost h;
  server::Outputs opened;
  auto a = h.open("A", {{"userId", "a"}, {"room", "room-1"}}, &opened);
  CHECK(has_log(opened, "context_without_claims"));
  auto msgs = sent_to(h.send(a, kSyncStep1), a);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].get<protocol::AuthMessage>()->reason == "Insufficient permissions to access document doc");
  // An rpc without a document cannot be checked: refused (the reference lets it through).
  protocol::Message rpc;
  protocol::Rpc r;
  r.method = "milestoneList";
  r.result = protocol::RpcSuccess{lib0::Any::object()};
  rpc.payload = r;
  msgs = sent_to(h.send(a, protocol::encode_message(rpc)), a);
  REQUIRE(msgs.size() == 1);
  CHECK(std::get<protocol::RpcError>(msgs[0].get<protocol::Rpc>()->result).status_code == 403);
}

TEST_CASE("a context's token is verified with the server's secret", "[server][lifecycle]") {
  server::ServerConfig config;
  config.tokens.secret = {'s', 'e', 'c'};
  testing::ServerHost h(config);
  std::string token = mint("sec", "a", "room-1", h.now_ms / 1000, 3600, R"([{"pattern":"doc","permissions":["read"]}])");
  auto a = h.open("A", {{"userId", "a"}, {"room", "room-1"}, {"token", token}});
  CHECK(sent_to(h.send(a, kSyncStep1), a).size() == 3);  // read granted by the token
  auto msgs = sent_to(h.send(a, kUpdate), a);            // write is not
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].is<protocol::AuthMessage>());
  std::string forged = mint("other", "a", "room-1", h.now_ms / 1000, 3600, R"([{"pattern":"*","permissions":["read"]}])");
  server::Outputs opened;
  auto b = h.open("B", {{"userId", "a"}, {"room", "room-1"}, {"token", forged}}, &opened);
  CHECK(has_log(opened, "context_token_invalid"));
  CHECK(sent_to(h.send(b, kSyncStep1), b)[0].is<protocol::AuthMessage>());
}

TEST_CASE("an expiring token closes the connection with 4401 unless refreshed in-band", "[server][lifecycle]") {
  server::ServerConfig config;
  config.tokens.secret = {'s', 'e', 'c'};
  testing::ServerHost h(config);
  double now_s = h.now_ms / 1000;
  json a_ctx = ctx("a");
  a_ctx["exp"] = now_s + 10;
  json b_ctx = ctx("b");
  b_ctx["exp"] = now_s + 10;
  auto a = h.open("A", a_ctx);
  auto b = h.open("B", b_ctx);
  CHECK(h.srv.next_deadline().value_or(0) == Approx((now_s + 10) * 1000));
  CHECK(close_code(h.tick(5000), a) == 0);

  // B refreshes: same user and room, later expiry, read-only now.
  std::string fresh = mint("sec", "b", "room-1", h.now_ms / 1000, 3600, R"([{"pattern":"*","permissions":["read"]}])");
  auto refreshed = sent_to(h.send(b, auth_frame("doc", fresh)), b);
  REQUIRE(refreshed.size() == 1);
  CHECK_FALSE(refreshed[0].get<protocol::Ack>()->error);
  // Another user's token is refused, and so is garbage.
  std::string other = mint("sec", "mallory", "room-1", h.now_ms / 1000, 3600, R"([])");
  auto refused = sent_to(h.send(b, auth_frame("doc", other)), b);
  CHECK(refused[0].get<protocol::Ack>()->error.value_or("") ==
        "Token refresh refused: the new token is for another user or room");
  refused = sent_to(h.send(b, auth_frame("doc", "not.a.token")), b);
  CHECK(refused[0].get<protocol::Ack>()->error.value_or("").rfind("Token refresh refused: ", 0) == 0);

  auto out = h.tick(6000);  // past the first exp
  CHECK(close_code(out, a) == 4401);
  CHECK(close_code(out, b) == 0);
  CHECK(has_log(out, "token_expired"));
  // The refreshed permissions apply: B can still read but no longer write.
  CHECK(sent_to(h.send(b, kSyncStep1), b).size() == 3);
  CHECK(sent_to(h.send(b, kUpdate), b)[0].is<protocol::AuthMessage>());
  // A's frames after expiry are not processed.
  CHECK(sent_to(h.send(a, kSyncStep1), a).empty());
}

TEST_CASE("a refresh that drops read access stops relays to that connection", "[server][lifecycle]") {
  server::ServerConfig config;
  config.tokens.secret = {'s', 'e', 'c'};
  testing::ServerHost h(config);
  auto a = h.open("A", ctx("a"));
  auto b = h.open("B", ctx("b"));
  h.send(b, kSyncStep1);
  CHECK(got_raw(h.send(a, kUpdate), b, kUpdate));
  std::string none = mint("sec", "b", "room-1", h.now_ms / 1000, 3600, R"([{"pattern":"other","permissions":["read"]}])");
  h.send(b, auth_frame("doc", none));
  CHECK_FALSE(got_raw(h.send(a, kUpdate), b, kUpdate));
}

TEST_CASE("callback mode asks the application once per (client, document) and queues meanwhile", "[server][lifecycle]") {
  server::ServerConfig config;
  config.permissions = server::PermissionMode::callback;
  server::Server srv(config);
  server::Outputs ignored;
  auto a = srv.open("A", {{"userId", "a"}}, 0, ignored);
  auto out = srv.message(a, kSyncStep1);
  REQUIRE(out.size() == 1);
  const auto* ask = std::get_if<server::PermissionOutput>(&out[0]);
  REQUIRE(ask);
  CHECK(ask->document == "doc");
  CHECK(ask->frame == kSyncStep1);
  CHECK(srv.message(a, kUpdate).empty());  // waits behind the question
  out = srv.permission(a, "doc", server::Access::read);
  // The sync-step-1 goes on (to the load), the update is denied (read only).
  bool loads = false;
  for (const auto& o : out) loads |= std::holds_alternative<server::LoadOutput>(o);
  CHECK(loads);
  auto msgs = sent_to(out, a);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].is<protocol::AuthMessage>());
  out = srv.message(a, kSyncStep1);  // decided: no new question
  for (const auto& o : out) CHECK_FALSE(std::holds_alternative<server::PermissionOutput>(o));
}

TEST_CASE("a restored connection rejoins its documents and receives relays without sending", "[server][lifecycle]") {
  testing::ServerHost h;
  auto writer = h.open("W", ctx("w"));
  auto listener = h.open("L", ctx("l"));
  auto no_read = h.open("N", ctx("n", json::parse(R"([{"pattern":"other","permissions":["read"]}])")));
  auto out = h.srv.rejoin(listener, "doc");
  h.settle(out);
  bool joined = false;
  for (const auto& o : out) {
    if (const auto* j = std::get_if<server::JoinOutput>(&o)) joined = j->client == listener && j->document == "doc";
  }
  CHECK(joined);
  auto denied = h.srv.rejoin(no_read, "doc");
  CHECK(denied.empty());
  out = h.send(writer, kUpdate);
  CHECK(got_raw(out, listener, kUpdate));
  CHECK_FALSE(got_raw(out, no_read, kUpdate));
}

TEST_CASE("callback mode: a restored connection is asked about at once and joins on the answer", "[server][lifecycle]") {
  // After hibernation a listener may never send again: rejoin() asks the application instead of
  // waiting for a frame, and a yes makes it a reader; a no leaves it out.
  server::ServerConfig config;
  config.permissions = server::PermissionMode::callback;
  testing::ServerHost h(config);
  auto writer = h.open("W", {{"userId", "w"}});
  auto listener = h.open("L", {{"userId", "l"}});
  auto outsider = h.open("N", {{"userId", "n"}});
  h.then(h.srv.permission(writer, "doc", server::Access::read_write));
  auto asked = h.srv.rejoin(listener, "doc");
  REQUIRE(asked.size() == 1);
  const auto* ask = std::get_if<server::PermissionOutput>(&asked[0]);
  REQUIRE(ask);
  CHECK(ask->client == listener);
  CHECK(ask->document == "doc");
  auto m = protocol::decode_message(ask->frame);
  REQUIRE(m.ok());
  CHECK(m.value().document == "doc");
  CHECK(m.value().is<protocol::PresenceAnnounce>());
  CHECK(h.srv.rejoin(listener, "doc").empty());  // asked once until answered
  auto joined = h.then(h.srv.permission(listener, "doc", server::Access::read));
  bool join = false;
  for (const auto& o : joined) {
    if (const auto* j = std::get_if<server::JoinOutput>(&o)) join |= j->client == listener && j->document == "doc";
  }
  CHECK(join);
  REQUIRE(std::get_if<server::PermissionOutput>(&h.srv.rejoin(outsider, "doc")[0]));
  h.then(h.srv.permission(outsider, "doc", server::Access::none));
  auto out = h.send(writer, kUpdate);
  CHECK(got_raw(out, listener, kUpdate));
  CHECK_FALSE(got_raw(out, outsider, kUpdate));
}

namespace {

// Two nodes sharing one store, their cluster publishes delivered to each other as pub/sub messages.
struct Cluster {
  testing::ServerHost one, two;
  static server::ServerConfig config(const char* id) {
    server::ServerConfig c;
    c.node_id = id;
    c.heartbeat_ms = 1000;
    c.presence_timeout_ms = 3000;
    return c;
  }
  Cluster() : one(config("n1")), two(config("n2")) {}
  // Delivers what each node published to the other until nothing is left; returns node two's and
  // node one's outputs of that delivery.
  std::pair<server::Outputs, server::Outputs> exchange() {
    server::Outputs at_one, at_two;
    while (!one.cluster.empty() || !two.cluster.empty()) {
      auto from_one = std::move(one.cluster);
      one.cluster.clear();
      for (const auto& p : from_one) {
        auto out = two.srv.remote(p.key, p.cluster_message);
        two.settle(out);
        at_two.insert(at_two.end(), out.begin(), out.end());
      }
      auto from_two = std::move(two.cluster);
      two.cluster.clear();
      for (const auto& p : from_two) {
        auto out = one.srv.remote(p.key, p.cluster_message);
        one.settle(out);
        at_one.insert(at_one.end(), out.begin(), out.end());
      }
    }
    return {at_two, at_one};
  }
};

Bytes announce_frame(std::uint64_t id) {
  protocol::Message m;
  m.document = "doc";
  m.payload = protocol::PresenceAnnounce{id};
  return protocol::encode_message(m);
}

}  // namespace

TEST_CASE("cluster: an update accepted on one node reaches the readers of another, and only them", "[server][cluster]") {
  Cluster c;
  auto writer = c.one.open("W", ctx("w"));
  auto reader = c.two.open("R", ctx("r"));
  auto outsider = c.two.open("O", ctx("o", json::parse(R"([{"pattern":"other","permissions":["read"]}])")));
  c.two.send(reader, kSyncStep1);
  c.two.send(outsider, kSyncStep1);  // denied: never a member
  c.two.store = c.one.store;         // (the shared database)
  auto out = c.one.send(writer, kUpdate);
  REQUIRE(c.one.cluster.size() == 1);
  CHECK(c.one.cluster[0].key == "room-1/doc");
  auto [at_two, at_one] = c.exchange();
  CHECK(got_raw(at_two, reader, kUpdate));
  CHECK_FALSE(got_raw(at_two, outsider, kUpdate));
  CHECK(c.two.srv.document_state("room-1/doc") == c.one.srv.document_state("room-1/doc"));
  // A node ignores its own messages.
  CHECK(c.one.srv.remote("room-1/doc", protocol::encode_pubsub_message(kUpdate, "n1")).empty());
}

TEST_CASE("cluster: presence crosses nodes, and a silent node's clients leave", "[server][cluster]") {
  Cluster c;
  auto a = c.one.open("A", ctx("alice"));
  auto b = c.two.open("B", ctx("bob"));
  c.one.send(a, announce_frame(1));
  c.exchange();  // node two has no session for the document yet: ignored
  auto msgs = sent_to(c.two.send(b, announce_frame(2)), b);
  auto [at_two, at_one] = c.exchange();
  // A (who announced) hears of B from node two.
  bool a_sees_b = false;
  for (const auto& m : sent_to(at_one, a)) {
    if (const auto* j = m.get<protocol::PresenceJoin>()) a_sees_b |= j->client.user_id == "bob";
  }
  CHECK(a_sees_b);
  // Heartbeats tell node two about A; then node one falls silent and A leaves at node two.
  c.one.tick(1000);
  c.exchange();
  auto later = sent_to(c.two.send(b, announce_frame(2)), b);
  bool b_sees_a = false;
  for (const auto& m : later) {
    if (const auto* j = m.get<protocol::PresenceJoin>()) b_sees_a |= j->client.user_id == "alice";
  }
  CHECK(b_sees_a);
  auto expired = c.two.tick(4000);
  bool left = false;
  for (const auto& m : sent_to(expired, b)) {
    if (const auto* l = m.get<protocol::PresenceLeave>()) left |= l->client.user_id == "alice";
  }
  CHECK(left);
  CHECK(has_log(expired, "cluster_node_expired"));
}

TEST_CASE("rate limits NACK with retryAfter per connection and per user; others are unaffected", "[server][limits]") {
  server::ServerConfig config;
  config.rate_per_connection = 10;
  config.burst_per_connection = 5;
  config.rate_per_user = 100;
  config.burst_per_user = 8;
  testing::ServerHost h(config);
  h.tick(0);
  auto flood = h.open("F", ctx("flooder"));
  auto twin = h.open("F2", ctx("flooder"));  // same user, another connection
  auto other = h.open("O", ctx("other"));
  int limited = 0;
  for (int i = 0; i < 5; ++i) {
    for (const auto& m : sent_to(h.send(flood, kSyncStep1), flood)) {
      if (const auto* a = m.get<protocol::Ack>(); a && a->retry_after) ++limited;
    }
  }
  CHECK(limited == 0);  // the burst
  auto msgs = sent_to(h.send(flood, kSyncStep1), flood);
  REQUIRE(msgs.size() == 1);
  const auto* nack = msgs[0].get<protocol::Ack>();
  REQUIRE(nack);
  CHECK(nack->retry_after.value_or(0) == 1000);
  CHECK_FALSE(nack->error);
  // The user's bucket (8) is shared: the twin gets 3 more, then is limited too.
  for (int i = 0; i < 3; ++i) CHECK(sent_to(h.send(twin, kSyncStep1), twin).size() == 3);
  CHECK(sent_to(h.send(twin, kSyncStep1), twin)[0].get<protocol::Ack>()->retry_after.value_or(0) == 1000);
  // Another user is served; pings of the flooder still answered.
  CHECK(sent_to(h.send(other, kSyncStep1), other).size() == 3);
  auto pong = h.send(flood, protocol::ping_message().to_bytes());
  REQUIRE(pong.size() == 1);
  CHECK(std::get<server::SendOutput>(pong[0]).frame == protocol::pong_message().to_bytes());
  // Time refills the buckets.
  h.tick(1000);
  CHECK(sent_to(h.send(flood, kSyncStep1), flood).size() == 3);
}

TEST_CASE("a rate-limited flood logs once per episode, not once per refused frame", "[server][limits]") {
  server::ServerConfig config;
  config.rate_per_connection = 10;
  config.burst_per_connection = 2;
  testing::ServerHost h(config);
  h.tick(0);
  auto flood = h.open("F", ctx("flooder"));
  auto limited_logs = [&](const server::Outputs& outs) {
    int n = 0;
    for (const auto& o : outs) {
      if (const auto* l = std::get_if<server::LogOutput>(&o); l && l->event == "rate_limited") ++n;
    }
    return n;
  };
  int logs = 0;
  int nacks = 0;
  for (int i = 0; i < 200; ++i) {
    auto outs = h.send(flood, kSyncStep1);
    logs += limited_logs(outs);
    for (const auto& m : sent_to(outs, flood)) {
      if (const auto* a = m.get<protocol::Ack>(); a && a->retry_after) ++nacks;
    }
  }
  CHECK(nacks == 198);
  CHECK(logs == 1);
  // Served again after a refill, then limited again: a second episode, a second line.
  h.tick(1000);
  logs = 0;
  for (int i = 0; i < 50; ++i) logs += limited_logs(h.send(flood, kSyncStep1));
  CHECK(logs == 1);
}

TEST_CASE("limits: document name length, awareness size, connections per document", "[server][limits]") {
  server::ServerConfig config;
  config.max_document_name_bytes = 8;
  config.max_awareness_bytes = 16;
  config.max_connections_per_document = 2;
  testing::ServerHost h(config);
  auto a = h.open("A", ctx("a"));
  protocol::Message m;
  m.document = "a-very-long-name";
  m.payload = protocol::SyncStep1{{0}};
  auto msgs = sent_to(h.send(a, protocol::encode_message(m)), a);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].get<protocol::Ack>()->error.value_or("") == "Document name too long (16 > 8 bytes)");
  protocol::Message aw;
  aw.document = "doc";
  aw.payload = protocol::AwarenessUpdate{Bytes(40, 1)};
  msgs = sent_to(h.send(a, protocol::encode_message(aw)), a);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].get<protocol::Ack>()->error.value_or("") == "Awareness update too large (40 > 16 bytes)");
  auto b = h.open("B", ctx("b"));
  auto c = h.open("C", ctx("c"));
  CHECK(sent_to(h.send(a, kSyncStep1), a).size() == 3);
  CHECK(sent_to(h.send(b, kSyncStep1), b).size() == 3);
  msgs = sent_to(h.send(c, kSyncStep1), c);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].get<protocol::AuthMessage>()->reason == "Too many connections to document doc (limit 2)");
}
