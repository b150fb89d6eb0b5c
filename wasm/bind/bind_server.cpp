// The server core's boundary: plain wasm exports (no embind), conversion and naming only.
//
// One convention for every export here:
//   - inputs: numbers as arguments; bytes and strings written by JS into the input buffer
//     (tp_input(capacity) -> its address), laid out one after the other, lengths as arguments;
//   - result: an int32, the number of output records written (>= 0), or -1 when the call itself
//     is refused (e.g. a context that is not a JSON object); scalar results (a handle, a batch id,
//     a deadline) go to header.result[];
//   - outputs: fixed-size records of 8 int32 in a persistent arena; their frames and strings live
//     in a persistent byte arena, as (offset, length) from header.bytes. JS reads both through
//     typed arrays over wasm memory, and hands frames on as views of it. Both arenas are reused by
//     the next call: JS copies what it still needs before calling again.
// Record layout: [0] kind, [1] client (or a number), [2] bytes offset, [3] bytes length, [4] a
// number, [5] string offset, [6] string length, [7] a number. Kinds and fields: see kKind* below
// and wasm/src/server-core.js, which reads them.
#include <emscripten/emscripten.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tp/protocol/message.hpp"
#include "tp/server/http.hpp"
#include "tp/server/server.hpp"
#include "tp/server/upgrade.hpp"

namespace {

using tp::Bytes;
using tp::ByteView;
namespace srv = tp::server;

enum Kind : std::int32_t {
  kSend = 1,        // [1] to, [2,3] frame
  kClose = 2,       // [1] client, [4] code, [5,6] reason
  kLog = 3,         // [4] level (0 debug, 1 info, 2 warn, 3 error), [5,6] event, [2,3] fields JSON
  kLoad = 4,        // [5,6] key
  kCompact = 5,     // [5,6] key
  kPermission = 6,  // [1] client, [2,3] frame, [5,6] document
  kJoin = 7,        // [1] client, [5,6] document
  kReader = 8,      // [1] client, [4] reading, [7] topic, [5,6] key
  kPublish = 9,     // [1] except, [2,3] frame, [4] number of kExcept records that follow, [7] topic, [5,6] key
  kExcept = 10,     // [1] a further client the preceding kPublish does not reach
  kCluster = 11,    // [2,3] pub/sub message for the other nodes, [5,6] key
  kChannel = 12,    // [4] subscribe, [5,6] key
  kAck = 13,        // [1] client, [2,3] ack frame
  kWrite = 14,      // flush: [2,3] entry, [5,6] key
  kEntry = 15,      // mergeEntries: [2,3] the merged entry
  kText = 16,       // an error or a text result: [5,6]
  kVerdict = 17,    // authenticateUpgrade: [4] status, [7] ok, [2,3] context JSON, [5,6] body
  kSample = 18,     // metrics: [5,6] sample name with labels (no prefix), [2,3] its value (f64, little-endian)
  kHttpFrame = 30,  // httpBody / sentFrames: [2,3] frame or acked id, [4] flag, [5,6] message id
  kRpc = 40,        // [1] client, [2,3] payload (one lib0 any), [4] call id, [5,6] method, [7] flags
                    // (1 frame encrypted, 2 session encrypted, 4 a stream frame); then three
                    // kText records: document, documentId (namespaced), the frame's message id
  kMilestoneLoad = 41,   // [5,6] key
  kMilestoneStore = 42,  // [1] op kind (1 put, 2 remove, 3 snapshot), [2,3] meta, [4] op id, [5,6] key,
                         // [7] 1 when a snapshot follows; then a kText: [5,6] milestone id, [2,3] snapshot
  kMilestoneCreated = 43,  // an automatic milestone was stored: [2,3] milestone id, [5,6] documentId
};

// What JS reads after each call: where the arenas are and the scalar results.
struct Header {
  std::int32_t records = 0;  // address of the records
  std::int32_t bytes = 0;    // address of the byte arena
  std::int32_t bytes_length = 0;
  std::int32_t unused = 0;
  double result[4] = {0, 0, 0, 0};
};

Header g_header;
std::vector<std::int32_t> g_records;
Bytes g_bytes;
Bytes g_input;

std::int32_t address(const void* p) { return static_cast<std::int32_t>(reinterpret_cast<std::uintptr_t>(p)); }

std::string_view input_text(std::size_t at, std::size_t n) {
  return {reinterpret_cast<const char*>(g_input.data()) + at, n};
}
ByteView input_bytes(std::size_t at, std::size_t n) { return {g_input.data() + at, n}; }

class Writer {
 public:
  Writer() {
    g_records.clear();
    g_bytes.clear();
  }
  std::int32_t put(ByteView b) {
    auto at = static_cast<std::int32_t>(g_bytes.size());
    g_bytes.insert(g_bytes.end(), b.begin(), b.end());
    return at;
  }
  std::int32_t put(std::string_view s) { return put(ByteView(s)); }
  struct Slice {
    std::int32_t off = 0;
    std::int32_t len = 0;
  };
  Slice bytes(ByteView b) { return {put(b), static_cast<std::int32_t>(b.size)}; }
  Slice text(std::string_view s) { return {put(s), static_cast<std::int32_t>(s.size())}; }
  void record(Kind kind, std::int32_t client, Slice data, std::int32_t number, Slice str, std::int32_t extra = 0) {
    g_records.insert(g_records.end(), {kind, client, data.off, data.len, number, str.off, str.len, extra});
  }
  void outputs(const srv::Outputs& outs) {
    for (const auto& o : outs) output(o);
  }
  std::int32_t finish() {
    g_header.records = address(g_records.data());
    g_header.bytes = address(g_bytes.data());
    g_header.bytes_length = static_cast<std::int32_t>(g_bytes.size());
    return static_cast<std::int32_t>(g_records.size() / 8);
  }

