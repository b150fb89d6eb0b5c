#include "tp/server/server.hpp"

#include <algorithm>
#include <cmath>

#include "session.hpp"
#include "tp/protocol/envelope.hpp"
#include "tp/token/access.hpp"
#include "tp/token/token.hpp"
#include "tp/yjs/updates.hpp"

namespace tp::server {

using protocol::Message;

// Per-connection state is kept small: an idle connection costs this struct and a few short
// strings (the context itself stays with the host; only what the rules read is kept).
struct Server::Client {
  std::string id;
  // What the token rule reads, as compact JSON text ("" when absent): parsed when a decision is
  // made (once per document), which keeps an idle connection a few hundred bytes smaller.
  std::string document_access;
  bool has_claims = false;  // claims were given or verified (else token mode denies)
  bool expired = false;            // the 4401 close is out
  bool awaiting = false;           // callback mode: the application is deciding; frames wait
  std::string room;                // "" when the context has no non-empty string room
  std::string user_id;             // "" when absent
  double exp_ms = 0;               // 0: the token never expires
  std::vector<std::string> sessions;                  // keys joined, in order
  std::vector<std::pair<std::string, Access>> access;  // decisions per document name (few)
  std::vector<Bytes> waiting;                         // callback mode: frames from waiting_head on
  std::vector<std::string> rejoining;                 // callback mode: restored, asked, not yet answered
  std::size_t waiting_head = 0;
  std::size_t waiting_bytes = 0;
  std::uint32_t invalid_frames = 0;
  double tokens = 0;     // rate bucket of this connection
  bool limited = false;  // its last charged frame was refused (logged once per episode)
  bool refused = false;  // a join was refused by a limit and logged (again only after a join)
  // The document of this client's last accepted update and its session: the next update to it
  // skips the full decode, the permission lookup and the session lookup. Valid while `epoch`
  // equals Server::epoch_ (bumped when sessions go, decisions or memberships change).
  struct Last {
    std::string document;
    DocumentSession* session = nullptr;
    std::uint64_t epoch = 0;
  } last;

