// The document server as a state machine: bytes and connection events in, actions out.
// No sockets, clocks or storage inside: the host carries out every Output (send a frame to some
// clients, close a client, log an event). Behaviour follows the reference server routing
// (teleportal-spec.md section 4) except for the bugs of section 6, which are fixed here:
//   - awareness and presence need read permission, and broadcasts only reach readers (item 1);
//   - an update must be a valid Y.js V2 update inside a valid envelope, or it is refused before it
//     is stored or relayed (item 2);
//   - an undecodable frame gets a NACK and the connection stays usable (item 4).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "tp/common/bytes.hpp"
#include "tp/protocol/message.hpp"

namespace tp::server {

using ClientHandle = std::uint32_t;

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
// Durable storage: `envelope` (a content-encrypted envelope: V2 structure update + sidecars) is
// appended to what is stored for `key`, or, when `replace` is set, replaces all of it (compaction).
struct PersistOutput {
  std::string key;       // session key (room-prefixed)
  std::string document;  // bare document name, needed to restore the session
  Bytes envelope;
  bool replace = false;
};
using Output = std::variant<SendOutput, CloseOutput, LogOutput, PersistOutput>;
using Outputs = std::vector<Output>;

enum class PermissionMode : std::uint8_t {
  none,   // every message is allowed (the reference without checkPermission)
  token,  // the connection context is a verified token payload: documentAccess decides
};

struct ServerConfig {
  PermissionMode permissions = PermissionMode::none;
  std::size_t max_message_size = 10 * 1024 * 1024;
  // Consecutive undecodable frames after which a connection is closed (1008).
  std::uint32_t max_invalid_frames = 64;
  // Emit PersistOutputs (only when the host has durable storage for them).
  bool persist = false;
  // Stored appends after which the next read also replaces the stored log with one merged entry.
  std::uint32_t compact_after = 32;
  // In-memory pending updates after which a write merges them (bounds memory between reads).
  std::uint32_t merge_after = 256;
};

// What the server keeps for one document (session key): the Y.js state and who is in it.
struct DocumentSession;

// For connections no Server consumes: what the core says about one frame on its own. A ping
// gets a pong; a frame that is not a valid Teleportal message gets a NACK and an error text.
struct FrameVerdict {
  Bytes reply;        // empty: nothing to send
  std::string error;  // empty: the frame is valid
};
FrameVerdict inspect_frame(ByteView frame);

class Server {
 public:
  explicit Server(ServerConfig config = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // A connection joins. `context` must be a JSON object (userId, room, documentAccess, ...).
  ClientHandle open(std::string id, nlohmann::json context);
  // One frame from a client; the outputs say what to send, close and log.
  Outputs message(ClientHandle client, ByteView frame);
  // The connection is gone: leaves every session (presence-leave to the others). Idempotent.
  Outputs close(ClientHandle client);

  std::size_t client_count() const { return clients_.size(); }
  std::size_t session_count() const { return sessions_.size(); }
  // The stored (merged) V2 structure update of a session key, empty when none.
  Bytes document_state(const std::string& key);
  // Seeds a document from durable storage (the envelopes PersistOutputs asked to store, in order)
  // before clients use it. Invalid entries are skipped and reported in the returned outputs.
  Outputs restore(const std::string& key, const std::string& document, const std::vector<ByteView>& envelopes);

 private:
  struct Client;
  struct Context;  // the message being processed: sender, outputs

  void handle_message(Context& cx, const protocol::Message& m, ByteView frame);
  bool permitted(Context& cx, const protocol::Message& m);
  DocumentSession* session_for(Context& cx, const protocol::Message& m);
  void join(Context& cx, DocumentSession& s);
  void on_doc(Context& cx, DocumentSession& s, const protocol::Message& m, ByteView frame);
  void on_presence(Context& cx, DocumentSession& s, const protocol::Message& m);
  void on_rpc(Context& cx, const protocol::Message& m);
  void relay(Context& cx, DocumentSession& s, ByteView frame);
  void leave(Outputs& out, ClientHandle c, DocumentSession& s);
  Result<Bytes> materialize(DocumentSession& s, Outputs& out);
  void send(Context& cx, const protocol::Message& m);
  void ack(Context& cx, const std::string& message_id);
  void nack(Context& cx, const std::string& message_id, const std::string& error);
  std::string session_key(const Client& c, const std::string& document) const;

  ServerConfig config_;
  ClientHandle next_handle_ = 1;
  std::unordered_map<ClientHandle, std::unique_ptr<Client>> clients_;
  std::map<std::string, std::unique_ptr<DocumentSession>> sessions_;
};

}  // namespace tp::server
