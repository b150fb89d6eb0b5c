// Teleportal frame codec (spec section 1): the message model, decode/encode for the five message
// types, the message id, ping/pong and the detection helpers. Byte tables and the error-code table
// are in README.md next to this header.
//
// Decoding accepts exactly what the reference decoder accepts (spec 1.9: non-canonical flags,
// trailing bytes, ...) and rejects what it rejects, but never reads outside the frame.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"
#include "tp/lib0/any.hpp"

namespace tp::protocol {

constexpr std::array<std::uint8_t, 3> kMagic{0x59, 0x4a, 0x53};  // "YJS"
constexpr std::uint8_t kProtocolVersion = 0x01;

enum class MessageType : std::uint8_t { doc = 0, awareness = 1, ack = 2, presence = 3, rpc = 4 };
enum class DocSubtype : std::uint8_t {
  sync_step_1 = 0,
  sync_step_2 = 1,
  update = 2,
  sync_done = 3,
  auth_message = 4,
};
enum class AwarenessSubtype : std::uint8_t { update = 0, request = 1 };
enum class PresenceSubtype : std::uint8_t {
  announce = 0,
  join = 1,
  leave = 2,
  heartbeat = 3,
  unannounce = 4,
};
enum class RpcRequestType : std::uint8_t { request = 0, stream = 1, response = 2 };
enum class Permission : std::uint8_t { denied = 0, allowed = 1 };
// Ack flag bits; other bits are ignored on decode.
constexpr std::uint8_t kAckFlagRetryAfter = 0x01;
constexpr std::uint8_t kAckFlagError = 0x02;

// ---- doc (type 0) ------------------------------------------------------------------------------
struct SyncStep1 {
  Bytes state_vector;
};
// `version` is the update-version byte (1 = V1, 2 = V2 update); any value decodes. Real clients and
// storage put a content-encrypted envelope (envelope.hpp) in `data` with version 2.
struct SyncStep2 {
  std::uint8_t version = 2;
  Bytes data;
};
struct DocUpdate {
  std::uint8_t version = 2;
  Bytes data;
};
struct SyncDone {};
struct AuthMessage {
  Permission permission = Permission::denied;
  std::string reason;
};

// ---- awareness (type 1) ------------------------------------------------------------------------
struct AwarenessUpdate {
  Bytes update;  // y-protocols awareness update, opaque to the server
};
struct AwarenessRequest {};

// ---- ack (type 2): the header's document and encrypted flag are ignored (decoded as "", false) --
struct Ack {
  std::string message_id;
  std::optional<std::uint64_t> retry_after;  // milliseconds; retryable NACK
  std::optional<std::string> error;          // permanent NACK
};

// ---- presence (type 3): the encrypted flag is ignored (decoded false, encoded 0) -----------------
struct PresenceClient {
  std::uint64_t awareness_id = 0;
  std::string client_id;
  std::string user_id;
  lib0::Any data = lib0::Any::object();  // an object, or (reference quirk) a byte array
};
struct PresenceAnnounce {
  std::uint64_t awareness_id = 0;
};
struct PresenceJoin {
  PresenceClient client;
};
struct PresenceLeave {
  PresenceClient client;
};
struct PresenceHeartbeat {
  std::vector<PresenceClient> clients;
};
struct PresenceUnannounce {
  std::uint64_t awareness_id = 0;
};

// ---- rpc (type 4) ------------------------------------------------------------------------------
struct RpcSuccess {
  lib0::Any payload;  // the `any` at the start of the payload bytes
};
struct RpcError {
  std::uint64_t status_code = 0;
  std::string details;
  lib0::Any payload;  // undefined when absent; the encoder writes it only if not undefined/null
};
struct Rpc {
  std::string method;
  RpcRequestType request_type = RpcRequestType::request;
  std::optional<std::string> original_request_id;  // required for stream/response
  std::variant<RpcSuccess, RpcError> result;
};

// One alternative per (type, sub-type); see `message_type()`.
using Payload =
    std::variant<SyncStep1, SyncStep2, DocUpdate, SyncDone, AuthMessage,           // doc
                 AwarenessUpdate, AwarenessRequest,                                // awareness
                 Ack,                                                              // ack
                 PresenceAnnounce, PresenceJoin, PresenceLeave, PresenceHeartbeat,  // presence
                 PresenceUnannounce, Rpc>;

MessageType message_type(const Payload& p);
// Teleportal's payload type name: "sync-step-1", "awareness-update", "ack", "presence-join", ...
// For rpc: "success" or "error".
const char* payload_type_name(const Payload& p);
const char* to_string(MessageType t);  // "doc", "awareness", "ack", "presence", "rpc"

struct Message {
  std::string document;  // "" for ack
  bool encrypted = false;
  Payload payload = SyncDone{};
  // Message id (16 hex chars). Set by decode_message: over the received bytes, or for an ack over
  // its canonical re-encoding (spec 1.8). Not used by encode_message.
  std::string id;