  const Access* decision(std::string_view document) const {
    for (const auto& [name, a] : access) {
      if (name == document) return &a;
    }
    return nullptr;
  }
  void decide(const std::string& document, Access a) {
    for (auto& [name, old] : access) {
      if (name == document) return void(old = a);
    }
    access.emplace_back(document, a);
  }
  bool has_waiting() const { return waiting_head < waiting.size(); }
  std::size_t waiting_count() const { return waiting.size() - waiting_head; }
  Bytes next_waiting() {
    Bytes frame = std::move(waiting[waiting_head++]);
    if (waiting_head == waiting.size()) waiting.clear(), waiting_head = 0;
    return frame;
  }
};

struct Server::Turn {
  ClientHandle sender;
  Client& client;
  Outputs& out;
};


// Bytes of a staged update: an offset and a length in its batch's arena.
struct Span {
  std::size_t off = 0;
  std::size_t len = 0;
};

// An accepted update waiting for its batch to commit; its bytes live in the batch's arena, so
// staging one costs no allocation once the (reused) arena is large enough.
struct Server::Staged {
  DocumentSession* session = nullptr;  // stays loaded while its in_flight count is above 0
  ClientHandle sender = 0;
  protocol::MessageId id{};
  Span frame;                   // relayed verbatim
  Span structure;               // V2 structure update (may be empty)
  // Encrypted documents: the sidecars with their hash and index, the compaction record, and the
  // client's envelope as storage keeps it (empty: the structure alone, as a plain envelope).
  std::vector<Sidecar> sidecars;
  std::optional<protocol::Compaction> compaction;
  Bytes entry;
  bool step2 = false;
  bool empty = true;  // no structs, no deletes, no sidecars: nothing to store or to merge
};

// One sender's non-empty updates (not sync-step-2s) to one document in a batch, and their merge.
struct Part {
  ClientHandle sender = 0;
  std::vector<std::size_t> items;
  Bytes merged;  // when there are two or more
  ByteView update;  // the merge, or the one update's structure
};

// The staged updates of one document in a batch, in arrival order. For a plaintext document the
// batch stores one entry (their merge) and readers get one frame for all of them (coalescing).
struct Server::Group {
  DocumentSession* session = nullptr;
  std::vector<std::size_t> items;
  bool coalesce = false;       // plaintext, and the merges (if any) succeeded
  std::size_t structures = 0;  // items with something to store
  std::vector<Part> parts;     // coalesce: the updates by sender, in order of each sender's first
  bool step2s = false;         // coalesce: non-empty sync-step-2s are in `merged` too
  Bytes merged;                // the merge of everything stored, when there are two or more
  ByteView state;              // coalesce: what is stored (`merged`, or the one part or step 2)
  bool stored = false;         // an entry went to storage for this group
};

struct Server::StagedBatch {
  Bytes arena;
  std::size_t written_entries = 0;  // what flush() handed to storage (counted once committed)
  std::size_t written_bytes = 0;
  std::vector<Staged> items;
  std::vector<Group> groups;
  ByteView view(Span s) const { return {arena.data() + s.off, s.len}; }
  Span append(ByteView b) {
    Span s{arena.size(), b.size};
    arena.insert(arena.end(), b.begin(), b.end());
    return s;
  }
  void clear() {
    arena.clear();
    items.clear();
    groups.clear();
  }
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

double exp_ms_of(const nlohmann::json& claims) {
  if (!claims.is_object()) return 0;
  auto it = claims.find("exp");
  if (it == claims.end() || !it->is_number()) return 0;
  return it->get<double>() * 1000.0;
}

Message doc_message(const DocumentSession& s, protocol::Payload payload) {
  Message m;
  m.document = s.document;
  m.encrypted = s.encrypted;
  m.payload = std::move(payload);
  return m;
}

Bytes ack_frame(const std::string& message_id, std::optional<std::string> error = std::nullopt,
                std::optional<std::uint64_t> retry_after = std::nullopt) {
  Message m;
  m.payload = protocol::Ack{message_id, retry_after, std::move(error)};
  return protocol::encode_message(m);
}

// A success ack for a decoded message (its id is always the 16 characters of message_id).
void ack(Outputs& out, ClientHandle to, const std::string& id) {
  AckOutput a{to, {}};
  std::copy_n(id.begin(), std::min(id.size(), a.id.size()), a.id.begin());
  out.push_back(a);
}

bool is_authoritative(const Message& m) {
  auto t = m.type();
  return t == protocol::MessageType::doc || t == protocol::MessageType::awareness;
}

enum class Need : std::uint8_t { nothing, read, write, never };

// What a message needs (spec 2.4, with awareness and presence fixed to need read). An rpc for a
// method the application registered needs what it registered it with.
Need required_access(const Message& m, const ServerConfig& config) {
  using protocol::MessageType;
  switch (m.type()) {
    case MessageType::doc:
      if (m.is<protocol::SyncStep2>() || m.is<protocol::DocUpdate>()) return Need::write;
      if (m.is<protocol::AuthMessage>()) return Need::never;  // clients may not send these
      return Need::read;
    case MessageType::awareness:
    case MessageType::presence:
      return Need::read;
    case MessageType::rpc: {
      static const char* writers[] = {"milestoneCreate", "milestoneUpdateName", "milestoneDelete",
                                      "milestoneRestore", "fileUpload"};
      const auto& method = m.get<protocol::Rpc>()->method;
      for (const auto& app : config.rpc_methods) {
        if (app.name == method) return app.write ? Need::write : Need::read;
      }
      for (const char* w : writers) {
        if (method == w) return Need::write;
      }
      return Need::read;
    }
    case MessageType::ack:
      return Need::nothing;
  }
  return Need::never;
}

const char* need_name(Need n) {
  switch (n) {
    case Need::nothing: return "nothing";
    case Need::read: return "read";
    case Need::write: return "write";
    case Need::never: return "(never allowed)";
  }
  return "?";
}

bool satisfies(Access a, Need n) {
  switch (n) {
    case Need::nothing: return true;
    case Need::read: return can(a, Access::read);
    case Need::write: return can(a, Access::write);
    case Need::never: return false;
  }
  return false;
}

}  // namespace

std::string session_key(std::string_view room, std::string_view document) {
  std::string key;
  key.reserve(room.size() + document.size() + 1);
  for (char c : room) {
    if (c == '%') {
      key += "%25";
    } else if (c == '/') {
      key += "%2F";
    } else {
      key.push_back(c);
    }
  }
  key.push_back('/');
  key.append(document);
  return key;
}

Server::Server(ServerConfig config) : config_(std::move(config)), ids_(std::make_unique<IdSource>(config_.random_seed)) {}
Server::~Server() = default;

// The claims the token rule reads: the context itself when it carries documentAccess (the
// built-in upgrade check puts the verified payload there), else its `token` verified here.
void Server::adopt_claims(Client& c, nlohmann::json claims) {
  c.last = {};  // decisions change
  c.exp_ms = exp_ms_of(claims);
  c.has_claims = true;
  auto it = claims.is_object() ? claims.find("documentAccess") : claims.end();
  c.document_access = it == claims.end() ? std::string() : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  c.access.clear();
}

ClientHandle Server::open(std::string id, nlohmann::json context, double now_ms, Outputs& out) {
  const std::size_t counted = out.size();
  ++metrics_.clients_connected;
  now_ms_ = std::max(now_ms_, now_ms);
  auto c = std::make_unique<Client>();
  c->id = std::move(id);
  c->room = string_field(context, "room");
  c->user_id = string_field(context, "userId");
  if (context.contains("documentAccess")) {
    adopt_claims(*c, std::move(context));
  } else if (std::string token = string_field(context, "token"); !token.empty() && !config_.tokens.secret.empty()) {
    token::VerifyOptions vo;
    vo.secret = config_.tokens.secret;
    vo.issuer = config_.tokens.issuer;
    vo.audience = config_.tokens.audience;
    auto v = token::verify(token, vo, now_ms / 1000.0);
    if (v.valid) {
      adopt_claims(*c, std::move(v.payload));
    } else {
      out.push_back(LogOutput{"warn", "context_token_invalid", {{"client_id", c->id}, {"error", v.error}}});
    }
  } else {
    c->exp_ms = exp_ms_of(context);
  }
  if (config_.permissions == PermissionMode::token && !c->has_claims) {
    out.push_back(LogOutput{
        "warn", "context_without_claims",
        {{"client_id", c->id},
         {"error", "the connection context has no documentAccess claims and no token the server can verify: "
                   "every document is denied (give the Server the token secret, a checkPermission "
                   "function, or permissions: \"none\")"}}});
  }
  c->tokens = config_.burst_per_connection;
  if (!c->user_id.empty()) {
    auto [u, fresh] = users_.try_emplace(c->user_id);
    if (fresh) u->second.tokens = config_.burst_per_user;
    ++u->second.connections;
  }
  ClientHandle h = next_handle_++;
  if (c->exp_ms > 0 && now_ms >= c->exp_ms) {
    c->expired = true;
    out.push_back(CloseOutput{h, static_cast<int>(CloseCode::token_expired), "token expired"});
  }
  clients_.emplace(h, std::move(c));
  count(out, counted);
  return h;
}

Outputs Server::message(ClientHandle handle, ByteView frame) {
  Outputs out;
  auto it = clients_.find(handle);
  if (it == clients_.end()) return out;  // closed already: late frames are dropped
  metrics_.count_in(frame);
  deliver(out, handle, *it->second, frame);
  count(out);
  return out;
}

void Server::deliver(Outputs& out, ClientHandle handle, Client& client, ByteView frame, bool charge) {
  Turn t{handle, client, out};
  if (protocol::is_ping_message(frame)) {
    out.push_back(SendOutput{{handle}, protocol::pong_message().to_bytes()});
    return;
  }
  if (protocol::is_pong_message(frame)) return;
  if (client.expired) return;  // the 4401 close is on its way

  if (frame.size > config_.max_message_size) {
    metrics_.refuse(Refusal::too_large);
    out.push_back(SendOutput{{handle}, ack_frame(protocol::message_id(frame),
                                                 "message-too-large: " + std::to_string(frame.size) + " > " +
                                                     std::to_string(config_.max_message_size) + " bytes")});
    return;
  }
  // Acks cost no rate token (a reader acks every frame it gets) and need no reply. The relay path
  // below handles acks and updates to the document of the client's last update from views into
  // the frame (no decode into a Message, no lookups, no allocation).
  auto view = protocol::peek_relay_frame(frame);
  if (view && view->type == protocol::MessageType::ack) {
    client.invalid_frames = 0;
    return;
  }
  if (charge && !take_token(client)) {
    metrics_.refuse(Refusal::rate_limited);
    out.push_back(SendOutput{{handle}, ack_frame(protocol::message_id(frame), std::nullopt, 1000)});
    // One line when a connection becomes limited, not one per refused frame (a flood would
    // otherwise turn into a flood of log lines).
    if (!client.limited) {
      client.limited = true;
      out.push_back(LogOutput{"warn", "rate_limited", {{"client_id", client.id}, {"user_id", client.user_id}}});
    }
    return;
  }
  if (charge) client.limited = false;
  if (client.awaiting) {  // the application is deciding: keep arrival order
    if (client.waiting_count() >= config_.max_queued_frames ||
        client.waiting_bytes + frame.size > config_.max_queued_bytes) {
      metrics_.refuse(Refusal::queue_full);
      out.push_back(SendOutput{{handle}, ack_frame(protocol::message_id(frame),
                                                   "Too many messages while a permission check is pending", 1000)});
      return;
    }
    client.waiting.push_back(frame.to_bytes());
    client.waiting_bytes += frame.size;
    return;
  }

  if (view && relay_fast(out, handle, client, *view, frame)) {
    client.invalid_frames = 0;
    return;
  }

  auto decoded = decode_frame(frame);
  if (!decoded) {
    metrics_.refuse(Refusal::invalid_frame);
    out.push_back(SendOutput{{handle}, ack_frame(protocol::message_id(frame), decoded.error().message)});
    out.push_back(LogOutput{"warn", "invalid_frame",
                            {{"client_id", client.id}, {"code", decoded.error().code},
                             {"error", decoded.error().message}, {"bytes", frame.size}}});
    if (++client.invalid_frames >= config_.max_invalid_frames) {
      out.push_back(CloseOutput{handle, static_cast<int>(CloseCode::policy_violation), "too many invalid frames"});
    }
    return;
  }
  client.invalid_frames = 0;
  handle_message(t, decoded.value(), frame);
}

// One token from the connection's bucket and the user's; acks and pings never get here.
bool Server::take_token(Client& c) {
  if (config_.rate_per_connection > 0) {
    if (c.tokens < 1) return false;
  }
  Bucket* user = nullptr;
  if (config_.rate_per_user > 0 && !c.user_id.empty()) {
    auto it = users_.find(c.user_id);
    if (it != users_.end()) user = &it->second;
    if (user && user->tokens < 1) return false;
  }
  if (config_.rate_per_connection > 0) c.tokens -= 1;
  if (user) user->tokens -= 1;
  return true;
}

void Server::refill(double elapsed_ms) {
  double s = elapsed_ms / 1000.0;
  for (auto& [h, c] : clients_) c->tokens = std::min(config_.burst_per_connection, c->tokens + config_.rate_per_connection * s);
  for (auto& [id, u] : users_) u.tokens = std::min(config_.burst_per_user, u.tokens + config_.rate_per_user * s);
}

void Server::handle_message(Turn& t, const Message& m, ByteView frame) {
  if (m.is<protocol::Ack>()) return;  // acks from clients need no reply
  if (m.document.size() > config_.max_document_name_bytes) {
    metrics_.refuse(Refusal::too_large);
    t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Document name too long (" + std::to_string(m.document.size()) +
                                                               " > " + std::to_string(config_.max_document_name_bytes) + " bytes)")});
    return;
  }
  if (const auto* aw = m.get<protocol::AwarenessUpdate>(); aw && aw->update.size() > config_.max_awareness_bytes) {
    metrics_.refuse(Refusal::too_large);
    t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Awareness update too large (" + std::to_string(aw->update.size()) +
                                                               " > " + std::to_string(config_.max_awareness_bytes) + " bytes)")});
    return;
  }
  if (const auto* auth = m.get<protocol::AuthMessage>(); auth && auth->permission == protocol::Permission::allowed) {
    on_auth(t, m);  // in-band token refresh
    return;
  }
  if (m.document.empty()) {
    if (m.type() != protocol::MessageType::rpc) {
      metrics_.refuse(Refusal::no_document);
      t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Message has no document name")});
      return;
    }
    // An rpc about no document cannot be checked against any document's permissions.
    if (config_.permissions != PermissionMode::none) return deny(t, m, "(no document)");
    if (on_rpc(t, nullptr, m)) ack(t.out, t.sender, m.id);
    return;
  }
  Need need = required_access(m, config_);
  if (config_.permissions != PermissionMode::none) {
    bool asked = false;
    Access a = access_of(t, m.document, frame, asked);
    if (asked) return;  // queued until the application answers
    if (!satisfies(a, need)) return deny(t, m, need_name(need));
  } else if (need == Need::never) {
    ack(t.out, t.sender, m.id);  // the reference acks a client auth-message
    return;
  }
  DocumentSession* s = session_for(t, m);
  if (!s) return;
  if (!join(t, *s, m)) return;
  if (s->loading) {
    if (s->queue.size() >= config_.max_queued_frames || s->queued_bytes + frame.size > config_.max_queued_bytes) {
      metrics_.refuse(Refusal::queue_full);
      t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Document is loading: too many queued messages", 1000)});
      return;
    }
    s->queue.push_back({t.sender, frame.to_bytes()});
    s->queued_bytes += frame.size;
    return;
  }
  apply(t, *s, m, frame);
}

