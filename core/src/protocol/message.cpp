#include "tp/protocol/message.hpp"

#include <cstring>

#include "tp/lib0/decoding.hpp"
#include "tp/lib0/encoding.hpp"

namespace tp::protocol {

namespace {

using lib0::Decoder;
using lib0::Encoder;

constexpr std::string_view kFramePrefix = "Failed to decode update message: ";
constexpr std::string_view kDocStep = "Failed to decode doc step";
constexpr std::string_view kAwarenessStep = "Failed to decode awareness step";
constexpr std::string_view kEnvelopePrefix = "Failed to decode content-encrypted payload: ";

// The reference's wording for a primitive failure (lib0 errors and the runtime's RangeError).
std::string reason_of(const Error& e) {
  if (e.code == "length_out_of_range") return "Length out of range of buffer";
  return e.message;
}

Error frame_error(const std::string& code, std::string_view inner) {
  return make_error(code, std::string(kFramePrefix) + std::string(inner));
}

// lib0's readUint8 does not bounds-check: past the end it yields `undefined`, which callers then
// compare. -1 stands for that `undefined` here; nothing is read outside the frame.
int read_u8_or_none(Decoder& d) { return d.has_more() ? d.read_u8() : -1; }

std::string read_string(Decoder& d) { return std::string(d.read_var_string_view()); }

// Each reader returns false with `err` set; decoder failures are converted by the caller.
struct BodyError {
  std::string code;
  std::string reason;
};

bool decode_doc(Decoder& d, Payload& out, BodyError& err) {
  const int sub = read_u8_or_none(d);
  switch (sub) {
    case 0:
      out = SyncStep1{d.read_var_bytes().to_bytes()};
      break;
    case 1:
    case 2: {
      const int version = read_u8_or_none(d);  // any value; a missing byte makes data fail below
      Bytes data = d.read_var_bytes().to_bytes();
      if (sub == 1) {
        out = SyncStep2{static_cast<std::uint8_t>(version), std::move(data)};
      } else {
        out = DocUpdate{static_cast<std::uint8_t>(version), std::move(data)};
      }
      break;
    }
    case 3:
      out = SyncDone{};
      break;
    case 4: {
      const int permission = read_u8_or_none(d);
      std::string reason = read_string(d);
      out = AuthMessage{permission == 0 ? Permission::denied : Permission::allowed, std::move(reason)};
      break;
    }
    default:
      err = {"unknown_subtype", "Failed to decode doc update, unexpected value"};
      return false;
  }
  return true;
}

bool decode_awareness(Decoder& d, Payload& out, BodyError& err) {
  const int sub = read_u8_or_none(d);
  if (sub == 0) {
    out = AwarenessUpdate{d.read_var_bytes().to_bytes()};
  } else if (sub == 1) {
    out = AwarenessRequest{};
  } else {
    err = {"unknown_subtype", "Failed to decode doc update, unexpected value"};  // sic: reference
    return false;
  }
  return true;
}

void decode_ack(Decoder& d, Payload& out) {
  Ack ack;
  ack.message_id = read_string(d);
  const int flags_or_none = read_u8_or_none(d);
  const int flags = flags_or_none < 0 ? 0 : flags_or_none;
  if (flags & kAckFlagRetryAfter) ack.retry_after = d.read_var_uint();
  if (flags & kAckFlagError) ack.error = read_string(d);
  out = std::move(ack);
}

// Presence data must be a non-null, non-array object; a byte array passes the reference's
// `typeof === "object"` check too.
bool read_presence_client(Decoder& d, PresenceClient& c, BodyError& err) {
  c.awareness_id = d.read_var_uint();
  c.client_id = read_string(d);
  c.user_id = read_string(d);
  c.data = lib0::read_any(d);
  if (!d.ok()) return true;  // decoder error reported by the caller
  const lib0::AnyKind k = c.data.kind();
  if (k != lib0::AnyKind::object && k != lib0::AnyKind::bytes) {
    err = {"bad_presence_data", "Invalid presence data: expected an object"};
    return false;
  }
  return true;
}

bool decode_presence(Decoder& d, Payload& out, BodyError& err) {
  const int sub = read_u8_or_none(d);
  switch (sub) {
    case static_cast<int>(PresenceSubtype::announce):
      out = PresenceAnnounce{d.read_var_uint()};
      return true;
    case static_cast<int>(PresenceSubtype::unannounce):
      out = PresenceUnannounce{d.read_var_uint()};
      return true;
    case static_cast<int>(PresenceSubtype::join):
    case static_cast<int>(PresenceSubtype::leave): {
      PresenceClient c;
      if (!read_presence_client(d, c, err)) return false;
      if (sub == static_cast<int>(PresenceSubtype::join)) {
        out = PresenceJoin{std::move(c)};
      } else {
        out = PresenceLeave{std::move(c)};
      }
      return true;
    }
    case static_cast<int>(PresenceSubtype::heartbeat): {
      // No reserve from the declared count: each client consumes bytes or fails.
      const std::uint64_t n = d.read_var_uint();
      PresenceHeartbeat hb;
      for (std::uint64_t i = 0; i < n && d.ok(); ++i) {
        PresenceClient c;
        if (!read_presence_client(d, c, err)) return false;
        if (d.ok()) hb.clients.push_back(std::move(c));
      }
      out = std::move(hb);
      return true;
    }
    default:
      err = {"bad_presence_subtype", "Invalid presence sub-type"};
      return false;
  }
}

bool decode_rpc(Decoder& d, Payload& out, BodyError& err) {
  Rpc rpc;
  rpc.method = read_string(d);
  if (!d.ok()) return true;
  const int request_type = read_u8_or_none(d);
  if (request_type < 0 || request_type > 2) {
    err = {"bad_rpc_request_type", "Invalid RPC request type"};
    return false;
  }
  rpc.request_type = static_cast<RpcRequestType>(request_type);
  if (rpc.request_type != RpcRequestType::request) rpc.original_request_id = read_string(d);
  if (!d.ok()) return true;
  const int is_error = read_u8_or_none(d);  // only exactly 0 is success
  if (is_error == 0) {
    ByteView payload_bytes = d.read_var_bytes();
    if (!d.ok()) return true;
    Decoder inner(payload_bytes);  // bytes after the first value are ignored
    lib0::Any payload = lib0::read_any(inner);
    if (!inner.ok()) {
      err = {inner.error().code, reason_of(inner.error())};
      return false;
    }
    rpc.result = RpcSuccess{std::move(payload)};
  } else {
    RpcError e;
    e.status_code = d.read_var_uint();
    e.details = read_string(d);
    if (read_u8_or_none(d) == 1) e.payload = lib0::read_any(d);
    rpc.result = std::move(e);
  }
  out = std::move(rpc);
  return true;
}

void write_header(Encoder& e, std::string_view document, bool encrypted, MessageType type) {
  for (std::uint8_t b : kMagic) e.write_u8(b);
  e.write_u8(kProtocolVersion);
  e.write_var_string(document);
  e.write_u8(encrypted ? 1 : 0);
  e.write_u8(static_cast<std::uint8_t>(type));
}

void write_presence_client(Encoder& e, const PresenceClient& c) {
  e.write_var_uint(c.awareness_id);
  e.write_var_string(c.client_id);
  e.write_var_string(c.user_id);
  lib0::write_any(e, c.data);
}

template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

constexpr std::uint8_t kPing[7] = {0x59, 0x4a, 0x53, 0x70, 0x69, 0x6e, 0x67};
constexpr std::uint8_t kPong[7] = {0x59, 0x4a, 0x53, 0x70, 0x6f, 0x6e, 0x67};

bool has_prefix(ByteView bytes, const std::uint8_t* prefix, std::size_t n) {
  if (bytes.size < n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != prefix[i]) return false;
  }
  return true;
}

}  // namespace

