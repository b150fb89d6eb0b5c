#include "tp/server/server.hpp"

#include <algorithm>

#include "tp/protocol/envelope.hpp"
#include "tp/token/access.hpp"
#include "tp/yjs/updates.hpp"

namespace tp::server {

using protocol::Message;

// Presence roster entry: one announced awareness id of one client.
struct PresenceEntry {
  ClientHandle client;
  std::uint64_t awareness_id;
};

// The awareness ids each client announced, as the reference's Map<client, Map<id, ...>>: clients in
// first-announce order, ids in announce order (re-announcing keeps a position).
struct Roster {
  std::vector<std::pair<ClientHandle, std::vector<std::uint64_t>>> by_client;

  std::vector<std::uint64_t>* ids_of(ClientHandle c) {
    for (auto& [client, ids] : by_client) {
      if (client == c) return &ids;
    }
    return nullptr;
  }
  bool holds_any(ClientHandle c) {
    auto* ids = ids_of(c);
    return ids && !ids->empty();
  }
  // Moves `id` to `c` (silently taking it from whoever held it).
  void announce(ClientHandle c, std::uint64_t id) {
    for (auto& [client, ids] : by_client) {
      if (client != c) ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    }
    auto* mine = ids_of(c);
    if (!mine) mine = &by_client.emplace_back(c, std::vector<std::uint64_t>{}).second;
    if (std::find(mine->begin(), mine->end(), id) == mine->end()) mine->push_back(id);
  }
  bool unannounce(ClientHandle c, std::uint64_t id) {
    auto* ids = ids_of(c);
    if (!ids) return false;
    auto it = std::find(ids->begin(), ids->end(), id);
    if (it == ids->end()) return false;
    ids->erase(it);
    return true;
  }
  std::vector<PresenceEntry> entries() const {
    std::vector<PresenceEntry> out;
    for (const auto& [client, ids] : by_client) {
      for (auto id : ids) out.push_back({client, id});
    }
    return out;
  }
  std::vector<std::uint64_t> remove_client(ClientHandle c) {
    std::vector<std::uint64_t> gone;
    for (auto it = by_client.begin(); it != by_client.end(); ++it) {
      if (it->first == c) {
        gone = std::move(it->second);
        by_client.erase(it);
        break;
      }
    }
    return gone;
  }
};

struct DocumentSession {
  std::string key;
  std::string document;  // bare name, as clients see it
  bool encrypted = false;
  bool tentative = true;  // fixed by the first doc/awareness message (spec 4.3)
  struct Member {
    ClientHandle client;
    bool can_read;
  };
  std::vector<Member> members;         // join order
  Roster roster;
  std::vector<Bytes> pending;          // V2 structure updates not merged yet
  std::vector<Bytes> sidecars;         // encrypted documents: opaque sidecars, in arrival order
  std::uint32_t stored_appends = 0;    // PersistOutputs appended since the last replace