void Server::apply(Turn& t, DocumentSession& s, const Message& m, ByteView frame) {
  switch (m.type()) {
    case protocol::MessageType::doc:
      on_doc(t, s, m, frame);
      return;
    case protocol::MessageType::awareness:
      relay(t.out, s, t.sender, frame);
      break;
    case protocol::MessageType::presence:
      on_presence(t, s, m);
      break;
    case protocol::MessageType::rpc:
      if (!on_rpc(t, &s, m)) return;  // answered (and acked) later
      break;
    case protocol::MessageType::ack:
      return;
  }
  ack(t.out, t.sender, m.id);
}

Access Server::decide_token_access(const Client& c, const std::string& document) const {
  if (!c.has_claims) return Access::none;
  token::PermissionOptions po;
  po.allow_missing_document_access = config_.tokens.allow_missing_document_access;
  nlohmann::json access;  // null when absent
  if (!c.document_access.empty()) access = nlohmann::json::parse(c.document_access, nullptr, false);
  std::uint8_t bits = 0;
  if (token::access_has_permission(access, document, "read", po)) bits |= 1;
  if (token::access_has_permission(access, document, "write", po)) bits |= 2;
  return static_cast<Access>(bits);
}

// The decision for (client, document), cached: the hot path pays one hash lookup per frame.
Access Server::access_of(Turn& t, const std::string& document, ByteView frame, bool& asked) {
  if (const Access* known = t.client.decision(document)) return *known;
  if (config_.permissions == PermissionMode::callback) {
    t.client.awaiting = true;
    t.client.waiting.push_back(frame.to_bytes());
    t.client.waiting_bytes += frame.size;
    t.out.push_back(PermissionOutput{t.sender, document, frame.to_bytes()});
    asked = true;
    return Access::none;
  }
  Access a = decide_token_access(t.client, document);
  t.client.decide(document, a);
  return a;
}

// Replies to a denied message (spec 4.2): no ack, the client is not joined to the session.
void Server::deny(Turn& t, const Message& m, const char* why) {
  metrics_.refuse(Refusal::permission);
  t.out.push_back(LogOutput{"info", "permission_denied",
                            {{"client_id", t.client.id}, {"document", m.document}, {"needs", why},
                             {"message_type", protocol::payload_type_name(m.payload)}}});
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
  t.out.push_back(SendOutput{{t.sender}, protocol::encode_message(reply)});
}

DocumentSession* Server::session_for(Turn& t, const Message& m) {
  std::string key = session_key(t.client.room, m.document);
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    DocumentSession& s = *it->second;
    if (!is_authoritative(m) || s.encrypted == m.encrypted) {
      if (is_authoritative(m)) s.tentative = false;
      return &s;
    }
    if (!s.tentative) {
      metrics_.refuse(Refusal::encryption_mismatch);
      t.out.push_back(SendOutput{
          {t.sender},
          ack_frame(m.id, "Encryption state mismatch: existing session for document \"" + key +
                              "\" has encrypted=" + (s.encrypted ? "true" : "false") +
                              ", but requested encrypted=" + (m.encrypted ? "true" : "false"))});
      return nullptr;
    }
    // A session created by presence/rpc takes the mode of the first doc/awareness message. Unlike
    // the reference, members and presence roster are kept (spec 6 item 10).
    s.encrypted = m.encrypted;
    s.tentative = false;
    return &s;
  }
  if (t.client.sessions.size() >= config_.max_documents_per_connection) {
    refuse_document(t, m);
    return nullptr;
  }
  auto s = std::make_unique<DocumentSession>();
  s->key = key;
  s->topic = next_topic_++;
  s->document = m.document;
  s->document_id = t.client.room.empty() ? m.document : t.client.room + "/" + m.document;
  s->encrypted = m.encrypted;
  s->tentative = !is_authoritative(m);
  s->loading = config_.persist;
  if (config_.info_logs) t.out.push_back(LogOutput{"info", "session_created", {{"document_id", key}}});
  if (s->loading) t.out.push_back(LoadOutput{key});
  if (!config_.node_id.empty()) t.out.push_back(ChannelOutput{key, true});
  return sessions_.emplace(key, std::move(s)).first->second.get();
}

namespace {

// The reference's denial shape (a doc auth-message, permission denied) with our reason.
void send_denial(std::vector<Output>& out, ClientHandle to, const Message& m, std::string reason) {
  Message reply;
  reply.document = m.document;
  reply.encrypted = m.encrypted;
  reply.payload = protocol::AuthMessage{protocol::Permission::denied, std::move(reason)};
  out.push_back(SendOutput{{to}, protocol::encode_message(reply)});
}

}  // namespace

void Server::refuse_document(Turn& t, const Message& m) {
  metrics_.refuse(Refusal::document_limit);
  if (!t.client.refused) {
    t.client.refused = true;
    t.out.push_back(LogOutput{"warn", "document_limit",
                              {{"client_id", t.client.id}, {"limit", config_.max_documents_per_connection}}});
  }
  send_denial(t.out, t.sender, m, "Too many open documents on this connection (limit " +
                                      std::to_string(config_.max_documents_per_connection) + ")");
}

bool Server::join(Turn& t, DocumentSession& s, const Message& m) {
  if (s.member(t.sender)) return true;
  if (s.members.size() >= config_.max_connections_per_document) {
    metrics_.refuse(Refusal::document_limit);
    if (!t.client.refused) {
      t.client.refused = true;
      t.out.push_back(LogOutput{"warn", "document_connection_limit", {{"document_id", s.key}, {"limit", config_.max_connections_per_document}}});
    }
    send_denial(t.out, t.sender, m, "Too many connections to document " + m.document + " (limit " +
                                        std::to_string(config_.max_connections_per_document) + ")");
    return false;
  }
  if (t.client.sessions.size() >= config_.max_documents_per_connection) {
    refuse_document(t, m);
    return false;
  }
  bool can_read = config_.permissions == PermissionMode::none;
  if (!can_read) {
    const Access* a = t.client.decision(s.document);
    can_read = a && can(*a, Access::read);
  }
  s.members.push_back({t.sender, can_read});
  s.empty_since_ms = -1;
  t.client.refused = false;
  t.client.sessions.push_back(s.key);
  t.out.push_back(JoinOutput{t.sender, s.document});
  if (can_read) t.out.push_back(ReaderOutput{t.sender, s.key, true, s.topic});
  return true;
}

void Server::relay(Outputs& out, DocumentSession& s, ClientHandle except, ByteView frame, bool cluster) {
  std::uint32_t readers = 0;
  for (const auto& member : s.members) readers += member.client != except && member.can_read;
  bool others = readers > 0;
  bool to_cluster = cluster && !config_.node_id.empty();
  if (!others && !to_cluster) return;
  publish(out, s.key, except, frame, others, to_cluster);
  std::get<PublishOutput>(out.back()).readers = readers;
}

std::uint32_t Server::topic_of(const std::string& key) const {
  auto it = sessions_.find(key);
  return it == sessions_.end() ? 0 : it->second->topic;
}

void Server::publish(Outputs& out, const std::string& key, ClientHandle except, ByteView frame, bool local, bool cluster) {
  PublishOutput p{key, except, frame.to_bytes(), local, cluster, {}, {}, topic_of(key)};
  if (cluster) p.cluster_message = protocol::encode_pubsub_message(frame, config_.node_id);
  out.push_back(std::move(p));
}

void Server::set_reading(Outputs& out, DocumentSession& s, ClientHandle c, bool reading) {
  auto* m = s.member(c);
  if (!m || m->can_read == reading) return;
  if (auto it = clients_.find(c); it != clients_.end()) it->second->last = {};
  m->can_read = reading;
  out.push_back(ReaderOutput{c, s.key, reading, s.topic});
}

// The state of a session as one V2 update (merging the pending log into one entry).
Result<Bytes> Server::materialize(DocumentSession& s) {
  if (s.pending.empty()) return Bytes{};
  if (s.pending.size() > 1) {
    std::vector<ByteView> views(s.pending.begin(), s.pending.end());
    auto merged = yjs::merge_updates_v2(views);
    if (!merged) return merged.error();
    s.pending.clear();
    s.pending.push_back(std::move(merged).value());
  }
  return s.pending.front();
}