// ---- type names ----------------------------------------------------------------------------------

MessageType message_type(const Payload& p) {
  switch (p.index()) {
    case 0: case 1: case 2: case 3: case 4:
      return MessageType::doc;
    case 5: case 6:
      return MessageType::awareness;
    case 7:
      return MessageType::ack;
    case 8: case 9: case 10: case 11: case 12:
      return MessageType::presence;
    default:
      return MessageType::rpc;
  }
}

const char* to_string(MessageType t) {
  switch (t) {
    case MessageType::doc: return "doc";
    case MessageType::awareness: return "awareness";
    case MessageType::ack: return "ack";
    case MessageType::presence: return "presence";
    case MessageType::rpc: return "rpc";
  }
  return "unknown";
}

const char* payload_type_name(const Payload& p) {
  static const char* const names[] = {
      "sync-step-1",       "sync-step-2",   "update",          "sync-done",
      "auth-message",      "awareness-update", "awareness-request", "ack",
      "presence-announce", "presence-join", "presence-leave",  "presence-heartbeat",
      "presence-unannounce"};
  if (const Rpc* rpc = std::get_if<Rpc>(&p)) {
    return std::holds_alternative<RpcSuccess>(rpc->result) ? "success" : "error";
  }
  return names[p.index()];
}

// ---- decode ------------------------------------------------------------------------------------

