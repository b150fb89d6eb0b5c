// RPC answers from the host's handlers, and the built-in milestone methods (spec extensions
// sections 1 and 2). The dispatch of incoming rpc frames (Server::on_rpc) is in server.cpp.
//
// Milestones are decided here, synchronously, on the document's committed milestones: the host
// only loads them (MilestoneLoadOutput), stores what is decided (MilestoneStoreOutput) and reads
// snapshots. One operation per document is out at a time; later requests wait for its answer,
// so each decision sees everything committed before it and answers go out in request order.
#include <algorithm>

#include "session.hpp"
#include "tp/protocol/envelope.hpp"
#include "tp/server/server.hpp"

namespace tp::server {

using protocol::Message;
using protocol::RpcError;
using protocol::RpcRequestType;
using protocol::RpcSuccess;

namespace {

void ack_id(Outputs& out, ClientHandle to, const std::string& id) {
  AckOutput a{to, {}};
  std::copy_n(id.begin(), std::min(id.size(), a.id.size()), a.id.begin());
  out.push_back(a);
}

// The value of `key` in an `any` object as JS reads it (the last of duplicated keys), or null.
const lib0::Any* field(const lib0::Any& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const lib0::Any* found = nullptr;
  for (const auto& [k, v] : object.as_object()) {
    if (k == key) found = &v;
  }
  return found;
}

bool is_string(const lib0::Any* v) { return v && v->kind() == lib0::AnyKind::string; }

// JS truthiness of a decoded value (includeDeleted).
bool truthy(const lib0::Any* v) {
  if (!v) return false;
  switch (v->kind()) {
    case lib0::AnyKind::undefined:
    case lib0::AnyKind::null:
      return false;
    case lib0::AnyKind::boolean:
      return v->as_bool();
    case lib0::AnyKind::string:
      return !v->as_string().empty();
    case lib0::AnyKind::integer:
    case lib0::AnyKind::float32:
    case lib0::AnyKind::float64:
    case lib0::AnyKind::bigint: {
      double n = v->as_number();
      return n == n && n != 0;
    }
    default:
      return true;
  }
}

lib0::Any validation_error(const char* path, const char* message) {
  return lib0::Any::object(
      {{"issues", lib0::Any::array({lib0::Any::object({{"message", lib0::Any::string(message)},
                                                       {"path", lib0::Any::array({lib0::Any::string(path)})}})})}});
}

}  // namespace

void Server::advance_time(double now_ms) { now_ms_ = std::max(now_ms_, now_ms); }

void Server::supply_random(ByteView bytes) { ids_->supply(bytes); }

const RpcMethodConfig* Server::app_method(const std::string& name) const {
  for (const auto& m : config_.rpc_methods) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

void Server::send_rpc(Outputs& out, ClientHandle to, const std::string& document, bool encrypted, const std::string& method,
                      RpcRequestType type, const std::string& request_id, std::variant<RpcSuccess, RpcError> result) {
  protocol::Rpc r;
  r.method = method;
  r.request_type = type;
  r.original_request_id = request_id;
  r.result = std::move(result);
  Message m;
  m.document = document;  // the bare name, never the room-prefixed key (spec ext. 1.1)
  m.encrypted = encrypted;
  m.payload = std::move(r);
  out.push_back(SendOutput{{to}, protocol::encode_message(m)});
}

// ---- answers from the host's handlers ------------------------------------------------------------

Outputs Server::rpc_stream(CallId call, ByteView payload, std::optional<bool> encrypted) {
  Outputs out;
  auto it = calls_.find(call);
  if (it == calls_.end() || !connected(it->second.client)) return out;
  const PendingCall& c = it->second;
  auto value = lib0::decode_any(payload);
  if (!value) {
    out.push_back(LogOutput{"error", "rpc_invalid_payload", {{"method", c.method}, {"error", value.error().message}}});
    return out;
  }
  send_rpc(out, c.client, c.document, encrypted.value_or(c.encrypted), c.method, RpcRequestType::stream, c.reply_id,
           RpcSuccess{std::move(value).value()});
  return out;
}

Outputs Server::rpc_response(CallId call, ByteView payload, std::optional<bool> encrypted) {
  Outputs out;
  auto it = calls_.find(call);
  if (it == calls_.end()) return out;
  PendingCall c = std::move(it->second);
  calls_.erase(it);
  if (!connected(c.client)) return out;
  auto value = lib0::decode_any(payload);
  if (!value) {
    out.push_back(LogOutput{"error", "rpc_invalid_payload", {{"method", c.method}, {"error", value.error().message}}});
    send_rpc(out, c.client, c.document, c.encrypted, c.method, RpcRequestType::response, c.reply_id,
             RpcError{500, "Invalid RPC response payload", lib0::Any::undefined()});
  } else {
    send_rpc(out, c.client, c.document, encrypted.value_or(c.encrypted), c.method, RpcRequestType::response, c.reply_id,
             RpcSuccess{std::move(value).value()});
  }
  ack_id(out, c.client, c.ack_id);
  return out;
}

Outputs Server::rpc_error(CallId call, std::uint64_t status, const std::string& details, std::optional<ByteView> payload) {
  Outputs out;
  auto it = calls_.find(call);
  if (it == calls_.end()) return out;
  PendingCall c = std::move(it->second);
  calls_.erase(it);
  if (!connected(c.client)) return out;
  lib0::Any extra;
  if (payload) {
    auto value = lib0::decode_any(*payload);
    if (value) extra = std::move(value).value();
  }
  send_rpc(out, c.client, c.document, c.encrypted, c.method, RpcRequestType::response, c.reply_id,
           RpcError{status, details, std::move(extra)});
  ack_id(out, c.client, c.ack_id);
  return out;
}

Outputs Server::rpc_done(CallId call) {
  Outputs out;
  auto it = calls_.find(call);
  if (it == calls_.end()) return out;
  PendingCall c = std::move(it->second);
  calls_.erase(it);
  if (connected(c.client)) ack_id(out, c.client, c.ack_id);
  return out;
}

// A handler that never answers: the client gets a 504 and the call is forgotten.
void Server::expire_calls(Outputs& out) {
  for (auto it = calls_.begin(); it != calls_.end();) {
    if (it->second.deadline <= 0 || now_ms_ < it->second.deadline) {
      ++it;
      continue;
    }
    PendingCall c = std::move(it->second);
    it = calls_.erase(it);
    out.push_back(LogOutput{"warn", "rpc_timeout", {{"method", c.method}, {"document", c.document}, {"timeout_ms", config_.rpc_timeout_ms}}});
    if (!connected(c.client)) continue;
    send_rpc(out, c.client, c.document, c.encrypted, c.method, RpcRequestType::response, c.reply_id,
             RpcError{504, "RPC handler did not answer within " + std::to_string(config_.rpc_timeout_ms) + " ms",
                      lib0::Any::undefined()});
    ack_id(out, c.client, c.ack_id);
  }
}

// ---- milestones ------------------------------------------------------------------------------

bool Server::busy(const DocumentSession& s) const {
  const MilestoneBook& b = s.milestones;
  return b.state == MilestoneBook::State::loading || b.busy || !b.waiting.empty();
}

void Server::run_milestones(Outputs& out, DocumentSession& s) {
  MilestoneBook& b = s.milestones;
  if (b.waiting.empty() || b.busy) return;
  if (b.state == MilestoneBook::State::unloaded) {
    b.state = MilestoneBook::State::loading;
    out.push_back(MilestoneLoadOutput{s.key});
    return;
  }
  if (b.state == MilestoneBook::State::loading) return;
  while (!b.busy && !b.waiting.empty()) {
    MilestoneJob job = std::move(b.waiting.front());
    b.waiting.pop_front();
    if (job.client != 0 && !connected(job.client)) continue;
    decide_milestone(out, s, job);
  }
  // In a cluster other nodes write the same milestones: what is loaded is only good for the
  // requests that are here now; the next one loads again.
  if (!config_.node_id.empty() && !b.busy && b.waiting.empty()) {
    b.state = MilestoneBook::State::unloaded;
    b.list.clear();
  }
}

void Server::decide_milestone(Outputs& out, DocumentSession& s, MilestoneJob& job) {
  MilestoneBook& b = s.milestones;
  auto reply = [&](std::variant<RpcSuccess, RpcError> result, std::optional<bool> encrypted = std::nullopt) {
    send_rpc(out, job.client, s.document, encrypted.value_or(job.encrypted), job.method, RpcRequestType::response,
             job.request_id, std::move(result));
    ack_id(out, job.client, job.request_id);
  };
  auto ok = [&](lib0::Any payload) { reply(RpcSuccess{std::move(payload)}); };
  auto fail = [&](std::uint64_t status, std::string details, lib0::Any payload = lib0::Any::undefined()) {
    reply(RpcError{status, std::move(details), std::move(payload)});
  };
  auto issue = [&](PendingOp op, std::optional<Bytes> snapshot = std::nullopt) {
    op.key = s.key;
    op.client = job.client;
    op.method = job.method;
    op.request_id = job.request_id;
    op.encrypted = job.encrypted;
    std::uint32_t id = next_op_++;
    if (next_op_ == 0) next_op_ = 1;
    MilestoneStoreOutput o;
    o.op = id;
    o.kind = op.kind;
    o.key = s.key;
    o.id = op.kind == MilestoneOp::put ? op.meta.id : op.id;
    if (op.kind == MilestoneOp::put) o.meta = encode_milestone_meta(op.meta);
    o.snapshot = std::move(snapshot);
    ops_.emplace(id, std::move(op));
    b.busy = true;
    out.push_back(std::move(o));
  };

  if (job.client == 0) {  // an automatic milestone (spec ext. 2.7)
    std::size_t live = static_cast<std::size_t>(
        std::count_if(b.list.begin(), b.list.end(), [](const MilestoneMeta& m) { return !m.deleted(); }));
    PendingOp op;
    op.kind = MilestoneOp::put;
    op.insert = true;
    op.meta.document_id = s.document_id;
    op.meta.id = ids_->next_uuid();
    op.meta.name = job.name ? *job.name : default_milestone_name("Milestone", live, b.list);
    op.meta.created_at = job.created_at;
    op.meta.created_by_user = false;
    op.meta.created_by_id = "auto";
    issue(std::move(op), std::move(job.snapshot));
    return;
  }

  const lib0::Any& p = job.payload;
  const lib0::Any* id_value = field(p, "milestoneId");
  lib0::Any id_echo = id_value ? *id_value : lib0::Any::undefined();
  auto find = [&]() -> MilestoneMeta* {
    if (!is_string(id_value)) return nullptr;
    for (auto& m : b.list) {
      if (m.id == id_value->as_string()) return &m;
    }
    return nullptr;
  };
  auto not_found_404 = [&]() { fail(404, "Milestone not found", lib0::Any::object({{"milestoneId", id_echo}})); };

  if (job.method == "milestoneList") {
    bool include_deleted = truthy(field(p, "includeDeleted"));
    lib0::AnyArray items;
    for (const auto& m : b.list) {
      if (include_deleted || !m.deleted()) items.push_back(milestone_item_any(m));
    }
    return ok(lib0::Any::object({{"milestones", lib0::Any::array(std::move(items))}}));
  }

  if (job.method == "milestoneGet") {
    MilestoneMeta* m = find();
    if (!m || m->deleted()) return not_found_404();
    PendingOp op;
    op.kind = MilestoneOp::snapshot;
    op.id = m->id;
    return issue(std::move(op));
  }

  if (job.method == "milestoneCreate") {
    const lib0::Any* name = field(p, "name");
    const lib0::Any* snapshot = field(p, "snapshot");
    if (name && !is_string(name) && !name->is_undefined() && !name->is_null()) {
      return fail(400, "Validation failed", validation_error("name", "name must be a string or absent"));
    }
    // Spec ext. 5.7: the reference stores a milestone without a snapshot that no get can read.
    if (!snapshot || snapshot->kind() != lib0::AnyKind::bytes) {
      return fail(400, "Validation failed", validation_error("snapshot", "snapshot must be the document's state as bytes"));
    }
    PendingOp op;
    op.kind = MilestoneOp::put;
    op.insert = true;
    op.meta.document_id = s.document_id;
    op.meta.id = ids_->next_uuid();
    op.meta.name = is_string(name) ? name->as_string() : default_milestone_name("Version", b.list.size(), b.list);
    op.meta.created_at = now_ms_;
    op.meta.created_by_user = !job.user_id.empty();
    op.meta.created_by_id = job.user_id.empty() ? "system" : job.user_id;
    op.response = lib0::Any::object({{"milestone", milestone_meta_any(op.meta)}});
    return issue(std::move(op), snapshot->as_bytes());
  }

  if (job.method == "milestoneUpdateName") {
    const lib0::Any* name = field(p, "name");
    MilestoneMeta* m = find();
    if (!m) return fail(500, "Milestone not found");  // the reference's storage error, kept
    // Spec ext. 5.5: the reference renames a soft-deleted milestone and then reports a 500; a
    // deleted milestone is not found here, as for milestoneGet, and keeps its name.
    if (m->deleted()) return not_found_404();
    if (!is_string(name)) return fail(400, "Validation failed", validation_error("name", "name must be a string"));
    PendingOp op;
    op.kind = MilestoneOp::put;
    op.meta = *m;
    op.meta.name = name->as_string();
    op.response = lib0::Any::object({{"milestone", milestone_meta_any(op.meta)}});
    return issue(std::move(op));
  }

  if (job.method == "milestoneDelete") {
    MilestoneMeta* m = find();
    lib0::Any response = lib0::Any::object({{"milestoneId", id_echo}});
    if (!m) return ok(std::move(response));  // unknown ids succeed (reference behaviour)
    PendingOp op;
    op.response = std::move(response);
    if (m->deleted()) {  // a second delete is for good
      op.kind = MilestoneOp::remove;
      op.id = m->id;
      return issue(std::move(op));
    }
    op.kind = MilestoneOp::put;
    op.meta = *m;
    op.meta.deleted_at = now_ms_;
    if (!job.user_id.empty()) op.meta.deleted_by = job.user_id;
    op.meta.lifecycle_state = "deleted";
    return issue(std::move(op));
  }

  if (job.method == "milestoneRestore") {
    MilestoneMeta* m = find();
    if (!m) return fail(500, "Failed to restore milestone");
    if (!m->deleted()) return ok(lib0::Any::object({{"milestone", milestone_item_any(*m)}}));
    PendingOp op;
    op.kind = MilestoneOp::put;
    op.meta = *m;
    op.meta.deleted_at.reset();
    op.meta.deleted_by.reset();
    op.meta.lifecycle_state = "active";
    op.response = lib0::Any::object({{"milestone", milestone_item_any(op.meta)}});
    return issue(std::move(op));
  }
}

Outputs Server::milestones_loaded(const std::string& key, const std::vector<StoredMilestone>& milestones) {
  Outputs out;
  auto it = sessions_.find(key);
  if (it == sessions_.end() || it->second->milestones.state != MilestoneBook::State::loading) return out;
  DocumentSession& s = *it->second;
  MilestoneBook& b = s.milestones;
  b.list.clear();
  for (std::size_t i = 0; i < milestones.size(); ++i) {
    auto meta = decode_milestone_meta(milestones[i].meta);
    if (!meta) {
      out.push_back(LogOutput{"error", "milestone_meta_invalid",
                              {{"document_id", key}, {"milestone_id", milestones[i].id}, {"error", meta.error().message}}});
      continue;
    }
    // Storage's id is the one its operations take.
    meta.value().id = milestones[i].id;
    b.list.push_back(std::move(meta).value());
  }
  b.state = MilestoneBook::State::loaded;
  run_milestones(out, s);
  maybe_unload(out, s);
  return out;
}

Outputs Server::milestones_load_failed(const std::string& key, const std::string& error) {
  Outputs out;
  auto it = sessions_.find(key);
  if (it == sessions_.end() || it->second->milestones.state != MilestoneBook::State::loading) return out;
  DocumentSession& s = *it->second;
  MilestoneBook& b = s.milestones;
  b.state = MilestoneBook::State::unloaded;  // the next request tries again
  out.push_back(LogOutput{"error", "milestones_load_failed", {{"document_id", key}, {"error", error}}});
  std::deque<MilestoneJob> jobs = std::move(b.waiting);
  b.waiting.clear();
  for (const auto& job : jobs) {
    if (job.client == 0 || !connected(job.client)) continue;
    send_rpc(out, job.client, s.document, job.encrypted, job.method, RpcRequestType::response, job.request_id,
             RpcError{500, "Failed to load milestones: " + error, lib0::Any::undefined()});
    ack_id(out, job.client, job.request_id);
  }
  maybe_unload(out, s);
  return out;
}

Outputs Server::milestone_done(std::uint32_t op_id, bool ok, const std::string& error, std::optional<ByteView> snapshot) {
  Outputs out;
  auto it = ops_.find(op_id);
  if (it == ops_.end()) return out;
  PendingOp op = std::move(it->second);
  ops_.erase(it);
  auto sit = sessions_.find(op.key);
  DocumentSession* s = sit == sessions_.end() ? nullptr : sit->second.get();
  if (s) s->milestones.busy = false;
  const std::string document = s ? s->document : std::string();
  auto reply = [&](std::variant<RpcSuccess, RpcError> result, bool encrypted) {
    if (op.client == 0 || !connected(op.client)) return;
    send_rpc(out, op.client, document, encrypted, op.method, RpcRequestType::response, op.request_id, std::move(result));
    ack_id(out, op.client, op.request_id);
  };
  if (!ok) {
    out.push_back(LogOutput{"error", "milestone_storage_failed",
                            {{"document_id", op.key}, {"milestone_id", op.kind == MilestoneOp::put ? op.meta.id : op.id},
                             {"error", error}}});
    std::string what = op.kind == MilestoneOp::snapshot ? "Failed to read milestone snapshot: " : "Storage write failed: ";
    reply(RpcError{500, what + error, lib0::Any::undefined()}, op.encrypted);
  } else {
    if (s) {
      auto& list = s->milestones.list;
      auto same = [&](const MilestoneMeta& m) { return m.id == (op.kind == MilestoneOp::put ? op.meta.id : op.id); };
      if (op.kind == MilestoneOp::put && op.insert) {
        list.push_back(op.meta);
      } else if (op.kind == MilestoneOp::put) {
        auto m = std::find_if(list.begin(), list.end(), same);
        if (m != list.end()) *m = op.meta;
      } else if (op.kind == MilestoneOp::remove) {
        list.erase(std::remove_if(list.begin(), list.end(), same), list.end());
      }
    }
    if (op.kind == MilestoneOp::snapshot) {
      if (!snapshot) {
        reply(RpcError{500, "Milestone snapshot not found", lib0::Any::undefined()}, op.encrypted);
      } else {
        // The snapshot goes back as stored, with the session's encrypted flag (spec ext. 2.3).
        reply(RpcSuccess{lib0::Any::object({{"milestoneId", lib0::Any::string(op.id)},
                                            {"snapshot", lib0::Any::bytes(snapshot->to_bytes())}})},
              s ? s->encrypted : op.encrypted);
      }
    } else if (op.client != 0) {
      reply(RpcSuccess{std::move(op.response)}, op.encrypted);
    } else {
      out.push_back(LogOutput{"info", "milestone_created", {{"document_id", op.key}, {"milestone_id", op.meta.id}, {"automatic", true}}});
      out.push_back(MilestoneCreatedOutput{op.key, op.meta.document_id, op.meta.id});
    }
  }
  if (s) {
    run_milestones(out, *s);
    if (auto again = sessions_.find(op.key); again != sessions_.end()) maybe_unload(out, *again->second);
  }
  return out;
}

void Server::count_write(DocumentSession& s, bool& fired, std::optional<std::string>& name) {
  MilestoneBook& b = s.milestones;
  if (!b.counting) {
    b.counting = true;
    b.update_count = 0;
    b.last_time = now_ms_;
  }
  ++b.update_count;
  for (const auto& trigger : config_.milestone_triggers) {
    if (!trigger.enabled) continue;
    bool fire = trigger.type == MilestoneTrigger::Type::update_count ? b.update_count >= trigger.update_count
                                                                     : now_ms_ - b.last_time >= trigger.interval_ms;
    if (!fire) continue;
    b.update_count = 0;
    b.last_time = now_ms_;
    if (!fired) {
      fired = true;
      name = trigger.auto_name;
    }
    break;
  }
}

// The document's state as stored, as a snapshot: the V2 update itself for a plaintext document
// (spec ext. 5.3: the reference wraps it in an envelope, which clients cannot apply), the
// envelope with every stored sidecar for an encrypted one.
void Server::automatic_milestone(Outputs& out, DocumentSession& s, std::optional<std::string> name) {
  auto state = materialize(s);
  if (!state) {
    out.push_back(LogOutput{"error", "milestone_snapshot_failed", {{"document_id", s.key}, {"error", state.error().message}}});
    return;
  }
  if (state.value().empty()) return;  // nothing stored yet
  MilestoneJob job;
  job.method = "milestoneCreate";
  job.created_at = now_ms_;
  job.name = std::move(name);
  if (s.encrypted) {
    protocol::ContentEncryptedEnvelope e;
    e.structure_update = state.value();
    for (const auto& sc : s.sidecars) e.encrypted_sidecars.push_back(sc.data);
    job.snapshot = protocol::encode_content_encrypted(e);
  } else {
    job.snapshot = std::move(state).value();
  }
  s.milestones.waiting.push_back(std::move(job));
  run_milestones(out, s);
}

}  // namespace tp::server