void Server::on_doc(Turn& t, DocumentSession& s, const Message& m, ByteView frame) {
  if (m.encrypted != s.encrypted) {
    metrics_.refuse(Refusal::encryption_mismatch);
    t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Message encryption and document encryption are mismatched")});
    return;
  }
  if (const auto* step1 = m.get<protocol::SyncStep1>()) {
    auto state = materialize(s);
    if (!state) {
      metrics_.refuse(Refusal::internal);
      t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Failed to read document state: " + state.error().message)});
      return;
    }
    protocol::ContentEncryptedEnvelope envelope;
    Bytes server_sv{0x00};
    if (!state.value().empty()) {
      auto diff = yjs::diff_update_v2(state.value(), step1->state_vector);
      if (!diff) {
        metrics_.refuse(Refusal::invalid_update);
        t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Invalid state vector: " + diff.error().message)});
        return;
      }
      auto sv = yjs::encode_state_vector_from_update_v2(state.value());
      if (!sv) {
        metrics_.refuse(Refusal::internal);
        t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Failed to read document state: " + sv.error().message)});
        return;
      }
      envelope.structure_update = std::move(diff).value();
      envelope.encrypted_sidecars = overlapping(s.sidecars, envelope.structure_update);
      server_sv = std::move(sv).value();
    }
    t.out.push_back(SendOutput{{t.sender}, protocol::encode_message(doc_message(
                                               s, protocol::SyncStep2{2, protocol::encode_content_encrypted(envelope)}))});
    t.out.push_back(SendOutput{{t.sender}, protocol::encode_message(doc_message(s, protocol::SyncStep1{std::move(server_sv)}))});
    ack(t.out, t.sender, m.id);
    return;
  }
  const Bytes* data = nullptr;
  if (const auto* step2 = m.get<protocol::SyncStep2>()) data = &step2->data;
  if (const auto* update = m.get<protocol::DocUpdate>()) data = &update->data;
  if (!data) {  // sync-done (and auth-message in "none" mode)
    ack(t.out, t.sender, m.id);
    return;
  }
  t.client.last = {m.document, &s, epoch_};
  stage_update(t.out, s, t.sender, frame, *data, m.is<protocol::SyncStep2>(), t.client);
}

// An update to the document of the client's last update, by a client that is still a member with
// write access (Client::last says so while the epoch holds): straight to staging.
bool Server::relay_fast(Outputs& out, ClientHandle handle, Client& client, const protocol::FrameView& v, ByteView frame) {
  const Client::Last& last = client.last;
  if (last.epoch != epoch_ || !last.session || v.type != protocol::MessageType::doc || v.document != last.document) {
    return false;
  }
  DocumentSession& s = *last.session;
  if (s.loading || s.tentative || s.encrypted != v.encrypted) return false;
  stage_update(out, s, handle, frame, v.data, v.step2, client);
  return true;
}

// Validates an update (sync-step-2 or update) before anything is relayed or stored: one bad update
// must not poison the document. Then it waits for its batch to commit (memory-only: accepted now).
void Server::stage_update(Outputs& out, DocumentSession& s, ClientHandle sender, ByteView frame, ByteView data, bool step2,
                          const Client& client) {
  ByteView structure;
  Bytes decoded;  // the structure update, when the envelope needed a full decode
  std::optional<protocol::ContentEncryptedEnvelope> full;
  if (auto plain = protocol::peek_plain_envelope(data)) {
    structure = *plain;
  } else {
    auto envelope = protocol::decode_content_encrypted(data, protocol::EnvelopeMode::strict);
    if (!envelope) {
      metrics_.refuse(Refusal::invalid_update);
      // The reference's exact text (clients may match on it); the detail goes to the log.
      out.push_back(SendOutput{{sender}, ack_frame(protocol::message_id(frame), "Failed to decode content-encrypted payload")});
      out.push_back(LogOutput{"info", "invalid_update", {{"client_id", client.id}, {"error", envelope.error().message}}});
      return;
    }
    full = std::move(envelope).value();
    structure = full->structure_update;
  }
  bool empty = true;
  if (!structure.empty()) {
    auto valid = yjs::validate_update_v2(structure);
    if (!valid) {
      metrics_.refuse(Refusal::invalid_update);
      out.push_back(SendOutput{{sender}, ack_frame(protocol::message_id(frame), "Invalid Y.js update: " + valid.error().message)});
      return;
    }
    empty = valid.value().empty && (!full || full->encrypted_sidecars.empty());
  }
  // A record must replace sidecars the document holds (the reference silently ignores one that
  // does not, and the document's sidecars keep growing).
  if (full && full->compaction && !structure.empty() && !compaction_matches(s.sidecars, *full->compaction)) {
    metrics_.refuse(Refusal::invalid_update);
    out.push_back(SendOutput{{sender}, ack_frame(protocol::message_id(frame), "Compaction record does not match the stored sidecars")});
    return;
  }
  // A zero-length structure update stores nothing, sidecars and record included (spec ext. 3.2).
  StoredEntry extra;
  Bytes entry;
  if (full && !structure.empty() && !empty) {
    entry = protocol::encode_content_encrypted(*full);
    extra = entry_from_envelope(std::move(*full));
    decoded = std::move(extra.structure);
    structure = decoded;
  }
  auto put = [&](StagedBatch& b) {
    stage(b, s, sender, frame, structure, step2, empty);
    b.items.back().sidecars = std::move(extra.sidecars);
    b.items.back().compaction = std::move(extra.compaction);
    b.items.back().entry = std::move(entry);
  };
  if (config_.persist) {
    if (!open_batch_) open_batch_ = new_batch();
    put(*open_batch_);
    ++s.in_flight;
    return;
  }
  auto b = new_batch();
  put(*b);
  group(*b);
  for (Group& g : b->groups) accept_group(out, *b, g);
  b->clear();
  spare_batches_.push_back(std::move(b));
}

void Server::stage(StagedBatch& b, DocumentSession& s, ClientHandle sender, ByteView frame, ByteView structure,
                   bool step2, bool empty) {
  Staged st;
  st.session = &s;
  st.sender = sender;
  st.id = protocol::message_id_chars(frame);
  st.frame = b.append(frame);
  if (structure.data >= frame.data && structure.data + structure.size <= frame.data + frame.size) {
    st.structure = {st.frame.off + static_cast<std::size_t>(structure.data - frame.data), structure.size};
  } else {
    st.structure = b.append(structure);
  }
  st.step2 = step2;
  st.empty = empty;
  b.items.push_back(std::move(st));
}

std::unique_ptr<Server::StagedBatch> Server::new_batch() {
  if (spare_batches_.empty()) return std::make_unique<StagedBatch>();
  auto b = std::move(spare_batches_.back());
  spare_batches_.pop_back();
  return b;
}

// Groups a batch's updates by document (in order of each document's first update) and decides,
// per plaintext document, what storage appends: one entry, the merge of what its updates carry.
void Server::group(StagedBatch& b) {
  const std::uint64_t tag = ++group_tag_;
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    DocumentSession& s = *b.items[i].session;
    if (s.group_tag != tag) {
      s.group_tag = tag;
      s.group_index = b.groups.size();
      b.groups.emplace_back();
      b.groups.back().session = &s;
    }
    b.groups[s.group_index].items.push_back(i);
  }
  for (Group& g : b.groups) {
    bool plain = !g.session->encrypted;
    for (std::size_t i : g.items) plain = plain && b.items[i].sidecars.empty();
    g.coalesce = plain && coalesce_group(b, g);
  }
}

// Merges a plaintext group: each sender's updates into one (the relay frames are made from these,
// never from single updates again), then everything into the one entry storage appends. Merging
// per sender first keeps the inputs of every later merge few and large.
bool Server::coalesce_group(StagedBatch& b, Group& g) {
  std::vector<ByteView> all;
  for (std::size_t i : g.items) {
    const Staged& st = b.items[i];
    if (st.empty) continue;
    ++g.structures;
    if (st.step2) {
      g.step2s = true;
      all.push_back(b.view(st.structure));
      continue;
    }
    auto part = std::find_if(g.parts.begin(), g.parts.end(), [&](const Part& p) { return p.sender == st.sender; });
    if (part == g.parts.end()) part = g.parts.insert(g.parts.end(), Part{st.sender, {}, {}, {}});
    part->items.push_back(i);
  }
  for (Part& p : g.parts) {
    if (p.items.size() == 1) {
      p.update = b.view(b.items[p.items[0]].structure);
    } else {
      std::vector<ByteView> updates;
      for (std::size_t i : p.items) updates.push_back(b.view(b.items[i].structure));
      auto merged = yjs::merge_updates_v2(updates);
      if (!merged) return false;  // not expected for validated updates: then every update goes alone
      p.merged = std::move(merged).value();
      p.update = p.merged;
    }
    all.push_back(p.update);
  }
  if (all.size() >= 2) {
    auto merged = yjs::merge_updates_v2(all);
    if (!merged) return false;
    g.merged = std::move(merged).value();
    g.state = g.merged;
  } else if (all.size() == 1) {
    g.state = all[0];
  }
  return true;
}