Result<Message> decode_message(ByteView frame) {
  Decoder d(frame);
  const int y = read_u8_or_none(d), j = read_u8_or_none(d), s = read_u8_or_none(d);
  if (y != kMagic[0] || j != kMagic[1] || s != kMagic[2]) {
    return frame_error("bad_magic", "Invalid magic number");
  }
  if (read_u8_or_none(d) != kProtocolVersion) return frame_error("bad_version", "Invalid version");

  Message m;
  m.document = read_string(d);
  if (!d.ok()) return frame_error(d.error().code, reason_of(d.error()));
  m.encrypted = read_u8_or_none(d) == 1;
  const int type = read_u8_or_none(d);

  BodyError body;
  bool body_ok = true;
  std::string_view step;  // doc and awareness bodies add a wrapper to the error chain
  switch (type) {
    case static_cast<int>(MessageType::doc):
      step = kDocStep;
      body_ok = decode_doc(d, m.payload, body);
      break;
    case static_cast<int>(MessageType::awareness):
      step = kAwarenessStep;
      body_ok = decode_awareness(d, m.payload, body);
      break;
    case static_cast<int>(MessageType::ack):
      decode_ack(d, m.payload);
      break;
    case static_cast<int>(MessageType::presence):
      body_ok = decode_presence(d, m.payload, body);
      break;
    case static_cast<int>(MessageType::rpc):
      body_ok = decode_rpc(d, m.payload, body);
      break;
    default:
      return frame_error("unknown_message_type", "Invalid target type");
  }
  if (body_ok && !d.ok()) body = {d.error().code, reason_of(d.error())};
  if (!body_ok || !d.ok()) {
    if (step.empty()) return frame_error(body.code, body.reason);
    return frame_error(body.code, std::string(step) + ": " + body.reason);
  }

  const MessageType t = m.type();
  if (t == MessageType::ack) {
    // The decoded ack forgets the header's document and flag; its id is over the canonical form.
    m.document.clear();
    m.encrypted = false;
    m.id = message_id(encode_message(m));
  } else {
    if (t == MessageType::presence) m.encrypted = false;
    m.id = message_id(frame);
  }
  return m;
}

// ---- encode ------------------------------------------------------------------------------------

