// The document server as a state machine: bytes, connection events, storage answers and time in;
// actions out. No sockets, clocks or storage inside: the host carries out every Output (send a
// frame to some clients, close a client, load or store a document, ask the application for a
// permission, log an event) and reports back (loaded, committed, permission, tick).
// Behaviour follows the reference server routing (teleportal-spec.md section 4) except for the
// bugs of section 6, which are fixed here (see README.md next to this header).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "tp/common/bytes.hpp"
#include "tp/protocol/message.hpp"
#include "tp/server/metrics.hpp"

namespace tp::server {

using ClientHandle = std::uint32_t;
using BatchId = std::uint64_t;

// What a client may do with one document: two bits, decided once per (client, document).
enum class Access : std::uint8_t { none = 0, read = 1, write = 2, read_write = 3 };
inline bool can(Access a, Access need) {
  return (static_cast<std::uint8_t>(a) & static_cast<std::uint8_t>(need)) == static_cast<std::uint8_t>(need);
}

// Close codes the core decides (RFC 6455 + the 4000 private range). Documented in README.md.
enum class CloseCode : int {
  policy_violation = 1008,  // too many invalid frames in a row
  token_expired = 4401,     // the token's exp passed and no refresh came in-band
};

struct SendOutput {
  std::vector<ClientHandle> to;
  Bytes frame;
};
struct CloseOutput {
  ClientHandle client = 0;
  int code = 1000;
  std::string reason;
};
struct LogOutput {
  std::string level;  // "debug" | "info" | "warn" | "error"
  std::string event;  // snake_case event name
  nlohmann::json fields = nlohmann::json::object();
};
// The host reads everything stored for `key` and answers loaded() or load_failed().
struct LoadOutput {
  std::string key;
};
// The host replaces what is stored for `key` by merge_entries(stored entries), atomically
// (DocumentStorage.compact). Nothing needs to be reported back.
struct CompactOutput {
  std::string key;
};
// The application's checkPermission decides (client, document); the host answers permission().
// `frame` is the message that needed it (the callback receives it decoded).
struct PermissionOutput {
  ClientHandle client = 0;
  std::string document;
  Bytes frame;
};
// A client became a member of a document (hosts that must restore memberships keep a list).
struct JoinOutput {
  ClientHandle client = 0;
  std::string document;
};
// Who receives a document's relays: `client` starts (or stops) reading `key`. Hosts keep one
// topic per key (Bun: ws.subscribe/unsubscribe) and fan PublishOutputs out natively.
struct ReaderOutput {
  ClientHandle client = 0;
  std::string key;
  bool reading = true;
  std::uint32_t topic = 0;  // the key's number while its document is loaded (hosts may key topics by it)
};
// One frame for every reader of `key` except `except` (0: none) and `also_except` (the other
// senders of a coalesced batch, who get their own variant), and, when `cluster` is set, for the
// other nodes (as a pub/sub message from this node, on the document's channel).
struct PublishOutput {
  std::string key;
  ClientHandle except = 0;
  Bytes frame;
  bool local = true;
  bool cluster = false;
  Bytes cluster_message;  // when `cluster`: the pub/sub message (this node's id + frame)
  std::vector<ClientHandle> also_except;
  std::uint32_t topic = 0;  // as ReaderOutput::topic
  std::uint32_t readers = 0;  // local readers the frame reaches (counted in Metrics::sent)
};
// A successful ack (no flags) for the message `id` to `client`: the frame is
// protocol::write_ack_frame(id) (kept as the id so that an ack costs no allocation).
struct AckOutput {
  ClientHandle client = 0;
  protocol::MessageId id{};
};
// Cluster mode: this node needs (or no longer needs) the messages of `key`'s channel.
struct ChannelOutput {
  std::string key;
  bool subscribe = true;
};
// An rpc frame for a method the application registered (ServerConfig::rpc_methods): the host runs
// the method's handler (or, for an incoming `stream` frame, its streamHandler) and answers with
// one core call per result, naming `call`: rpc_stream (0..n), then rpc_response or rpc_error, or
// rpc_done (a stream frame handled: ack only). The core encodes every frame it sends for it.
using CallId = std::uint32_t;
struct RpcCallOutput {
  CallId call = 0;
  ClientHandle client = 0;
  bool stream = false;      // an incoming stream frame (streamHandler), else a request (handler)
  std::string method;
  std::string document;     // the bare name, as the client sent it
  std::string document_id;  // namespaced: "room/document", or the bare name without a room
  std::string message_id;   // the frame's own id
  Bytes payload;            // the success payload: one lib0 `any`
  bool encrypted = false;   // the frame's flag
  bool session_encrypted = false;
};
// Milestones: the host reads the milestones stored for `key` (MilestoneStorage.loadMilestones)
// and answers milestones_loaded() or milestones_load_failed().
struct MilestoneLoadOutput {
  std::string key;
};
// One milestone storage operation. The host runs those of one key one at a time, in order, and
// answers each with milestone_done(op, ...). put: insert `id` (or replace its meta, keeping the
// stored snapshot when `snapshot` is empty); remove: delete `id`; snapshot: read its snapshot.
enum class MilestoneOp : std::uint8_t { put = 1, remove = 2, snapshot = 3 };
struct MilestoneStoreOutput {
  std::uint32_t op = 0;
  MilestoneOp kind = MilestoneOp::put;
  std::string key;
  std::string id;
  Bytes meta;                     // put: the binary meta entry (spec ext. 2.6)
  std::optional<Bytes> snapshot;  // put of a new milestone: its snapshot
};
// An automatic milestone was stored (the application's onMilestoneCreated(id, documentId)).
struct MilestoneCreatedOutput {
  std::string key;
  std::string document_id;
  std::string id;
};
using Output = std::variant<SendOutput, CloseOutput, LogOutput, LoadOutput, CompactOutput, PermissionOutput,
                            JoinOutput, ReaderOutput, PublishOutput, ChannelOutput, AckOutput, RpcCallOutput,
                            MilestoneLoadOutput, MilestoneStoreOutput, MilestoneCreatedOutput>;
using Outputs = std::vector<Output>;

// What flush() hands the host: append `entry` to `key`, all writes in one transaction.
struct StorageWrite {
  std::string key;
  Bytes entry;
};
struct Batch {
  BatchId id = 0;
  std::vector<StorageWrite> writes;  // empty: nothing to commit
};

enum class PermissionMode : std::uint8_t {
  none,      // explicit opt-out: every message is allowed
  token,     // the connection's verified claims (documentAccess) decide (the default)
  callback,  // the application's checkPermission decides (PermissionOutput / permission())
};

struct TokenConfig {
  Bytes secret;  // empty: contexts are trusted as given; no in-band refresh
  std::string issuer = "teleportal";
  std::string audience = "teleportal";
  bool allow_missing_document_access = false;
};

// A method the application serves (the JS Server's rpcHandlers option).
struct RpcMethodConfig {
  std::string name;
  bool write = true;            // token mode: the permission it needs ("write", the default, or "read")
  bool stream_handler = false;  // incoming stream frames of this method go to the host too
};

// Automatic milestones (spec ext. 2.7): checked in list order on every doc update a session
// applies; all triggers share one counter and one clock per document, reset when one fires.
struct MilestoneTrigger {
  enum class Type : std::uint8_t { update_count, time_based };
  std::string id;
  Type type = Type::update_count;
  bool enabled = true;
  std::uint64_t update_count = 0;  // update_count: fires when the count reaches this
  double interval_ms = 0;          // time_based: fires on a write this long after the last milestone
  std::optional<std::string> auto_name;  // else "Milestone N"
};

struct ServerConfig {
  PermissionMode permissions = PermissionMode::token;
  TokenConfig tokens;
  std::size_t max_message_size = 10 * 1024 * 1024;
  // Consecutive undecodable frames after which a connection is closed (1008).
  std::uint32_t max_invalid_frames = 64;
  // true: documents are loaded (LoadOutput) and accepted updates stored (flush/committed) before
  // they are acknowledged or relayed. false: memory only, applied at once (native tests, fuzzing).
  bool persist = true;
  // Stored entries of a document after which storage is told to compact it into one.
  std::uint32_t compact_after = 64;
  // In-memory pending updates after which they are merged (bounds memory between reads).
  std::uint32_t merge_after = 256;
  // A document without members is unloaded this long after its last member left (0: at once).
  std::uint64_t unload_after_ms = 5000;
  // Documents one connection may have open; the next is refused with an auth-message.
  std::uint32_t max_documents_per_connection = 1000;
  // Frames waiting for one document's load (or one client's permission answer).
  std::uint32_t max_queued_frames = 1024;
  std::size_t max_queued_bytes = 16 * 1024 * 1024;
  // Rate limits (token buckets refilled by tick()): messages per second and burst, per connection
  // and per user (all connections with the same userId). 0 disables. A limited frame gets a NACK
  // with retryAfter (ms) and nothing else happens to it; acks and pings never take a token.
  double rate_per_connection = 1000;
  double burst_per_connection = 5000;
  double rate_per_user = 5000;
  double burst_per_user = 20000;
  // Other limits, each answered as documented in README.md.
  std::size_t max_document_name_bytes = 1024;
  std::size_t max_awareness_bytes = 64 * 1024;
  std::uint32_t max_connections_per_document = 10000;
  // Cluster mode when not empty: this node's id in pub/sub messages (its own are ignored).
  std::string node_id;
  // Cluster presence: each node announces its clients' presence this often; a node silent for
  // presence_timeout_ms is gone and its clients leave.
  std::uint64_t heartbeat_ms = 10000;
  std::uint64_t presence_timeout_ms = 30000;
  // RPC: the application's methods (they replace built-in ones of the same name), and how long
  // the host may take to answer a call before the client gets a 504 (0: no limit).
  std::vector<RpcMethodConfig> rpc_methods;
  std::uint64_t rpc_timeout_ms = 30000;
  // Built-in milestone methods (milestoneList, ...Get, ...Create, ...UpdateName, ...Delete,
  // ...Restore) over the host's milestone storage; false: they answer 501 like unknown methods.
  bool milestones = true;
  std::vector<MilestoneTrigger> milestone_triggers;
  // Randomness for milestone ids (UUID v4): a 32-byte seed from the host's CSPRNG (empty: the
  // core asks libsodium's randombytes once).
  Bytes random_seed;
  // false: the per-connection and per-document "info" LogOutputs (session_created, document_loaded,
  // client_disconnect, ...) are not made, for hosts whose logger drops them anyway.
  bool info_logs = true;
};

// For connections no Server consumes: what the core says about one frame on its own. A ping
// gets a pong; a frame that is not a valid Teleportal message gets a NACK and an error text.
struct FrameVerdict {
  Bytes reply;        // empty: nothing to send
  std::string error;  // empty: the frame is valid
};
FrameVerdict inspect_frame(ByteView frame);

// The storage key of a document: the room with '%' and '/' escaped, '/', the document name.
// Unambiguous: ("a", "b/c") -> "a/b/c" and ("a/b", "c") -> "a%2Fb/c"; no room -> "/name".
std::string session_key(std::string_view room, std::string_view document);

struct DocumentSession;
class IdSource;
struct MilestoneJob;

// A milestone as MilestoneStorage.loadMilestones returns it.
struct StoredMilestone {
  std::string id;
  ByteView meta;
};

class Server {
 public:
  explicit Server(ServerConfig config = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // A connection joins. `context` must be a JSON object (userId, room, documentAccess, exp, ...).
  // In token mode a context without documentAccess but with a `token` is verified here. Outputs
  // (a 4401 close for an already expired token, logs) go to `out`.
  ClientHandle open(std::string id, nlohmann::json context, double now_ms, Outputs& out);
  // One frame from a client.
  Outputs message(ClientHandle client, ByteView frame);
  // The connection is gone: leaves every session (presence-leave to the others). Idempotent.
  Outputs close(ClientHandle client);

  // Makes a restored connection (a socket woken after hibernation) a member of `document` again,
  // as a JoinOutput once said, so that it keeps receiving relays without sending anything first.
  // The permission is decided again (a client without read access is not re-joined); in
  // callback mode that is a PermissionOutput, and the answer (permission()) joins it.
  Outputs rejoin(ClientHandle client, const std::string& document);

  // Cluster mode: a pub/sub message from the document channel of `key` (another node's relay,
  // presence or heartbeat). Updates join the loaded state (storage is shared: not stored again).
  Outputs remote(const std::string& key, ByteView message);

  // Storage answers to a LoadOutput: the stored entries in order, or why the load failed.
  Outputs loaded(const std::string& key, const std::vector<ByteView>& entries);
  Outputs load_failed(const std::string& key, const std::string& error);
  // Everything accepted since the last flush, as one batch for the host to commit.
  Batch flush();
  // The host's answer for a batch: on success the updates are applied, relayed and acknowledged;
  // on failure every sender gets a NACK and nothing is relayed.
  Outputs committed(BatchId batch, bool ok, const std::string& error = {});
  // The application's decision for (client, document); resumes the client's queued frames.
  Outputs permission(ClientHandle client, const std::string& document, Access access);
  // Time passes: expired tokens close (4401), idle documents unload, RPC calls time out.
  Outputs tick(double now_ms);
  // The clock moves on without any other work (hosts call it before a frame whose handling reads
  // the clock: milestone times, time-based triggers). Never goes back.
  void advance_time(double now_ms);

  // Answers to an RpcCallOutput. Payloads are one lib0 `any` each; `encrypted` overrides the
  // request's flag. Answers for a call that is gone (client disconnected, timed out) are dropped.
  Outputs rpc_stream(CallId call, ByteView payload, std::optional<bool> encrypted = std::nullopt);
  Outputs rpc_response(CallId call, ByteView payload, std::optional<bool> encrypted = std::nullopt);
  Outputs rpc_error(CallId call, std::uint64_t status, const std::string& details,
                    std::optional<ByteView> payload = std::nullopt);
  Outputs rpc_done(CallId call);

  // Answers to MilestoneLoadOutput and MilestoneStoreOutput. For a snapshot op, `snapshot` is the
  // stored snapshot (nullopt: none stored).
  Outputs milestones_loaded(const std::string& key, const std::vector<StoredMilestone>& milestones);
  Outputs milestones_load_failed(const std::string& key, const std::string& error);
  Outputs milestone_done(std::uint32_t op, bool ok, const std::string& error = {},
                         std::optional<ByteView> snapshot = std::nullopt);
  // Random bytes used for the next milestone ids before the seeded generator (tests pin ids).
  void supply_random(ByteView bytes);
  // When tick() next has something to do (ms since the epoch), or nullopt.
  std::optional<double> next_deadline() const;

  // Compaction for DocumentStorage.compact: stored entries -> one entry. Invalid entries are
  // skipped (reported in `out`).
  Result<Bytes> merge_entries(const std::vector<ByteView>& entries, Outputs& out) const;

  std::size_t client_count() const { return clients_.size(); }
  std::size_t session_count() const { return sessions_.size(); }
  // The merged V2 structure update of a loaded document, empty when none.
  Bytes document_state(const std::string& key);
  // What the core decided so far, as counters (metrics.hpp).
  const Metrics& metrics() const { return metrics_; }

 private:
  struct Client;
  struct Turn;  // the message being processed: sender, its client, the outputs
  struct Staged;
  struct StagedBatch;
  struct Group;

  // `charge`: take a rate token (not for frames re-delivered after a load or a permission answer).
  void deliver(Outputs& out, ClientHandle handle, Client& client, ByteView frame, bool charge = true);
  void handle_message(Turn& t, const protocol::Message& m, ByteView frame);
  Access access_of(Turn& t, const std::string& document, ByteView frame, bool& asked);
  void deny(Turn& t, const protocol::Message& m, const char* why);
  DocumentSession* session_for(Turn& t, const protocol::Message& m);
  bool join(Turn& t, DocumentSession& s, const protocol::Message& m);
  void apply(Turn& t, DocumentSession& s, const protocol::Message& m, ByteView frame);
  void on_doc(Turn& t, DocumentSession& s, const protocol::Message& m, ByteView frame);
  void on_auth(Turn& t, const protocol::Message& m);
  void on_presence(Turn& t, DocumentSession& s, const protocol::Message& m);
  bool on_rpc(Turn& t, DocumentSession* s, const protocol::Message& m);
  void start_call(Turn& t, DocumentSession* s, const protocol::Message& m, bool stream);
  void send_rpc(Outputs& out, ClientHandle to, const std::string& document, bool encrypted, const std::string& method,
                protocol::RpcRequestType type, const std::string& request_id, std::variant<protocol::RpcSuccess, protocol::RpcError> result);
  const RpcMethodConfig* app_method(const std::string& name) const;
  void run_milestones(Outputs& out, DocumentSession& s);
  void decide_milestone(Outputs& out, DocumentSession& s, MilestoneJob& job);
  void count_write(DocumentSession& s, bool& fired, std::optional<std::string>& name);
  void automatic_milestone(Outputs& out, DocumentSession& s, std::optional<std::string> name);
  bool busy(const DocumentSession& s) const;
  void count_group(Outputs& out, StagedBatch& b, Group& g);
  bool connected(ClientHandle c) const;
  void expire_calls(Outputs& out);
  bool relay_fast(Outputs& out, ClientHandle handle, Client& client, const protocol::FrameView& v, ByteView frame);
  void stage_update(Outputs& out, DocumentSession& s, ClientHandle sender, ByteView frame, ByteView data, bool step2,
                    const Client& client);
  void stage(StagedBatch& b, DocumentSession& s, ClientHandle sender, ByteView frame, ByteView structure,
             bool step2, bool empty);
  void group(StagedBatch& b);
  bool coalesce_group(StagedBatch& b, Group& g);
  void accept_group(Outputs& out, StagedBatch& b, Group& g);
  void accept_update(Outputs& out, DocumentSession& s, StagedBatch& b, Staged& st);
  void relay_coalesced(Outputs& out, DocumentSession& s, StagedBatch& b, Group& g);
  void after_accept(Outputs& out, DocumentSession& s);
  std::unique_ptr<StagedBatch> new_batch();
  void relay(Outputs& out, DocumentSession& s, ClientHandle except, ByteView frame, bool cluster = true);
  void publish(Outputs& out, const std::string& key, ClientHandle except, ByteView frame, bool local, bool cluster);
  void set_reading(Outputs& out, DocumentSession& s, ClientHandle c, bool reading);
  void rejoin_session(Turn& t, const std::string& document);
  static protocol::Message rejoin_message(const std::string& document);
  std::uint32_t topic_of(const std::string& key) const;
  void on_remote_presence(Outputs& out, DocumentSession& s, const std::string& node, const protocol::Message& m);
  void presence_tick(Outputs& out);
  void leave(Outputs& out, ClientHandle c, DocumentSession& s);
  void maybe_unload(Outputs& out, DocumentSession& s);
  Result<Bytes> materialize(DocumentSession& s);
  Access decide_token_access(const Client& c, const std::string& document) const;
  void adopt_claims(Client& c, nlohmann::json claims);
  void refuse_document(Turn& t, const protocol::Message& m);
  void resume_client(Outputs& out, ClientHandle handle);

  // Counts the frames, acks, closes and errors in out[from..] (each public call's outputs, once).
  void count(const Outputs& out, std::size_t from = 0);

  ServerConfig config_;
  Metrics metrics_;
  double now_ms_ = 0;
  double last_heartbeat_ms_ = 0;
  double last_refill_ms_ = -1;
  struct Bucket {
    double tokens = 0;
    std::uint32_t connections = 0;
  };
  std::unordered_map<std::string, Bucket> users_;  // rate buckets by userId
  bool take_token(Client& c);
  void refill(double elapsed_ms);
  ClientHandle next_handle_ = 1;
  BatchId next_batch_ = 1;
  std::unordered_map<ClientHandle, std::unique_ptr<Client>> clients_;
  std::map<std::string, std::unique_ptr<DocumentSession>> sessions_;
  std::unique_ptr<StagedBatch> open_batch_;
  std::map<BatchId, std::unique_ptr<StagedBatch>> in_flight_;
  std::vector<std::unique_ptr<StagedBatch>> spare_batches_;  // committed batches, kept for reuse
  // Bumped whenever a session goes away or a client's decisions or memberships change: the
  // per-client cache of the last document (Client::last) is valid only for the current value.
  std::uint64_t epoch_ = 1;
  std::uint64_t group_tag_ = 0;  // marks sessions already grouped by the batch being grouped
  std::uint32_t next_topic_ = 1;
  // RPC calls the host is running, and milestone storage operations out.
  struct PendingCall;
  struct PendingOp;
  std::map<CallId, PendingCall> calls_;
  CallId next_call_ = 1;
  std::map<std::uint32_t, PendingOp> ops_;
  std::uint32_t next_op_ = 1;
  std::unique_ptr<IdSource> ids_;
};

}  // namespace tp::server