 private:
  static std::int32_t level_of(const std::string& level) {
    if (level == "debug") return 0;
    if (level == "info") return 1;
    if (level == "warn") return 2;
    return 3;
  }

  void output(const srv::Output& o) {
    const Slice none;
    if (const auto* send = std::get_if<srv::SendOutput>(&o)) {
      Slice frame = bytes(send->frame);
      for (auto to : send->to) record(kSend, static_cast<std::int32_t>(to), frame, 0, none);
    } else if (const auto* ack = std::get_if<srv::AckOutput>(&o)) {
      std::uint8_t frame[tp::protocol::kAckFrameSize];
      tp::protocol::write_ack_frame(ack->id, frame);
      record(kAck, static_cast<std::int32_t>(ack->client), bytes({frame, sizeof frame}), 0, none);
    } else if (const auto* pub = std::get_if<srv::PublishOutput>(&o)) {
      Slice key = text(pub->key);
      if (pub->local) {
        record(kPublish, static_cast<std::int32_t>(pub->except), bytes(pub->frame),
               static_cast<std::int32_t>(pub->also_except.size()), key, static_cast<std::int32_t>(pub->topic));
        for (auto c : pub->also_except) record(kExcept, static_cast<std::int32_t>(c), none, 0, none);
      }
      if (pub->cluster) record(kCluster, 0, bytes(pub->cluster_message), 0, key);
    } else if (const auto* reader = std::get_if<srv::ReaderOutput>(&o)) {
      record(kReader, static_cast<std::int32_t>(reader->client), none, reader->reading ? 1 : 0, text(reader->key),
             static_cast<std::int32_t>(reader->topic));
    } else if (const auto* close = std::get_if<srv::CloseOutput>(&o)) {
      record(kClose, static_cast<std::int32_t>(close->client), none, close->code, text(close->reason));
    } else if (const auto* log = std::get_if<srv::LogOutput>(&o)) {
      record(kLog, 0, text(log->fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)),
             level_of(log->level), text(log->event));
    } else if (const auto* load = std::get_if<srv::LoadOutput>(&o)) {
      record(kLoad, 0, none, 0, text(load->key));
    } else if (const auto* compact = std::get_if<srv::CompactOutput>(&o)) {
      record(kCompact, 0, none, 0, text(compact->key));
    } else if (const auto* ask = std::get_if<srv::PermissionOutput>(&o)) {
      record(kPermission, static_cast<std::int32_t>(ask->client), bytes(ask->frame), 0, text(ask->document));
    } else if (const auto* joined = std::get_if<srv::JoinOutput>(&o)) {
      record(kJoin, static_cast<std::int32_t>(joined->client), none, 0, text(joined->document));
    } else if (const auto* channel = std::get_if<srv::ChannelOutput>(&o)) {
      record(kChannel, 0, none, channel->subscribe ? 1 : 0, text(channel->key));
    } else if (const auto* call = std::get_if<srv::RpcCallOutput>(&o)) {
      std::int32_t flags = (call->encrypted ? 1 : 0) | (call->session_encrypted ? 2 : 0) | (call->stream ? 4 : 0);
      record(kRpc, static_cast<std::int32_t>(call->client), bytes(call->payload), static_cast<std::int32_t>(call->call),
             text(call->method), flags);
      record(kText, 0, none, 0, text(call->document));
      record(kText, 0, none, 0, text(call->document_id));
      record(kText, 0, none, 0, text(call->message_id));
    } else if (const auto* ml = std::get_if<srv::MilestoneLoadOutput>(&o)) {
      record(kMilestoneLoad, 0, none, 0, text(ml->key));
    } else if (const auto* ms = std::get_if<srv::MilestoneStoreOutput>(&o)) {
      record(kMilestoneStore, static_cast<std::int32_t>(ms->kind), bytes(ms->meta), static_cast<std::int32_t>(ms->op),
             text(ms->key), ms->snapshot ? 1 : 0);
      record(kText, 0, ms->snapshot ? bytes(*ms->snapshot) : none, 0, text(ms->id));
    } else if (const auto* mc = std::get_if<srv::MilestoneCreatedOutput>(&o)) {
      record(kMilestoneCreated, 0, text(mc->id), 0, text(mc->document_id));
    }
  }
};