Bytes encode_message(const Message& m) {
  const MessageType type = m.type();
  const bool is_ack = type == MessageType::ack;
  const bool encrypted = m.encrypted && !is_ack && type != MessageType::presence;
  Encoder e(16 + m.document.size());
  write_header(e, is_ack ? std::string_view() : std::string_view(m.document), encrypted, type);
  std::visit(
      overloaded{
          [&](const SyncStep1& p) {
            e.write_u8(0);
            e.write_var_bytes(p.state_vector);
          },
          [&](const SyncStep2& p) {
            e.write_u8(1);
            e.write_u8(p.version);
            e.write_var_bytes(p.data);
          },
          [&](const DocUpdate& p) {
            e.write_u8(2);
            e.write_u8(p.version);
            e.write_var_bytes(p.data);
          },
          [&](const SyncDone&) { e.write_u8(3); },
          [&](const AuthMessage& p) {
            e.write_u8(4);
            e.write_u8(p.permission == Permission::denied ? 0 : 1);
            e.write_var_string(p.reason);
          },
          [&](const AwarenessUpdate& p) {
            e.write_u8(0);
            e.write_var_bytes(p.update);
          },
          [&](const AwarenessRequest&) { e.write_u8(1); },
          [&](const Ack& p) {
            e.write_var_string(p.message_id);
            std::uint8_t flags = 0;
            if (p.retry_after) flags |= kAckFlagRetryAfter;
            if (p.error) flags |= kAckFlagError;
            e.write_u8(flags);
            if (p.retry_after) e.write_var_uint(*p.retry_after);
            if (p.error) e.write_var_string(*p.error);
          },
          [&](const PresenceAnnounce& p) {
            e.write_u8(0);
            e.write_var_uint(p.awareness_id);
          },
          [&](const PresenceJoin& p) {
            e.write_u8(1);
            write_presence_client(e, p.client);
          },
          [&](const PresenceLeave& p) {
            e.write_u8(2);
            write_presence_client(e, p.client);
          },
          [&](const PresenceHeartbeat& p) {
            e.write_u8(3);
            e.write_var_uint(p.clients.size());
            for (const PresenceClient& c : p.clients) write_presence_client(e, c);
          },
          [&](const PresenceUnannounce& p) {
            e.write_u8(4);
            e.write_var_uint(p.awareness_id);
          },
          [&](const Rpc& p) {
            e.write_var_string(p.method);
            e.write_u8(static_cast<std::uint8_t>(p.request_type));
            if (p.request_type != RpcRequestType::request) {
              e.write_var_string(p.original_request_id ? *p.original_request_id : std::string());
            }
            if (const RpcSuccess* ok = std::get_if<RpcSuccess>(&p.result)) {
              e.write_u8(0);
              e.write_var_bytes(lib0::encode_any(ok->payload));
            } else {
              const RpcError& err = std::get<RpcError>(p.result);
              e.write_u8(1);
              e.write_var_uint(err.status_code);
              e.write_var_string(err.details);
              const bool has_payload = !err.payload.is_undefined() && !err.payload.is_null();
              e.write_u8(has_payload ? 1 : 0);
              if (has_payload) lib0::write_any(e, err.payload);
            }
          },
      },
      m.payload);
  return e.take();
}

std::optional<Error> validate_message(const Message& m) {
  if (const Rpc* rpc = m.get<Rpc>()) {
    if (rpc->request_type != RpcRequestType::request && !rpc->original_request_id) {
      return make_error("missing_original_request_id",
                        "originalRequestId is required for RPC stream and response messages");
    }
  }
  return std::nullopt;
}

// ---- message id --------------------------------------------------------------------------------

MessageId message_id_chars(ByteView bytes) {
  std::uint32_t h1 = 0x811c9dc5u;
  std::uint32_t h2 = 0x01000193u;
  for (std::uint8_t b : bytes) {
    h1 = (h1 ^ b) * 0x01000193u;
    h2 = (h2 ^ b) * 0x100001b3u;
  }
  static const char digits[] = "0123456789abcdef";
  MessageId out{};
  for (int i = 0; i < 8; ++i) {
    out[7 - i] = digits[(h1 >> (4 * i)) & 15];
    out[15 - i] = digits[(h2 >> (4 * i)) & 15];
  }
  return out;
}

std::string message_id(ByteView bytes) {
  MessageId id = message_id_chars(bytes);
  return std::string(id.data(), id.size());
}

void write_ack_frame(const MessageId& id, std::uint8_t* out) {
  // header (empty document, not encrypted, type ack), vs(id), flags 0
  const std::uint8_t head[] = {kMagic[0], kMagic[1], kMagic[2], kProtocolVersion, 0, 0,
                               static_cast<std::uint8_t>(MessageType::ack), 16};
  std::memcpy(out, head, sizeof head);
  std::memcpy(out + sizeof head, id.data(), id.size());
  out[kAckFrameSize - 1] = 0;
}