  MessageType type() const { return message_type(payload); }
  template <class T>
  const T* get() const {
    return std::get_if<T>(&payload);
  }
  template <class T>
  bool is() const {
    return std::holds_alternative<T>(payload);
  }
};

// Decodes one frame. Error codes (README): bad_magic, bad_version, truncated, integer_out_of_range,
// length_out_of_range, invalid_utf8, unknown_message_type, unknown_subtype, bad_presence_subtype,
// bad_presence_data, bad_rpc_request_type, bad_any_tag, nesting_too_deep.
// Error::message is the reference's error chain joined with ": " (see error_chain).
Result<Message> decode_message(ByteView frame);

// Canonical encoding (encrypted 0/1, ack with empty document, presence with flag 0, ...).
// A stream/response RPC without original_request_id is written with "" (validate_message reports it).
Bytes encode_message(const Message& m);
// Checks what the reference encoder refuses (stream/response RPC without original request id).
std::optional<Error> validate_message(const Message& m);

// The two-lane 32-bit hash of spec 1.8 over `bytes`, as 16 lowercase hex chars.
std::string message_id(ByteView bytes);
using MessageId = std::array<char, 16>;
MessageId message_id_chars(ByteView bytes);  // the same, without an allocation

// The ack frame (no flags) for a 16-character message id, written into `out`: kAckFrameSize bytes.
constexpr std::size_t kAckFrameSize = 25;
void write_ack_frame(const MessageId& id, std::uint8_t* out);

// What the relay path needs from a frame without a full decode: the header, and for a doc update
// or sync-step-2 its payload, as views into the frame. Accepts exactly what decode_message accepts
// for those messages (and for acks); anything else, or any decode problem, is nullopt (the caller
// then decodes fully, which also reports the error).
struct FrameView {
  std::string_view document;
  bool encrypted = false;
  MessageType type = MessageType::doc;
  bool step2 = false;  // doc: sync-step-2 (else an update)
  ByteView data;       // doc: the update's data (a content envelope)
};
std::optional<FrameView> peek_relay_frame(ByteView frame);

// The reference's error chain for an error from this module: the top-level message first
// (e.g. "Failed to decode update message: Failed to decode doc step"), the innermost reason last.
std::vector<std::string> error_chain(const Error& e);

// ---- ping / pong / detection (spec 1.7) ---------------------------------------------------------
ByteView ping_message();  // "YJSping", 7 bytes (static storage)
ByteView pong_message();  // "YJSpong"
bool is_ping_message(ByteView bytes);    // first 7 bytes are "YJSping" (longer frames count)
bool is_pong_message(ByteView bytes);    // first 7 bytes are "YJSpong"
bool is_binary_message(ByteView bytes);  // first 3 bytes are "YJS"

// ---- message array (HTTP/SSE batching) and pub/sub envelope -------------------------------------
// Concatenation of varUint8Array(frame). Decoding stops at the end; an element that is not a
// "YJS" frame fails with code "invalid_message" ("Invalid message").
Bytes encode_message_array(const std::vector<ByteView>& frames);
Result<std::vector<Message>> decode_message_array(ByteView bytes);
// Same, without decoding the elements (views into `bytes`).
Result<std::vector<ByteView>> split_message_array(ByteView bytes);

// varString(sourceId) followed by the raw frame (node-to-node only).
struct PubSubMessage {
  std::string source_id;
  ByteView message;  // view into the decoded buffer
};
Bytes encode_pubsub_message(ByteView frame, std::string_view source_id);
Result<PubSubMessage> decode_pubsub_message(ByteView bytes);

}  // namespace tp::protocol