std::int32_t emit(const srv::Outputs& outs) {
  Writer w;
  w.outputs(outs);
  return w.finish();
}

template <class T>
void read_number(const nlohmann::json& j, const char* name, T& into) {
  if (j.contains(name) && j[name].is_number() && j[name].get<double>() >= 0) into = j[name].get<T>();
}

// config: {permissions: "token"|"none"|"callback", persist, maxMessageSize, unloadAfterMs,
// maxDocumentsPerConnection, compactAfter, nodeId, heartbeatMs, presenceTimeoutMs, infoLogs,
// issuer, audience, allowMissingDocumentAccess}; the token secret travels as bytes.
srv::ServerConfig parse_config(std::string_view config_json, ByteView secret, ByteView seed) {
  srv::ServerConfig config;
  auto j = nlohmann::json::parse(config_json.begin(), config_json.end(), nullptr, false);
  if (!j.is_object()) return config;
  std::string mode = j.value("permissions", std::string("token"));
  if (mode == "none") config.permissions = srv::PermissionMode::none;
  if (mode == "callback") config.permissions = srv::PermissionMode::callback;
  config.persist = j.value("persist", true);
  config.info_logs = j.value("infoLogs", true);
  read_number(j, "maxMessageSize", config.max_message_size);
  read_number(j, "unloadAfterMs", config.unload_after_ms);
  read_number(j, "maxDocumentsPerConnection", config.max_documents_per_connection);
  read_number(j, "compactAfter", config.compact_after);
  read_number(j, "ratePerConnection", config.rate_per_connection);
  read_number(j, "burstPerConnection", config.burst_per_connection);
  read_number(j, "ratePerUser", config.rate_per_user);
  read_number(j, "burstPerUser", config.burst_per_user);
  read_number(j, "maxDocumentNameBytes", config.max_document_name_bytes);
  read_number(j, "maxAwarenessBytes", config.max_awareness_bytes);
  read_number(j, "maxConnectionsPerDocument", config.max_connections_per_document);
  config.node_id = j.value("nodeId", std::string());
  if (j.contains("rpcMethods") && j["rpcMethods"].is_array()) {
    for (const auto& m : j["rpcMethods"]) {
      if (!m.is_object() || !m.contains("name") || !m["name"].is_string()) continue;
      config.rpc_methods.push_back({m["name"].get<std::string>(), m.value("access", std::string("write")) != "read",
                                    m.value("stream", false)});
    }
  }
  read_number(j, "rpcTimeoutMs", config.rpc_timeout_ms);
  config.milestones = j.value("milestones", true);
  if (j.contains("milestoneTriggers") && j["milestoneTriggers"].is_array()) {
    for (const auto& t : j["milestoneTriggers"]) {
      if (!t.is_object()) continue;
      srv::MilestoneTrigger trigger;
      trigger.id = t.value("id", std::string());
      trigger.enabled = t.value("enabled", true);
      std::string type = t.value("type", std::string());
      const auto& c = t.contains("config") && t["config"].is_object() ? t["config"] : nlohmann::json::object();
      if (type == "update-count") {
        trigger.type = srv::MilestoneTrigger::Type::update_count;
        read_number(c, "updateCount", trigger.update_count);
      } else if (type == "time-based") {
        trigger.type = srv::MilestoneTrigger::Type::time_based;
        read_number(c, "interval", trigger.interval_ms);
      } else {
        continue;  // the JS Server refuses other types before this
      }
      if (t.contains("autoName") && t["autoName"].is_string()) trigger.auto_name = t["autoName"].get<std::string>();
      config.milestone_triggers.push_back(std::move(trigger));
    }
  }
  read_number(j, "heartbeatMs", config.heartbeat_ms);
  read_number(j, "presenceTimeoutMs", config.presence_timeout_ms);
  config.tokens.secret = secret.to_bytes();
  config.random_seed = seed.to_bytes();
  config.tokens.issuer = j.value("issuer", std::string("teleportal"));
  config.tokens.audience = j.value("audience", std::string("teleportal"));
  config.tokens.allow_missing_document_access = j.value("allowMissingDocumentAccess", false);
  return config;
}