  bool has_member(ClientHandle c) const {
    return std::any_of(members.begin(), members.end(), [&](const Member& m) { return m.client == c; });
  }
};

struct Server::Client {
  std::string id;
  nlohmann::json context;
  std::string room;     // "" when the context has no non-empty string room
  std::string user_id;  // "" when absent
  std::vector<std::string> sessions;  // keys joined, in order
  std::uint32_t invalid_frames = 0;
};

struct Server::Context {
  ClientHandle sender;
  Client& client;
  Outputs& out;
};

namespace {

// A frame that is not ping/pong: its message, or why it is not a valid Teleportal message.
Result<Message> decode_frame(ByteView frame) {
  if (!protocol::is_binary_message(frame)) {
    return make_error("not_teleportal", "Invalid message: not a Teleportal frame (no YJS magic)");
  }
  return protocol::decode_message(frame);
}

std::string string_field(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return {};
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

Message doc_message(const DocumentSession& s, protocol::Payload payload) {
  Message m;
  m.document = s.document;
  m.encrypted = s.encrypted;
  m.payload = std::move(payload);
  return m;
}

bool is_authoritative(const Message& m) {
  auto t = m.type();
  return t == protocol::MessageType::doc || t == protocol::MessageType::awareness;
}

// What a message needs (spec 2.4, with awareness and presence fixed to need read).
const char* required_permission(const Message& m) {
  using protocol::MessageType;
  switch (m.type()) {
    case MessageType::doc:
      if (m.is<protocol::SyncStep2>() || m.is<protocol::DocUpdate>()) return "write";
      if (m.is<protocol::AuthMessage>()) return nullptr;  // clients may not send these
      return "read";
    case MessageType::awareness:
    case MessageType::presence:
      return "read";
    case MessageType::rpc: {
      static const char* writers[] = {"milestoneCreate", "milestoneUpdateName", "milestoneDelete",
                                      "milestoneRestore", "fileUpload"};
      const auto& method = m.get<protocol::Rpc>()->method;
      for (const char* w : writers) {
        if (method == w) return "write";
      }
      return "read";
    }
    case MessageType::ack:
      return "";
  }
  return nullptr;
}

}  // namespace

Server::Server(ServerConfig config) : config_(config) {}
Server::~Server() = default;

ClientHandle Server::open(std::string id, nlohmann::json context) {
  auto c = std::make_unique<Client>();
  c->id = std::move(id);
  c->room = string_field(context, "room");
  c->user_id = string_field(context, "userId");
  c->context = std::move(context);
  ClientHandle h = next_handle_++;
  clients_.emplace(h, std::move(c));
  return h;
}

std::string Server::session_key(const Client& c, const std::string& document) const {
  return c.room.empty() ? document : c.room + "/" + document;
}

void Server::send(Context& cx, const Message& m) {
  cx.out.push_back(SendOutput{{cx.sender}, protocol::encode_message(m)});
}

void Server::ack(Context& cx, const std::string& message_id) {
  Message m;
  m.payload = protocol::Ack{message_id, std::nullopt, std::nullopt};
  send(cx, m);
}

void Server::nack(Context& cx, const std::string& message_id, const std::string& error) {
  Message m;
  m.payload = protocol::Ack{message_id, std::nullopt, error};
  send(cx, m);
}

Outputs Server::message(ClientHandle handle, ByteView frame) {
  Outputs out;
  auto it = clients_.find(handle);
  if (it == clients_.end()) return out;  // closed already: late frames are dropped
  Context cx{handle, *it->second, out};

  if (protocol::is_ping_message(frame)) {
    out.push_back(SendOutput{{handle}, protocol::pong_message().to_bytes()});
    return out;
  }
  if (protocol::is_pong_message(frame)) return out;

  if (frame.size > config_.max_message_size) {
    nack(cx, protocol::message_id(frame),
         "message-too-large: " + std::to_string(frame.size) + " > " +
             std::to_string(config_.max_message_size) + " bytes");
    return out;
  }

  auto decoded = decode_frame(frame);
  if (!decoded) {
    std::string id = protocol::message_id(frame);
    nack(cx, id, decoded.error().message);
    out.push_back(LogOutput{"warn", "invalid_frame",
                            {{"client_id", cx.client.id}, {"code", decoded.error().code},
                             {"error", decoded.error().message}, {"bytes", frame.size}}});
    if (++cx.client.invalid_frames >= config_.max_invalid_frames) {
      out.push_back(CloseOutput{handle, 1008, "too many invalid frames"});
    }
    return out;
  }
  cx.client.invalid_frames = 0;
  handle_message(cx, decoded.value(), frame);
  return out;
}

void Server::handle_message(Context& cx, const Message& m, ByteView frame) {
  if (m.is<protocol::Ack>()) return;  // acks from clients need no reply
  if (!permitted(cx, m)) return;
  if (m.type() == protocol::MessageType::rpc && m.document.empty()) {
    on_rpc(cx, m);
    ack(cx, m.id);
    return;
  }
  DocumentSession* s = session_for(cx, m);
  if (!s) return;
  join(cx, *s);
  switch (m.type()) {
    case protocol::MessageType::doc:
      on_doc(cx, *s, m, frame);
      return;
    case protocol::MessageType::awareness:
      relay(cx, *s, frame);
      break;
    case protocol::MessageType::presence:
      on_presence(cx, *s, m);
      break;
    case protocol::MessageType::rpc:
      on_rpc(cx, m);
      break;
    case protocol::MessageType::ack:
      return;
  }
  ack(cx, m.id);
}

bool Server::permitted(Context& cx, const Message& m) {
  if (m.document.empty() && m.type() != protocol::MessageType::rpc) {
    nack(cx, m.id, "Message has no document name");
    return false;
  }
  if (config_.permissions == PermissionMode::none) return true;
  const char* need = required_permission(m);
  if (need && (*need == '\0' || m.document.empty())) return true;
  if (need && token::has_document_permission(cx.client.context, m.document, need)) return true;

  cx.out.push_back(LogOutput{"info", "permission_denied",
                             {{"client_id", cx.client.id}, {"document", m.document},
                              {"needs", need ? need : "(never allowed)"},
                              {"message_type", protocol::payload_type_name(m.payload)}}});
  // Replies to a denied message (spec 4.2): no ack, the client is not joined to the session.
  Message reply;
  reply.document = m.document;
  reply.encrypted = m.encrypted;
  if (m.is<protocol::SyncStep2>()) {
    reply.payload = protocol::SyncDone{};
  } else if (const auto* rpc = m.get<protocol::Rpc>()) {
    protocol::Rpc r;
    r.method = rpc->method;
    r.request_type = protocol::RpcRequestType::response;
    r.original_request_id = rpc->original_request_id.value_or(m.id);
    r.result = protocol::RpcError{403, "Permission denied", lib0::Any::undefined()};
    reply.payload = std::move(r);
  } else {
    reply.payload = protocol::AuthMessage{protocol::Permission::denied,
                                          "Insufficient permissions to access document " + m.document};
  }
  send(cx, reply);
  return false;
}

DocumentSession* Server::session_for(Context& cx, const Message& m) {
  std::string key = session_key(cx.client, m.document);
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    DocumentSession& s = *it->second;
    if (!is_authoritative(m) || s.encrypted == m.encrypted) {
      if (is_authoritative(m)) s.tentative = false;
      return &s;
    }
    if (!s.tentative) {
      nack(cx, m.id, "Encryption state mismatch: existing session for document \"" + key +
                         "\" has encrypted=" + (s.encrypted ? "true" : "false") +
                         ", but requested encrypted=" + (m.encrypted ? "true" : "false"));
      return nullptr;
    }
    // A session created by presence/rpc takes the mode of the first doc/awareness message. Unlike
    // the reference, members and presence roster are kept (spec 6 item 10).
    s.encrypted = m.encrypted;
    s.tentative = false;
    return &s;
  }
  auto s = std::make_unique<DocumentSession>();
  s->key = key;
  s->document = m.document;
  s->encrypted = m.encrypted;
  s->tentative = !is_authoritative(m);
  cx.out.push_back(LogOutput{"info", "session_created", {{"document_id", key}}});
  return sessions_.emplace(key, std::move(s)).first->second.get();
}

void Server::join(Context& cx, DocumentSession& s) {
  if (s.has_member(cx.sender)) return;
  bool can_read = config_.permissions == PermissionMode::none ||
                  token::has_document_permission(cx.client.context, s.document, "read");
  s.members.push_back({cx.sender, can_read});
  cx.client.sessions.push_back(s.key);
}

void Server::relay(Context& cx, DocumentSession& s, ByteView frame) {
  SendOutput send_out;
  for (const auto& member : s.members) {
    if (member.client != cx.sender && member.can_read) send_out.to.push_back(member.client);
  }
  if (send_out.to.empty()) return;
  send_out.frame = frame.to_bytes();
  cx.out.push_back(std::move(send_out));
}

// The state of a session as one V2 update (merging the pending log into one entry). After
// `compact_after` stored appends, storage is told to replace its log with the merged state.
Result<Bytes> Server::materialize(DocumentSession& s, Outputs& out) {
  if (s.pending.empty()) return Bytes{};
  if (s.pending.size() > 1) {
    std::vector<ByteView> views(s.pending.begin(), s.pending.end());
    auto merged = yjs::merge_updates_v2(views);
    if (!merged) return merged.error();
    s.pending.clear();
    s.pending.push_back(std::move(merged).value());
  }
  if (config_.persist && s.stored_appends >= config_.compact_after) {
    protocol::ContentEncryptedEnvelope e;
    e.structure_update = s.pending.front();
    e.encrypted_sidecars = s.sidecars;
    out.push_back(PersistOutput{s.key, s.document, protocol::encode_content_encrypted(e), true});
    s.stored_appends = 0;
  }
  return s.pending.front();
}

void Server::on_doc(Context& cx, DocumentSession& s, const Message& m, ByteView frame) {
  if (m.encrypted != s.encrypted) {
    nack(cx, m.id, "Message encryption and document encryption are mismatched");
    return;
  }
  if (const auto* step1 = m.get<protocol::SyncStep1>()) {
    auto state = materialize(s, cx.out);
    if (!state) {
      nack(cx, m.id, "Failed to read document state: " + state.error().message);
      return;
    }
    protocol::ContentEncryptedEnvelope envelope;
    Bytes server_sv{0x00};
    if (!state.value().empty()) {
      auto diff = yjs::diff_update_v2(state.value(), step1->state_vector);
      if (!diff) {
        nack(cx, m.id, "Invalid state vector: " + diff.error().message);
        return;
      }
      auto sv = yjs::encode_state_vector_from_update_v2(state.value());
      if (!sv) {
        nack(cx, m.id, "Failed to read document state: " + sv.error().message);
        return;
      }
      envelope.structure_update = std::move(diff).value();
      envelope.encrypted_sidecars = s.sidecars;
      server_sv = std::move(sv).value();
    }
    send(cx, doc_message(s, protocol::SyncStep2{2, protocol::encode_content_encrypted(envelope)}));
    send(cx, doc_message(s, protocol::SyncStep1{std::move(server_sv)}));
    ack(cx, m.id);
    return;
  }
  const Bytes* data = nullptr;
  if (const auto* step2 = m.get<protocol::SyncStep2>()) data = &step2->data;
  if (const auto* update = m.get<protocol::DocUpdate>()) data = &update->data;
  if (data) {
    // Validate before anything is relayed or stored: one bad update must not poison the document.
    auto envelope = protocol::decode_content_encrypted(*data, protocol::EnvelopeMode::strict);
    if (!envelope) {
      // The reference's exact text (clients may match on it); the detail goes to the log.
      nack(cx, m.id, "Failed to decode content-encrypted payload");
      cx.out.push_back(LogOutput{"info", "invalid_update",
                                 {{"client_id", cx.client.id}, {"error", envelope.error().message}}});
      return;
    }
    const Bytes& structure = envelope.value().structure_update;
    if (!structure.empty()) {
      auto valid = yjs::validate_update_v2(structure);
      if (!valid) {
        nack(cx, m.id, "Invalid Y.js update: " + valid.error().message);
        return;
      }
    }
    relay(cx, s, frame);
    if (config_.persist && (!structure.empty() || !envelope.value().encrypted_sidecars.empty())) {
      protocol::ContentEncryptedEnvelope stored;
      stored.structure_update = structure;
      stored.encrypted_sidecars = envelope.value().encrypted_sidecars;
      cx.out.push_back(PersistOutput{s.key, s.document, protocol::encode_content_encrypted(stored), false});
      ++s.stored_appends;
    }
    if (!structure.empty()) s.pending.push_back(structure);
    for (auto& sidecar : envelope.value().encrypted_sidecars) s.sidecars.push_back(std::move(sidecar));
    if (s.pending.size() >= config_.merge_after) {
      if (auto merged = materialize(s, cx.out); !merged) {
        cx.out.push_back(LogOutput{"error", "merge_failed", {{"document_id", s.key}, {"error", merged.error().message}}});
      }
    }
    if (m.is<protocol::SyncStep2>()) send(cx, doc_message(s, protocol::SyncDone{}));
    ack(cx, m.id);
    return;
  }
  ack(cx, m.id);  // sync-done (auth-message from clients never passes the gate in token mode)
}

void Server::on_presence(Context& cx, DocumentSession& s, const Message& m) {
  auto entry_message = [&](const PresenceEntry& e, bool join) {
    const Client& owner = *clients_.at(e.client);
    protocol::PresenceClient pc{e.awareness_id, owner.id, owner.user_id, lib0::Any::object()};
    Message msg;
    msg.document = s.document;
    if (join) {
      msg.payload = protocol::PresenceJoin{std::move(pc)};
    } else {
      msg.payload = protocol::PresenceLeave{std::move(pc)};
    }
    return protocol::encode_message(msg);
  };

  if (const auto* announce = m.get<protocol::PresenceAnnounce>()) {
    PresenceEntry mine{cx.sender, announce->awareness_id};
    s.roster.announce(cx.sender, announce->awareness_id);
    // Peers that hold an announced id learn about the newcomer; the sender gets the whole roster.
    SendOutput to_peers;
    for (const auto& member : s.members) {
      if (member.client != cx.sender && member.can_read && s.roster.holds_any(member.client)) {
        to_peers.to.push_back(member.client);
      }
    }
    for (const auto& e : s.roster.entries()) cx.out.push_back(SendOutput{{cx.sender}, entry_message(e, true)});
    if (!to_peers.to.empty()) {
      to_peers.frame = entry_message(mine, true);
      cx.out.push_back(std::move(to_peers));
    }
    return;
  }
  if (const auto* unannounce = m.get<protocol::PresenceUnannounce>()) {
    if (!s.roster.unannounce(cx.sender, unannounce->awareness_id)) return;
    SendOutput leave_out;
    for (const auto& member : s.members) {
      if (member.can_read) leave_out.to.push_back(member.client);
    }
    leave_out.frame = entry_message({cx.sender, unannounce->awareness_id}, false);
    cx.out.push_back(std::move(leave_out));
  }
  // join / leave / heartbeat from clients are server-to-client messages: ignored.
}

void Server::on_rpc(Context& cx, const Message& m) {
  const auto* rpc = m.get<protocol::Rpc>();
  if (rpc->request_type != protocol::RpcRequestType::request) return;
  if (!std::holds_alternative<protocol::RpcSuccess>(rpc->result)) return;
  // No RPC handlers are registered in the core yet: every method is unknown (501).
  protocol::Rpc r;
  r.method = rpc->method;
  r.request_type = protocol::RpcRequestType::response;
  r.original_request_id = m.id;
  r.result = protocol::RpcError{
      501, "Unknown RPC method: " + rpc->method,
      lib0::Any::object({{"method", lib0::Any::string(rpc->method)}})};
  Message reply;
  reply.document = m.document;
  reply.encrypted = m.encrypted;
  reply.payload = std::move(r);
  send(cx, reply);
}

void Server::leave(Outputs& out, ClientHandle c, DocumentSession& s) {
  s.members.erase(std::remove_if(s.members.begin(), s.members.end(),
                                 [&](const DocumentSession::Member& m) { return m.client == c; }),
                  s.members.end());
  std::vector<std::uint64_t> gone = s.roster.remove_client(c);
  std::vector<ClientHandle> readers;
  for (const auto& m : s.members) {
    if (m.can_read) readers.push_back(m.client);
  }
  if (gone.empty() || readers.empty()) return;
  const Client& owner = *clients_.at(c);
  for (auto id : gone) {
    Message msg;
    msg.document = s.document;
    msg.payload = protocol::PresenceLeave{
        protocol::PresenceClient{id, owner.id, owner.user_id, lib0::Any::object()}};
    out.push_back(SendOutput{readers, protocol::encode_message(msg)});
  }
}

Outputs Server::close(ClientHandle handle) {
  Outputs out;
  auto it = clients_.find(handle);
  if (it == clients_.end()) return out;
  for (const auto& key : it->second->sessions) {
    auto s = sessions_.find(key);
    if (s != sessions_.end()) leave(out, handle, *s->second);
  }
  out.push_back(LogOutput{"info", "client_disconnect", {{"client_id", it->second->id}}});
  clients_.erase(it);
  return out;
}

Bytes Server::document_state(const std::string& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return {};
  Outputs ignored;
  auto state = materialize(*it->second, ignored);
  return state ? std::move(state).value() : Bytes{};
}

Outputs Server::restore(const std::string& key, const std::string& document,
                        const std::vector<ByteView>& envelopes) {
  Outputs out;
  auto& slot = sessions_[key];
  if (!slot) {
    slot = std::make_unique<DocumentSession>();
    slot->key = key;
    slot->document = document;
  }
  DocumentSession& s = *slot;
  for (std::size_t i = 0; i < envelopes.size(); ++i) {
    auto e = protocol::decode_content_encrypted(envelopes[i], protocol::EnvelopeMode::strict);
    bool ok = static_cast<bool>(e);
    if (ok && !e.value().structure_update.empty()) ok = static_cast<bool>(yjs::validate_update_v2(e.value().structure_update));
    if (!ok) {
      out.push_back(LogOutput{"error", "storage_entry_invalid", {{"document_id", key}, {"index", i}}});
      continue;
    }
    if (!e.value().structure_update.empty()) s.pending.push_back(std::move(e.value().structure_update));
    for (auto& sidecar : e.value().encrypted_sidecars) s.sidecars.push_back(std::move(sidecar));
    ++s.stored_appends;
  }
  out.push_back(LogOutput{"info", "document_restored", {{"document_id", key}, {"entries", envelopes.size()}}});
  return out;
}

}  // namespace tp::server

namespace tp::server {

FrameVerdict inspect_frame(ByteView frame) {
  FrameVerdict v;
  if (protocol::is_ping_message(frame)) {
    v.reply = protocol::pong_message().to_bytes();
    return v;
  }
  if (protocol::is_pong_message(frame)) return v;
  auto decoded = decode_frame(frame);
  if (decoded) return v;
  v.error = decoded.error().message;
  protocol::Message nack;
  nack.payload = protocol::Ack{protocol::message_id(frame), std::nullopt, v.error};
  v.reply = protocol::encode_message(nack);
  return v;
}

}  // namespace tp::server