// A committed (or memory-only) group: into the state, out to the readers, acks to the senders.
void Server::accept_group(Outputs& out, StagedBatch& b, Group& g) {
  DocumentSession& s = *g.session;
  if (!g.coalesce) {
    for (std::size_t i : g.items) accept_update(out, s, b, b.items[i]);
    after_accept(out, s);
    count_group(out, b, g);
    return;
  }
  relay_coalesced(out, s, b, g);
  if (!g.merged.empty()) {
    s.pending.push_back(std::move(g.merged));
  } else if (g.structures > 0) {
    s.pending.push_back(g.state.to_bytes());
  }
  if (g.stored) ++s.stored_entries;
  for (std::size_t i : g.items) {
    const Staged& st = b.items[i];
    if (!clients_.count(st.sender)) continue;
    if (st.step2) out.push_back(SendOutput{{st.sender}, protocol::encode_message(doc_message(s, protocol::SyncDone{}))});
    out.push_back(AckOutput{st.sender, st.id});
  }
  after_accept(out, s);
  count_group(out, b, g);
}

// Automatic milestones count the doc updates (not sync-step-2s) a group applied, empty ones
// included (spec ext. 2.7); a group makes at most one milestone, of its state once applied.
void Server::count_group(Outputs& out, StagedBatch& b, Group& g) {
  if (config_.milestone_triggers.empty() || !config_.milestones) return;
  bool fired = false;
  std::optional<std::string> name;
  for (std::size_t i : g.items) {
    if (!b.items[i].step2) count_write(*g.session, fired, name);
  }
  if (fired) automatic_milestone(out, *g.session, std::move(name));
}

// Readers get one frame for a batch's updates to a document: sync-step-2s and empty updates go
// verbatim, the others, when there are several, as their merge. No reader gets its own updates
// back: readers who sent none get the merge of all of them, each sender the merge of the others'.
void Server::relay_coalesced(Outputs& out, DocumentSession& s, StagedBatch& b, Group& g) {
  for (std::size_t i : g.items) {
    const Staged& st = b.items[i];
    if (st.step2 || st.empty) relay(out, s, st.sender, b.view(st.frame));
  }
  if (g.parts.empty()) return;
  const Staged& first = b.items[g.parts[0].items[0]];
  if (g.parts.size() == 1 && g.parts[0].items.size() == 1) return relay(out, s, first.sender, b.view(first.frame));
  auto frame_of = [&](ByteView structure) {
    return protocol::encode_message(doc_message(s, protocol::DocUpdate{2, protocol::wrap_plain_update(structure)}));
  };
  // What one reader gets: the parts of everyone but `without` (0: all of them).
  auto frame_without = [&](ClientHandle without) -> Result<Bytes> {
    std::vector<ByteView> parts;
    const Part* only = nullptr;
    for (const Part& p : g.parts) {
      if (p.sender != without) parts.push_back(p.update), only = &p;
    }
    if (parts.size() == 1 && only->items.size() == 1) return b.view(b.items[only->items[0]].frame).to_bytes();
    if (parts.size() == 1) return frame_of(parts[0]);
    if (without == 0 && !g.step2s) return frame_of(g.merged);
    auto merged = yjs::merge_updates_v2(parts);
    if (!merged) return merged.error();
    return frame_of(merged.value());
  };
  std::uint32_t readers = 0;
  for (const auto& member : s.members) {
    bool sent = std::any_of(g.parts.begin(), g.parts.end(), [&](const Part& p) { return p.sender == member.client; });
    readers += member.can_read && !sent;
  }
  bool others = readers > 0;
  const bool to_cluster = !config_.node_id.empty();
  if (others || to_cluster) {
    auto frame = frame_without(0);
    if (!frame) return;  // not expected: the merges of the same parts succeeded at flush
    PublishOutput p{s.key, g.parts[0].sender, std::move(frame).value(), others, to_cluster, {}, {}, s.topic};
    if (to_cluster) p.cluster_message = protocol::encode_pubsub_message(p.frame, config_.node_id);
    for (std::size_t k = 1; k < g.parts.size(); ++k) p.also_except.push_back(g.parts[k].sender);
    p.readers = readers;
    out.push_back(std::move(p));
  }
  if (g.parts.size() < 2) return;
  for (const Part& part : g.parts) {
    const auto* member = s.member(part.sender);
    if (!member || !member->can_read || !clients_.count(part.sender)) continue;
    auto frame = frame_without(part.sender);
    if (frame) out.push_back(SendOutput{{part.sender}, std::move(frame).value()});
  }
}

// One update on its own (encrypted documents: relayed verbatim, sidecars kept).
void Server::accept_update(Outputs& out, DocumentSession& s, StagedBatch& b, Staged& st) {
  ByteView structure = b.view(st.structure);
  if (!structure.empty() && !st.empty) {
    s.pending.push_back(structure.to_bytes());
    apply_sidecars(s.sidecars, std::move(st.sidecars), st.compaction);
  }
  if (config_.persist && !st.empty) ++s.stored_entries;
  relay(out, s, st.sender, b.view(st.frame));
  if (clients_.count(st.sender)) {
    if (st.step2) out.push_back(SendOutput{{st.sender}, protocol::encode_message(doc_message(s, protocol::SyncDone{}))});
    out.push_back(AckOutput{st.sender, st.id});
  }
}

// Merging rewrites the whole document, so it waits until what came since the last merge is at
// least half as large as what was merged then (or the count grew far past the threshold): the
// cost per update stays bounded however large the document grows, instead of growing with it.
namespace {
constexpr std::size_t kMergeCountCap = 16;  // x the threshold: merge whatever the sizes
bool worth_merging(std::size_t count, std::size_t threshold, std::size_t added_bytes, std::size_t base_bytes) {
  return count >= threshold && (added_bytes * 2 >= base_bytes || count >= kMergeCountCap * threshold);
}
}  // namespace

// After accepted updates: bound the in-memory log, ask storage to compact when it grew.
void Server::after_accept(Outputs& out, DocumentSession& s) {
  if (s.pending.size() >= config_.merge_after) {
    std::size_t added = 0;
    for (std::size_t i = 1; i < s.pending.size(); ++i) added += s.pending[i].size();
    if (worth_merging(s.pending.size(), config_.merge_after, added, s.pending.front().size())) {
      if (auto merged = materialize(s); !merged) {
        out.push_back(LogOutput{"error", "merge_failed", {{"document_id", s.key}, {"error", merged.error().message}}});
      }
    }
  }
  if (config_.persist && worth_merging(s.stored_entries, config_.compact_after, s.stored_bytes - s.compacted_bytes, s.compacted_bytes)) {
    out.push_back(CompactOutput{s.key});
    s.stored_entries = 1;
    s.compacted_bytes = s.stored_bytes;  // at most this much once compacted
  }
}

Batch Server::flush() {
  Batch b;
  if (!open_batch_ || open_batch_->items.empty()) return b;
  b.id = next_batch_++;
  StagedBatch& sb = *open_batch_;
  group(sb);
  for (Group& g : sb.groups) {
    const std::string& key = g.session->key;
    if (g.coalesce) {
      if (g.structures == 0) continue;
      b.writes.push_back({key, protocol::wrap_plain_update(g.state)});
      g.session->stored_bytes += b.writes.back().entry.size();
      g.stored = true;
      continue;
    }
    for (std::size_t i : g.items) {
      const Staged& st = sb.items[i];
      if (st.empty) continue;
      b.writes.push_back({key, st.entry.empty() ? protocol::wrap_plain_update(sb.view(st.structure)) : st.entry});
      g.session->stored_bytes += b.writes.back().entry.size();
    }
  }
  sb.written_entries = b.writes.size();
  sb.written_bytes = 0;
  for (const auto& w : b.writes) sb.written_bytes += w.entry.size();
  in_flight_.emplace(b.id, std::move(open_batch_));
  return b;
}