srv::Server& server(std::uintptr_t core) { return *reinterpret_cast<srv::Server*>(core); }
srv::ClientHandle handle(std::int32_t h) { return static_cast<srv::ClientHandle>(h); }

// `count` byte strings in the input at `at`: first count u32 lengths, then the bytes.
std::vector<ByteView> input_list(std::size_t at, std::size_t count) {
  std::vector<ByteView> out;
  out.reserve(count);
  std::size_t data = at + 4 * count;
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t n = 0;
    std::memcpy(&n, g_input.data() + at + 4 * i, 4);
    out.push_back(input_bytes(data, n));
    data += n;
  }
  return out;
}

}  // namespace

extern "C" {

// The header's address (constant), and the input buffer's, grown to `capacity` bytes.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_header() { return address(&g_header); }
EMSCRIPTEN_KEEPALIVE std::int32_t tp_input(std::int32_t capacity) {
  if (g_input.size() < static_cast<std::size_t>(capacity)) g_input.resize(static_cast<std::size_t>(capacity));
  return address(g_input.data());
}

// input: config JSON (config_len), then the secret, then 32 random bytes (milestone ids);
// result[0] = the server's address.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_create(std::int32_t config_len, std::int32_t secret_len, std::int32_t seed_len) {
  auto* s = new srv::Server(parse_config(input_text(0, config_len), input_bytes(config_len, secret_len),
                                         input_bytes(config_len + secret_len, seed_len)));
  g_header.result[0] = static_cast<double>(reinterpret_cast<std::uintptr_t>(s));
  return Writer().finish();
}
EMSCRIPTEN_KEEPALIVE void tp_server_destroy(std::uintptr_t core) { delete reinterpret_cast<srv::Server*>(core); }

// input: client id, then context JSON; result[0] = the handle. -1: the context is not an object.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_open(std::uintptr_t core, std::int32_t id_len, std::int32_t context_len, double now_ms) {
  std::string_view text = input_text(id_len, context_len);
  auto context = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!context.is_object()) return -1;
  srv::Outputs out;
  auto h = server(core).open(std::string(input_text(0, id_len)), std::move(context), now_ms, out);
  g_header.result[0] = h;
  return emit(out);
}

// input: one frame. now_ms > 0: the clock first moves on (JS passes it for rpc frames).
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_message(std::uintptr_t core, std::int32_t client, std::int32_t len, double now_ms) {
  if (now_ms > 0) server(core).advance_time(now_ms);
  auto out = server(core).message(handle(client), input_bytes(0, len));
  if (out.empty()) return Writer().finish();
  return emit(out);
}

EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_close(std::uintptr_t core, std::int32_t client) {
  return emit(server(core).close(handle(client)));
}

// input: document name.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_rejoin(std::uintptr_t core, std::int32_t client, std::int32_t doc_len) {
  return emit(server(core).rejoin(handle(client), std::string(input_text(0, doc_len))));
}

// input: key, then the pub/sub message.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_remote(std::uintptr_t core, std::int32_t key_len, std::int32_t msg_len) {
  return emit(server(core).remote(std::string(input_text(0, key_len)), input_bytes(key_len, msg_len)));
}

// input: key, then `count` entries (input_list layout).
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_loaded(std::uintptr_t core, std::int32_t key_len, std::int32_t count) {
  return emit(server(core).loaded(std::string(input_text(0, key_len)), input_list(key_len, count)));
}

// input: key, then the error text.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_load_failed(std::uintptr_t core, std::int32_t key_len, std::int32_t err_len) {
  return emit(server(core).load_failed(std::string(input_text(0, key_len)), std::string(input_text(key_len, err_len))));
}