std::optional<FrameView> peek_relay_frame(ByteView frame) {
  Decoder d(frame);
  if (frame.size < 4 || frame[0] != kMagic[0] || frame[1] != kMagic[1] || frame[2] != kMagic[2] ||
      frame[3] != kProtocolVersion) {
    return std::nullopt;
  }
  d.read_raw(4);
  FrameView v;
  v.document = d.read_var_string_view();
  v.encrypted = read_u8_or_none(d) == 1;
  const int type = read_u8_or_none(d);
  if (type == static_cast<int>(MessageType::ack)) {
    // as decode_ack: id, optional flags, then what the flags announce
    d.read_var_string_view();
    const int flags = read_u8_or_none(d);
    if (flags > 0 && (flags & kAckFlagRetryAfter)) d.read_var_uint();
    if (flags > 0 && (flags & kAckFlagError)) d.read_var_string_view();
    if (!d.ok()) return std::nullopt;
    v.type = MessageType::ack;
    v.document = {};
    v.encrypted = false;
    return v;
  }
  if (type != static_cast<int>(MessageType::doc)) return std::nullopt;
  const int sub = read_u8_or_none(d);
  if (sub != 1 && sub != 2) return std::nullopt;
  if (read_u8_or_none(d) < 0) return std::nullopt;  // the update-version byte (any value)
  v.step2 = sub == 1;
  v.data = d.read_var_bytes();
  if (!d.ok()) return std::nullopt;
  return v;
}

// ---- error chain -------------------------------------------------------------------------------

std::vector<std::string> error_chain(const Error& e) {
  const std::string& msg = e.message;
  auto starts = [&](std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; };
  if (starts(msg, kFramePrefix)) {
    std::string_view rest = std::string_view(msg).substr(kFramePrefix.size());
    for (std::string_view step : {kDocStep, kAwarenessStep}) {
      if (starts(rest, step) && rest.size() > step.size() + 2) {
        return {std::string(kFramePrefix) + std::string(step), std::string(step),
                std::string(rest.substr(step.size() + 2))};
      }
    }
    return {msg, std::string(rest)};
  }
  if (starts(msg, kEnvelopePrefix)) {
    std::string top(kEnvelopePrefix.substr(0, kEnvelopePrefix.size() - 2));
    return {top, msg.substr(kEnvelopePrefix.size())};
  }
  return {msg};
}

// ---- ping / pong / detection -------------------------------------------------------------------

ByteView ping_message() { return ByteView(kPing, sizeof kPing); }
ByteView pong_message() { return ByteView(kPong, sizeof kPong); }
bool is_ping_message(ByteView bytes) { return has_prefix(bytes, kPing, sizeof kPing); }
bool is_pong_message(ByteView bytes) { return has_prefix(bytes, kPong, sizeof kPong); }
bool is_binary_message(ByteView bytes) { return has_prefix(bytes, kMagic.data(), kMagic.size()); }

// ---- message array / pub-sub -------------------------------------------------------------------

Bytes encode_message_array(const std::vector<ByteView>& frames) {
  Encoder e;
  for (ByteView f : frames) e.write_var_bytes(f);
  return e.take();
}

namespace {
// Reads the next element; returns false at the end of input or on error (err set).
bool next_element(Decoder& d, ByteView& element, std::optional<Error>& err) {
  if (!d.has_more()) return false;
  element = d.read_var_bytes();
  if (!d.ok()) {
    err = make_error(d.error().code, reason_of(d.error()));
    return false;
  }
  if (!is_binary_message(element)) {
    err = make_error("invalid_message", "Invalid message");
    return false;
  }
  return true;
}
}  // namespace

Result<std::vector<ByteView>> split_message_array(ByteView bytes) {
  Decoder d(bytes);
  std::vector<ByteView> out;
  std::optional<Error> err;
  ByteView element;
  while (next_element(d, element, err)) out.push_back(element);
  if (err) return *err;
  return out;
}

Result<std::vector<Message>> decode_message_array(ByteView bytes) {
  Decoder d(bytes);
  std::vector<Message> out;
  std::optional<Error> err;
  ByteView element;
  while (next_element(d, element, err)) {
    Result<Message> m = decode_message(element);
    if (!m) return m.error();
    out.push_back(std::move(m).value());
  }
  if (err) return *err;
  return out;
}

Bytes encode_pubsub_message(ByteView frame, std::string_view source_id) {
  Encoder e(frame.size + source_id.size() + 5);
  e.write_var_string(source_id);
  e.write_raw(frame);
  return e.take();
}

Result<PubSubMessage> decode_pubsub_message(ByteView bytes) {
  Decoder d(bytes);
  PubSubMessage out;
  out.source_id = read_string(d);
  if (!d.ok()) return make_error(d.error().code, reason_of(d.error()));
  out.message = d.rest();
  return out;
}

}  // namespace tp::protocol