Outputs Server::committed(BatchId batch, bool ok, const std::string& error) {
  Outputs out;
  auto it = in_flight_.find(batch);
  if (it == in_flight_.end()) return out;
  std::unique_ptr<StagedBatch> sb = std::move(it->second);
  in_flight_.erase(it);
  if (ok) {
    ++metrics_.batches_committed;
    metrics_.entries_written += sb->written_entries;
    metrics_.bytes_written += sb->written_bytes;
  } else {
    ++metrics_.batches_failed;
    out.push_back(LogOutput{"error", "storage_write_failed", {{"batch", batch}, {"updates", sb->items.size()}, {"error", error}}});
  }
  for (Group& g : sb->groups) {
    DocumentSession& s = *g.session;  // in-flight documents stay loaded
    s.in_flight -= static_cast<std::uint32_t>(g.items.size());
    if (ok) {
      accept_group(out, *sb, g);
    } else {
      for (std::size_t i : g.items) {
        const Staged& st = sb->items[i];
        if (clients_.count(st.sender)) {
          metrics_.refuse(Refusal::storage_failed);
          out.push_back(SendOutput{{st.sender}, ack_frame(std::string(st.id.data(), st.id.size()), "Storage write failed: " + error)});
        }
      }
    }
    maybe_unload(out, s);
  }
  sb->clear();
  spare_batches_.push_back(std::move(sb));
  count(out);
  return out;
}

Outputs Server::loaded(const std::string& key, const std::vector<ByteView>& entries) {
  Outputs out;
  auto it = sessions_.find(key);
  if (it == sessions_.end() || !it->second->loading) return out;
  DocumentSession& s = *it->second;
  std::size_t skipped = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto e = decode_entry(entries[i]);
    if (!e) {
      ++skipped;
      out.push_back(LogOutput{"error", "storage_entry_invalid", {{"document_id", key}, {"index", i}, {"error", e.error().message}}});
      continue;
    }
    if (!e.value().structure.empty()) s.pending.push_back(std::move(e.value().structure));
    apply_sidecars(s.sidecars, std::move(e.value().sidecars), e.value().compaction);
  }
  s.stored_entries = static_cast<std::uint32_t>(entries.size());
  for (const auto& e : entries) s.stored_bytes += e.size;
  s.compacted_bytes = entries.empty() ? 0 : entries.front().size;  // the last compaction's entry comes first
  s.loading = false;
  ++metrics_.documents_loaded;
  if (auto merged = materialize(s); !merged) {
    out.push_back(LogOutput{"error", "merge_failed", {{"document_id", key}, {"error", merged.error().message}}});
  }
  out.push_back(LogOutput{"info", "document_loaded", {{"document_id", key}, {"entries", entries.size()}, {"skipped", skipped}}});
  if (config_.persist && s.stored_entries >= config_.compact_after) {
    out.push_back(CompactOutput{key});
    s.stored_entries = 1;
    s.compacted_bytes = s.stored_bytes;
  }
  // The frames that waited for the load, in arrival order (they passed the permission gate).
  std::deque<DocumentSession::Queued> queue = std::move(s.queue);
  s.queue.clear();
  s.queued_bytes = 0;
  for (auto& q : queue) {
    auto c = clients_.find(q.client);
    if (c != clients_.end()) deliver(out, q.client, *c->second, q.frame, false);
  }
  if (auto again = sessions_.find(key); again != sessions_.end()) maybe_unload(out, *again->second);
  count(out);
  return out;
}

Outputs Server::load_failed(const std::string& key, const std::string& error) {
  Outputs out;
  auto it = sessions_.find(key);
  if (it == sessions_.end() || !it->second->loading) return out;
  DocumentSession& s = *it->second;
  ++metrics_.document_load_failures;
  out.push_back(LogOutput{"error", "storage_load_failed", {{"document_id", key}, {"error", error}}});
  for (const auto& q : s.queue) {
    if (clients_.count(q.client)) {
      metrics_.refuse(Refusal::load_failed);
      out.push_back(SendOutput{{q.client}, ack_frame(protocol::message_id(q.frame), "Failed to load document: " + error, 1000)});
    }
  }
  // Forget the session entirely: the next message retries the load.
  for (const auto& m : s.members) {
    auto c = clients_.find(m.client);
    if (c == clients_.end()) continue;
    auto& keys = c->second->sessions;
    keys.erase(std::remove(keys.begin(), keys.end(), key), keys.end());
  }
  if (!config_.node_id.empty()) out.push_back(ChannelOutput{key, false});
  ++epoch_;
  sessions_.erase(it);
  count(out);
  return out;
}

void Server::maybe_unload(Outputs& out, DocumentSession& s) {
  if (!config_.persist || !s.members.empty() || s.in_flight > 0 || s.loading || !s.queue.empty() || busy(s)) return;
  if (config_.unload_after_ms > 0) {
    if (s.empty_since_ms < 0) s.empty_since_ms = now_ms_;
    return;
  }
  ++metrics_.documents_unloaded;
  out.push_back(LogOutput{"info", "document_unloaded", {{"document_id", s.key}}});
  if (!config_.node_id.empty()) out.push_back(ChannelOutput{s.key, false});
  ++epoch_;
  sessions_.erase(s.key);
}

Outputs Server::tick(double now_ms) {
  Outputs out;
  double before = last_refill_ms_ < 0 ? now_ms : last_refill_ms_;
  now_ms_ = std::max(now_ms_, now_ms);
  last_refill_ms_ = now_ms_;
  if (now_ms_ > before) refill(now_ms_ - before);
  if (!config_.node_id.empty()) presence_tick(out);
  expire_calls(out);
  for (auto& [handle, c] : clients_) {
    if (c->expired || c->exp_ms <= 0 || now_ms_ < c->exp_ms) continue;
    c->expired = true;
    out.push_back(LogOutput{"info", "token_expired", {{"client_id", c->id}}});
    out.push_back(CloseOutput{handle, static_cast<int>(CloseCode::token_expired), "token expired"});
  }
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    DocumentSession& s = *it->second;
    if (s.empty_since_ms >= 0 && s.members.empty() && s.in_flight == 0 && !s.loading && !busy(s) &&
        now_ms_ - s.empty_since_ms >= static_cast<double>(config_.unload_after_ms)) {
      ++metrics_.documents_unloaded;
      out.push_back(LogOutput{"info", "document_unloaded", {{"document_id", s.key}}});
      if (!config_.node_id.empty()) out.push_back(ChannelOutput{s.key, false});
      ++epoch_;
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  count(out);
  return out;
}

std::optional<double> Server::next_deadline() const {
  std::optional<double> next;
  auto consider = [&](double at) {
    if (!next || at < *next) next = at;
  };
  for (const auto& [handle, c] : clients_) {
    if (!c->expired && c->exp_ms > 0) consider(c->exp_ms);
  }
  for (const auto& [key, s] : sessions_) {
    if (s->empty_since_ms >= 0) consider(s->empty_since_ms + static_cast<double>(config_.unload_after_ms));
  }
  if (!config_.node_id.empty() && !sessions_.empty()) consider(last_heartbeat_ms_ + static_cast<double>(config_.heartbeat_ms));
  for (const auto& [id, call] : calls_) {
    if (call.deadline > 0) consider(call.deadline);
  }
  return next;
}

Outputs Server::permission(ClientHandle handle, const std::string& document, Access access) {
  Outputs out;
  auto it = clients_.find(handle);
  if (it == clients_.end()) return out;
  Client& c = *it->second;
  c.last = {};  // decisions change
  c.decide(document, access);
  // Already a member (a refresh re-asked): relays follow the new read bit.
  if (auto s = sessions_.find(session_key(c.room, document)); s != sessions_.end()) {
    set_reading(out, *s->second, handle, can(access, Access::read));
  }
  // A restored connection asked about by rejoin(): readers join now.
  if (auto r = std::find(c.rejoining.begin(), c.rejoining.end(), document); r != c.rejoining.end()) {
    c.rejoining.erase(r);
    if (can(access, Access::read)) {
      Turn t{handle, c, out};
      rejoin_session(t, document);
    }
  }
  c.awaiting = false;
  resume_client(out, handle);
  count(out);
  return out;
}

void Server::resume_client(Outputs& out, ClientHandle handle) {
  auto it = clients_.find(handle);
  while (it != clients_.end() && !it->second->awaiting && it->second->has_waiting()) {
    Client& c = *it->second;
    Bytes frame = c.next_waiting();
    c.waiting_bytes -= frame.size();
    deliver(out, handle, c, frame, false);
    it = clients_.find(handle);
  }
}

// In-band token refresh: a client auth-message with permission "allowed" whose reason is a new
// token. Verified like an upgrade token; it must name the same user and room. Permissions are
// decided again from its claims and the connection's expiry moves to the new token's.
void Server::on_auth(Turn& t, const Message& m) {
  const auto& token_text = m.get<protocol::AuthMessage>()->reason;
  auto refuse = [&](const std::string& why) {
    metrics_.refuse(Refusal::token_refused);
    t.out.push_back(LogOutput{"info", "token_refresh_refused", {{"client_id", t.client.id}, {"error", why}}});
    t.out.push_back(SendOutput{{t.sender}, ack_frame(m.id, "Token refresh refused: " + why)});
  };
  if (config_.tokens.secret.empty()) return refuse("the server has no token secret");
  token::VerifyOptions vo;
  vo.secret = config_.tokens.secret;
  vo.issuer = config_.tokens.issuer;
  vo.audience = config_.tokens.audience;
  auto v = token::verify(token_text, vo, now_ms_ / 1000.0);
  if (!v.valid) return refuse(v.error);
  if (string_field(v.payload, "userId") != t.client.user_id || string_field(v.payload, "room") != t.client.room) {
    return refuse("the new token is for another user or room");
  }
  adopt_claims(t.client, std::move(v.payload));
  // Memberships keep going with the new decisions (asked again in callback mode).
  for (const auto& key : t.client.sessions) {
    auto s = sessions_.find(key);
    if (s == sessions_.end()) continue;
    if (!s->second->member(t.sender)) continue;
    if (config_.permissions == PermissionMode::token) {
      Access a = decide_token_access(t.client, s->second->document);
      t.client.decide(s->second->document, a);
      set_reading(t.out, *s->second, t.sender, can(a, Access::read));
    }
  }
  t.out.push_back(LogOutput{"info", "token_refreshed", {{"client_id", t.client.id}, {"exp_ms", t.client.exp_ms}}});
  ack(t.out, t.sender, m.id);
}

void Server::on_presence(Turn& t, DocumentSession& s, const Message& m) {
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
    PresenceEntry mine{t.sender, announce->awareness_id};
    s.roster.announce(t.sender, announce->awareness_id);
    // Peers that hold an announced id learn about the newcomer; the sender gets the whole roster.
    SendOutput to_peers;
    for (const auto& member : s.members) {
      if (member.client != t.sender && member.can_read && s.roster.holds_any(member.client)) {
        to_peers.to.push_back(member.client);
      }
    }
    for (const auto& e : s.roster.entries()) t.out.push_back(SendOutput{{t.sender}, entry_message(e, true)});
    for (const auto& [node, remote] : s.remote) {
      for (const auto& pc : remote.clients) {
        Message msg;
        msg.document = s.document;
        msg.payload = protocol::PresenceJoin{pc};
        t.out.push_back(SendOutput{{t.sender}, protocol::encode_message(msg)});
      }
    }
    Bytes join_frame = entry_message(mine, true);
    if (!config_.node_id.empty()) publish(t.out, s.key, 0, join_frame, false, true);
    if (!to_peers.to.empty()) {
      to_peers.frame = std::move(join_frame);
      t.out.push_back(std::move(to_peers));
    }
    return;
  }
  if (const auto* unannounce = m.get<protocol::PresenceUnannounce>()) {
    if (!s.roster.unannounce(t.sender, unannounce->awareness_id)) return;
    relay(t.out, s, 0, entry_message({t.sender, unannounce->awareness_id}, false));
  }
  // join / leave / heartbeat from clients are server-to-client messages: ignored.
}