// kWrite records; result[0] = the batch id (0: nothing to commit).
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_flush(std::uintptr_t core) {
  auto batch = server(core).flush();
  g_header.result[0] = static_cast<double>(batch.id);
  Writer w;
  for (const auto& write : batch.writes) w.record(kWrite, 0, w.bytes(write.entry), 0, w.text(write.key));
  return w.finish();
}

// input: the error text (when !ok).
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_committed(std::uintptr_t core, double batch, std::int32_t ok, std::int32_t err_len,
                                                      double now_ms) {
  server(core).advance_time(now_ms);
  return emit(server(core).committed(static_cast<srv::BatchId>(batch), ok != 0, std::string(input_text(0, err_len))));
}

// An answer for an rpc call. kind: 0 stream chunk, 1 response, 2 error, 3 done (a stream frame
// handled: ack only). encrypted: -1 the request's flag, else 0/1. input: the payload (one lib0
// any, payload_len bytes; for an error only when has_payload), then the error's details text.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_rpc_answer(std::uintptr_t core, std::int32_t call, std::int32_t kind,
                                                       double status, std::int32_t encrypted, std::int32_t payload_len,
                                                       std::int32_t has_payload, std::int32_t details_len) {
  auto id = static_cast<srv::CallId>(call);
  ByteView payload = input_bytes(0, payload_len);
  std::optional<bool> flag;
  if (encrypted >= 0) flag = encrypted != 0;
  switch (kind) {
    case 0:
      return emit(server(core).rpc_stream(id, payload, flag));
    case 1:
      return emit(server(core).rpc_response(id, payload, flag));
    case 2: {
      std::optional<ByteView> extra;
      if (has_payload) extra = payload;
      return emit(server(core).rpc_error(id, status < 0 ? 500 : static_cast<std::uint64_t>(status),
                                         std::string(input_text(payload_len, details_len)), extra));
    }
    default:
      return emit(server(core).rpc_done(id));
  }
}

// input: key, then 2 x count byte strings (input_list layout): id, meta, id, meta, ...
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_milestones_loaded(std::uintptr_t core, std::int32_t key_len, std::int32_t count) {
  auto list = input_list(key_len, 2 * static_cast<std::size_t>(count));
  std::vector<srv::StoredMilestone> milestones;
  milestones.reserve(count);
  for (std::size_t i = 0; i + 1 < list.size(); i += 2) {
    milestones.push_back({std::string(reinterpret_cast<const char*>(list[i].data), list[i].size), list[i + 1]});
  }
  return emit(server(core).milestones_loaded(std::string(input_text(0, key_len)), milestones));
}

// input: key, then the error text.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_milestones_load_failed(std::uintptr_t core, std::int32_t key_len, std::int32_t err_len) {
  return emit(server(core).milestones_load_failed(std::string(input_text(0, key_len)), std::string(input_text(key_len, err_len))));
}

// A milestone storage operation finished. input: the error text (!ok), or the snapshot read
// (has_snapshot; a snapshot op that found none passes has_snapshot 0).
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_milestone_done(std::uintptr_t core, std::int32_t op, std::int32_t ok, std::int32_t len,
                                                           std::int32_t has_snapshot, double now_ms) {
  server(core).advance_time(now_ms);
  std::optional<ByteView> snapshot;
  if (ok && has_snapshot) snapshot = input_bytes(0, len);
  return emit(server(core).milestone_done(static_cast<std::uint32_t>(op), ok != 0, ok ? std::string() : std::string(input_text(0, len)),
                                          snapshot));
}

// input: document name.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_permission(std::uintptr_t core, std::int32_t client, std::int32_t doc_len,
                                                       std::int32_t access) {
  return emit(server(core).permission(handle(client), std::string(input_text(0, doc_len)),
                                      static_cast<srv::Access>(access & 3)));
}

EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_tick(std::uintptr_t core, double now_ms) { return emit(server(core).tick(now_ms)); }

// result[0] = when tick() next has something to do (ms since the epoch), or -1;
// result[1] = clients, result[2] = loaded documents.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_state(std::uintptr_t core) {
  g_header.result[0] = server(core).next_deadline().value_or(-1);
  g_header.result[1] = static_cast<double>(server(core).client_count());
  g_header.result[2] = static_cast<double>(server(core).session_count());
  return Writer().finish();
}