// Spec ext. 1.4: true when the frame is answered now (the caller acks it); false when the host's
// handler or the milestone storage answers it later (the ack follows that answer).
bool Server::on_rpc(Turn& t, DocumentSession* s, const Message& m) {
  const auto* rpc = m.get<protocol::Rpc>();
  if (rpc->request_type == protocol::RpcRequestType::response) return true;  // acked, ignored
  const bool success = std::holds_alternative<protocol::RpcSuccess>(rpc->result);
  const RpcMethodConfig* app = app_method(rpc->method);
  if (rpc->request_type == protocol::RpcRequestType::stream) {
    if (!success || !app || !app->stream_handler) return true;
    start_call(t, s, m, true);
    return false;
  }
  if (!success) return true;  // a request carrying the error branch: ack only
  if (app) {
    start_call(t, s, m, false);
    return false;
  }
  if (s && config_.milestones && is_milestone_method(rpc->method)) {
    MilestoneJob job;
    job.client = t.sender;
    job.method = rpc->method;
    job.request_id = m.id;
    job.encrypted = m.encrypted;
    job.payload = std::get<protocol::RpcSuccess>(rpc->result).payload;
    job.user_id = t.client.user_id;
    s->milestones.waiting.push_back(std::move(job));
    run_milestones(t.out, *s);
    return false;
  }
  send_rpc(t.out, t.sender, m.document, m.encrypted, rpc->method, protocol::RpcRequestType::response, m.id,
           protocol::RpcError{501, "Unknown RPC method: " + rpc->method,
                              lib0::Any::object({{"method", lib0::Any::string(rpc->method)}})});
  return true;
}

void Server::start_call(Turn& t, DocumentSession* s, const Message& m, bool stream) {
  const auto* rpc = m.get<protocol::Rpc>();
  CallId id = next_call_++;
  if (next_call_ == 0) next_call_ = 1;
  PendingCall c;
  c.client = t.sender;
  c.method = rpc->method;
  c.document = m.document;
  c.reply_id = stream ? rpc->original_request_id.value_or(m.id) : m.id;
  c.ack_id = m.id;
  c.encrypted = m.encrypted;
  if (config_.rpc_timeout_ms > 0) c.deadline = now_ms_ + static_cast<double>(config_.rpc_timeout_ms);
  calls_.emplace(id, std::move(c));
  RpcCallOutput o;
  o.call = id;
  o.client = t.sender;
  o.stream = stream;
  o.method = rpc->method;
  o.document = m.document;
  o.document_id = s ? s->document_id : (t.client.room.empty() ? m.document : t.client.room + "/" + m.document);
  o.message_id = m.id;
  o.payload = lib0::encode_any(std::get<protocol::RpcSuccess>(rpc->result).payload);
  o.encrypted = m.encrypted;
  o.session_encrypted = s ? s->encrypted : m.encrypted;
  t.out.push_back(std::move(o));
}

bool Server::connected(ClientHandle c) const { return clients_.count(c) > 0; }