// The core's counters (tp/server/metrics.hpp), one kSample record each; read when scraped.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_metrics(std::uintptr_t core) {
  const srv::Server& s = server(core);
  Writer w;
  for (const auto& [name, value] : s.metrics().samples(s.client_count(), s.session_count())) {
    std::uint8_t bytes[sizeof value];
    std::memcpy(bytes, &value, sizeof value);
    w.record(kSample, 0, w.bytes({bytes, sizeof bytes}), 0, w.text(name));
  }
  return w.finish();
}

// input: `count` entries (input_list layout). kEntry (the merged entry) or kText (why not), and logs.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_server_merge_entries(std::uintptr_t core, std::int32_t count) {
  srv::Outputs out;
  auto merged = server(core).merge_entries(input_list(0, count), out);
  Writer w;
  if (merged) {
    w.record(kEntry, 0, w.bytes(merged.value()), 0, {});
  } else {
    w.record(kText, 0, {}, 0, w.text(merged.error().message));
  }
  w.outputs(out);
  return w.finish();
}

// input: url, authorization, secret, issuer, audience. One kVerdict record, then a kText with the
// error code ("" when ok).
EMSCRIPTEN_KEEPALIVE std::int32_t tp_authenticate_upgrade(std::int32_t url_len, std::int32_t auth_len, std::int32_t secret_len,
                                                          std::int32_t has_secret, std::int32_t issuer_len,
                                                          std::int32_t audience_len, double now_seconds) {
  std::size_t at = 0;
  auto next = [&](std::int32_t n) {
    std::string_view s = input_text(at, static_cast<std::size_t>(n));
    at += static_cast<std::size_t>(n);
    return s;
  };
  std::string_view url = next(url_len);
  std::string_view authorization = next(auth_len);
  std::string_view secret = next(secret_len);
  srv::UpgradeAuthOptions options;
  options.secret = ByteView(secret);
  options.has_secret = has_secret != 0;
  options.issuer = std::string(next(issuer_len));
  options.audience = std::string(next(audience_len));
  // One authenticator (key schedule) for the secret in use; another secret replaces it.
  static std::unique_ptr<srv::UpgradeAuthenticator> authenticator;
  if (!authenticator || !authenticator->same_options(options)) authenticator = std::make_unique<srv::UpgradeAuthenticator>(options);
  std::string context;
  auto v = authenticator->authenticate(url, authorization, now_seconds, context);
  if (v.ok && context.empty()) context = v.context.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Writer w;
  w.record(kVerdict, 0, v.ok ? w.text(context) : Writer::Slice{}, v.status, w.text(v.body), v.ok ? 1 : 0);
  w.record(kText, 0, {}, 0, w.text(v.error));
  return w.finish();
}

// input: one frame. A kSend (to 0) with the reply when there is one, a kText with the error when
// the frame is not a valid Teleportal message.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_inspect_frame(std::int32_t len) {
  auto v = srv::inspect_frame(input_bytes(0, len));
  Writer w;
  if (!v.reply.empty()) w.record(kSend, 0, w.bytes(v.reply), 0, {});
  if (!v.error.empty()) w.record(kText, 0, {}, 0, w.text(v.error));
  return w.finish();
}

// HTTP/SSE transport. input: a POST body (message array). One kHttpFrame per frame ([2,3] the
// frame, [4] 1 when the poster waits for the server's answer, [5,6] its message id), or one kText
// with the error when the body is not a valid message array (then nothing is processed).
EMSCRIPTEN_KEEPALIVE std::int32_t tp_http_body(std::int32_t len) {
  auto body = srv::decode_http_body(input_bytes(0, len));
  Writer w;
  if (!body.error.empty()) {
    w.record(kText, 0, {}, 0, w.text(body.error));
    return w.finish();
  }
  for (const auto& f : body.frames) {
    w.record(kHttpFrame, 0, w.bytes(f.frame), f.needs_answer ? 1 : 0, w.text({f.id.data(), f.id.size()}));
  }
  return w.finish();
}

// input: `count` frames the server sent to HTTP clients (input_list layout). One kHttpFrame per
// frame: [5,6] its message id (the SSE event id), [4] 1 for an ack or NACK, [2,3] the id it answers.
EMSCRIPTEN_KEEPALIVE std::int32_t tp_http_sent(std::int32_t count) {
  auto frames = input_list(0, static_cast<std::size_t>(count));
  Writer w;
  for (ByteView frame : frames) {
    auto c = srv::classify_sent_frame(frame);
    w.record(kHttpFrame, 0, w.text(c.answers), c.is_ack ? 1 : 0, w.text({c.id.data(), c.id.size()}));
  }
  return w.finish();
}

}  // extern "C"