void Server::leave(Outputs& out, ClientHandle c, DocumentSession& s) {
  if (auto it = clients_.find(c); it != clients_.end()) it->second->last = {};
  if (auto* m = s.member(c); m && m->can_read) out.push_back(ReaderOutput{c, s.key, false, s.topic});
  s.members.erase(std::remove_if(s.members.begin(), s.members.end(),
                                 [&](const DocumentSession::Member& m) { return m.client == c; }),
                  s.members.end());
  // Its milestone requests that wait for their turn go with it.
  auto& jobs = s.milestones.waiting;
  jobs.erase(std::remove_if(jobs.begin(), jobs.end(), [&](const MilestoneJob& j) { return j.client == c; }), jobs.end());
  // Frames of this client waiting for the load are dropped with it.
  for (auto q = s.queue.begin(); q != s.queue.end();) {
    if (q->client == c) {
      s.queued_bytes -= q->frame.size();
      q = s.queue.erase(q);
    } else {
      ++q;
    }
  }
  std::vector<std::uint64_t> gone = s.roster.remove_client(c);
  const Client& owner = *clients_.at(c);
  for (auto id : gone) {
    Message msg;
    msg.document = s.document;
    msg.payload = protocol::PresenceLeave{protocol::PresenceClient{id, owner.id, owner.user_id, lib0::Any::object()}};
    relay(out, s, 0, protocol::encode_message(msg));
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
  ++metrics_.clients_disconnected;
  // Calls its handlers are still running: their answers are dropped when they come.
  for (auto call = calls_.begin(); call != calls_.end();) {
    call = call->second.client == handle ? calls_.erase(call) : std::next(call);
  }
  if (config_.info_logs) out.push_back(LogOutput{"info", "client_disconnect", {{"client_id", it->second->id}}});
  if (auto u = users_.find(it->second->user_id); u != users_.end() && --u->second.connections == 0) users_.erase(u);
  std::vector<std::string> keys = std::move(it->second->sessions);
  clients_.erase(it);
  for (const auto& key : keys) {
    auto s = sessions_.find(key);
    if (s != sessions_.end()) maybe_unload(out, *s->second);
  }
  count(out);
  return out;
}

Outputs Server::rejoin(ClientHandle handle, const std::string& document) {
  Outputs out;
  auto it = clients_.find(handle);
  if (it == clients_.end() || document.empty()) return out;
  Turn t{handle, *it->second, out};
  if (config_.permissions != PermissionMode::none) {
    const Access* cached = t.client.decision(document);
    Access a = Access::none;
    if (cached) {
      a = *cached;
    } else if (config_.permissions == PermissionMode::token) {
      a = decide_token_access(t.client, document);
      t.client.decide(document, a);
    } else {
      // Callback mode without a decision: the application is asked now (a listener may never
      // send again), with the presence announcement a rejoin stands for as the message; the
      // answer joins it. Frames of the client do not wait for this answer.
      auto& r = t.client.rejoining;
      if (std::find(r.begin(), r.end(), document) == r.end()) {
        r.push_back(document);
        out.push_back(PermissionOutput{handle, document, protocol::encode_message(rejoin_message(document))});
      }
      count(out);
      return out;
    }
    if (!can(a, Access::read)) return out;
  }
  rejoin_session(t, document);
  count(out);
  return out;
}

// What a rejoin stands for: a presence announcement (non-authoritative: the document's
// encryption mode stays open).
Message Server::rejoin_message(const std::string& document) {
  Message m;
  m.document = document;
  m.payload = protocol::PresenceAnnounce{};
  return m;
}

void Server::rejoin_session(Turn& t, const std::string& document) {
  Message m = rejoin_message(document);
  if (DocumentSession* s = session_for(t, m)) join(t, *s, m);
}

// Cluster presence: this node's roster goes out as heartbeats; nodes that fell silent leave.
void Server::presence_tick(Outputs& out) {
  if (now_ms_ - last_heartbeat_ms_ >= static_cast<double>(config_.heartbeat_ms)) {
    last_heartbeat_ms_ = now_ms_;
    for (auto& [key, s] : sessions_) {
      protocol::PresenceHeartbeat hb;
      for (const auto& e : s->roster.entries()) {
        const Client& owner = *clients_.at(e.client);
        hb.clients.push_back({e.awareness_id, owner.id, owner.user_id, lib0::Any::object()});
      }
      if (hb.clients.empty()) continue;
      Message msg;
      msg.document = s->document;
      msg.payload = std::move(hb);
      publish(out, key, 0, protocol::encode_message(msg), false, true);
    }
  }
  for (auto& [key, s] : sessions_) {
    for (auto node = s->remote.begin(); node != s->remote.end();) {
      if (now_ms_ - node->second.last_seen_ms < static_cast<double>(config_.presence_timeout_ms)) {
        ++node;
        continue;
      }
      out.push_back(LogOutput{"info", "cluster_node_expired", {{"document_id", key}, {"node_id", node->first}}});
      for (const auto& pc : node->second.clients) {
        Message msg;
        msg.document = s->document;
        msg.payload = protocol::PresenceLeave{pc};
        relay(out, *s, 0, protocol::encode_message(msg), false);
      }
      node = s->remote.erase(node);
    }
  }
}

void Server::on_remote_presence(Outputs& out, DocumentSession& s, const std::string& node, const Message& m) {
  auto& remote = s.remote[node];
  remote.last_seen_ms = now_ms_;
  auto same = [](const protocol::PresenceClient& a, const protocol::PresenceClient& b) {
    return a.awareness_id == b.awareness_id && a.client_id == b.client_id;
  };
  auto send_join = [&](const protocol::PresenceClient& pc) {
    Message msg;
    msg.document = s.document;
    msg.payload = protocol::PresenceJoin{pc};
    SendOutput to;
    for (const auto& member : s.members) {
      if (member.can_read && s.roster.holds_any(member.client)) to.to.push_back(member.client);
    }
    if (to.to.empty()) return;
    to.frame = protocol::encode_message(msg);
    out.push_back(std::move(to));
  };
  auto send_leave = [&](const protocol::PresenceClient& pc) {
    Message msg;
    msg.document = s.document;
    msg.payload = protocol::PresenceLeave{pc};
    relay(out, s, 0, protocol::encode_message(msg), false);
  };
  auto find = [&](const protocol::PresenceClient& pc) {
    return std::find_if(remote.clients.begin(), remote.clients.end(), [&](const auto& x) { return same(x, pc); });
  };
  if (const auto* join = m.get<protocol::PresenceJoin>()) {
    if (find(join->client) == remote.clients.end()) remote.clients.push_back(join->client);
    send_join(join->client);
  } else if (const auto* leave = m.get<protocol::PresenceLeave>()) {
    auto it = find(leave->client);
    if (it != remote.clients.end()) remote.clients.erase(it);
    send_leave(leave->client);
  } else if (const auto* hb = m.get<protocol::PresenceHeartbeat>()) {
    for (const auto& pc : hb->clients) {
      if (find(pc) == remote.clients.end()) send_join(pc);
    }
    for (const auto& pc : remote.clients) {
      bool kept = std::any_of(hb->clients.begin(), hb->clients.end(), [&](const auto& x) { return same(x, pc); });
      if (!kept) send_leave(pc);
    }
    remote.clients = hb->clients;
  }
}

Outputs Server::remote(const std::string& key, ByteView message) {
  Outputs out;
  auto it = sessions_.find(key);
  if (config_.node_id.empty() || it == sessions_.end()) return out;  // not ours (any more)
  auto envelope = protocol::decode_pubsub_message(message);
  if (!envelope || envelope.value().source_id == config_.node_id) return out;
  const std::string& node = envelope.value().source_id;
  ByteView frame = envelope.value().message;
  auto decoded = decode_frame(frame);
  if (!decoded) {
    out.push_back(LogOutput{"warn", "cluster_message_invalid", {{"document_id", key}, {"node_id", node}, {"error", decoded.error().message}}});
    return out;
  }
  DocumentSession& s = *it->second;
  const Message& m = decoded.value();
  switch (m.type()) {
    case protocol::MessageType::doc: {
      const Bytes* data = nullptr;
      if (const auto* step2 = m.get<protocol::SyncStep2>()) data = &step2->data;
      if (const auto* update = m.get<protocol::DocUpdate>()) data = &update->data;
      if (!data) return out;
      auto e = decode_entry(*data);
      if (!e || e.value().structure.empty()) return out;
      // Stored by the node that accepted it; here it joins the state (a load that races with it
      // may bring it twice: merging is idempotent).
      s.pending.push_back(std::move(e.value().structure));
      apply_sidecars(s.sidecars, std::move(e.value().sidecars), e.value().compaction);
      if (!s.loading) relay(out, s, 0, frame, false);
      break;
    }
    case protocol::MessageType::awareness:
      relay(out, s, 0, frame, false);
      break;
    case protocol::MessageType::presence:
      on_remote_presence(out, s, node, m);
      break;
    default:
      break;
  }
  count(out);
  return out;
}

void Server::count(const Outputs& out, std::size_t from) {
  for (std::size_t i = from; i < out.size(); ++i) {
    const Output& o = out[i];
    if (const auto* send = std::get_if<SendOutput>(&o)) {
      metrics_.count_out(send->frame, send->to.size());
    } else if (std::holds_alternative<AckOutput>(o)) {
      ++metrics_.acks;
      ++metrics_.sent[static_cast<std::size_t>(FrameType::ack)];
      metrics_.bytes_sent += protocol::kAckFrameSize;
    } else if (const auto* pub = std::get_if<PublishOutput>(&o)) {
      if (pub->local) metrics_.count_out(pub->frame, pub->readers);
    } else if (const auto* close = std::get_if<CloseOutput>(&o)) {
      if (close->code == static_cast<int>(CloseCode::policy_violation)) {
        ++metrics_.closes_1008;
      } else if (close->code == static_cast<int>(CloseCode::token_expired)) {
        ++metrics_.closes_4401;
      } else {
        ++metrics_.closes_other;
      }
    } else if (const auto* log = std::get_if<LogOutput>(&o)) {
      if (log->level == "error") ++metrics_.errors;
    }
  }
}

Bytes Server::document_state(const std::string& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return {};
  auto state = materialize(*it->second);
  return state ? std::move(state).value() : Bytes{};
}

Result<Bytes> Server::merge_entries(const std::vector<ByteView>& entries, Outputs& out) const {
  std::vector<Bytes> structures;
  std::vector<Sidecar> sidecars;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto e = decode_entry(entries[i]);
    if (!e) {
      out.push_back(LogOutput{"error", "storage_entry_invalid", {{"index", i}, {"during", "compaction"}, {"error", e.error().message}}});
      continue;
    }
    if (!e.value().structure.empty()) structures.push_back(std::move(e.value().structure));
    apply_sidecars(sidecars, std::move(e.value().sidecars), e.value().compaction);
  }
  Bytes structure;
  if (structures.size() == 1) {
    structure = std::move(structures.front());
  } else if (!structures.empty()) {
    std::vector<ByteView> views(structures.begin(), structures.end());
    auto m = yjs::merge_updates_v2(views);
    if (!m) return m.error();
    structure = std::move(m).value();
  }
  return encode_merged_entry(structure, sidecars);
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
  v.reply = ack_frame(protocol::message_id(frame), v.error);
  return v;
}

}  // namespace tp::server
