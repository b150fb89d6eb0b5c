// embind glue for the server core: conversion and naming only.
#include <emscripten/bind.h>

#include "js_bytes.hpp"
#include "tp/server/server.hpp"
#include "tp/server/upgrade.hpp"

using emscripten::val;

namespace {

// Every output is an object with `kind` ("send" | "close" | "log" | "load" | "compact" |
// "permission" | "join" | "publish" | "reader" | "channel") and that kind's fields; every ServerCore method returns an array of them.
val outputs_to_js(const tp::server::Outputs& outputs) {
  val list = val::array();
  for (const auto& o : outputs) {
    val item = val::object();
    if (const auto* send = std::get_if<tp::server::SendOutput>(&o)) {
      item.set("kind", "send");
      val to = val::array();
      for (auto h : send->to) to.call<void>("push", h);
      item.set("to", to);
      item.set("frame", tp::wasm::to_js_bytes(send->frame));
    } else if (const auto* close = std::get_if<tp::server::CloseOutput>(&o)) {
      item.set("kind", "close");
      item.set("client", close->client);
      item.set("code", close->code);
      item.set("reason", close->reason);
    } else if (const auto* load = std::get_if<tp::server::LoadOutput>(&o)) {
      item.set("kind", "load");
      item.set("key", load->key);
    } else if (const auto* compact = std::get_if<tp::server::CompactOutput>(&o)) {
      item.set("kind", "compact");
      item.set("key", compact->key);
    } else if (const auto* ask = std::get_if<tp::server::PermissionOutput>(&o)) {
      item.set("kind", "permission");
      item.set("client", ask->client);
      item.set("document", ask->document);
      item.set("frame", tp::wasm::to_js_bytes(ask->frame));
    } else if (const auto* pub = std::get_if<tp::server::PublishOutput>(&o)) {
      item.set("kind", "publish");
      item.set("key", pub->key);
      item.set("except", pub->except);
      item.set("local", pub->local);
      item.set("frame", tp::wasm::to_js_bytes(pub->frame));
      if (pub->cluster) item.set("cluster", tp::wasm::to_js_bytes(pub->cluster_message));
    } else if (const auto* reader = std::get_if<tp::server::ReaderOutput>(&o)) {
      item.set("kind", "reader");
      item.set("client", reader->client);
      item.set("key", reader->key);
      item.set("reading", reader->reading);
    } else if (const auto* channel = std::get_if<tp::server::ChannelOutput>(&o)) {
      item.set("kind", "channel");
      item.set("key", channel->key);
      item.set("subscribe", channel->subscribe);
    } else if (const auto* joined = std::get_if<tp::server::JoinOutput>(&o)) {
      item.set("kind", "join");
      item.set("client", joined->client);
      item.set("document", joined->document);
    } else if (const auto* log = std::get_if<tp::server::LogOutput>(&o)) {
      item.set("kind", "log");
      item.set("level", log->level);
      item.set("event", log->event);
      item.set("fields", log->fields.dump());
    }
    list.call<void>("push", item);
  }
  return list;
}

std::vector<tp::ByteView> views_of(const std::vector<std::string>& raw) {
  std::vector<tp::ByteView> views;
  views.reserve(raw.size());
  for (const auto& r : raw) views.push_back(tp::wasm::view_of(r));
  return views;
}

template <class T>
void read_number(const nlohmann::json& j, const char* name, T& into) {
  if (j.contains(name) && j[name].is_number() && j[name].get<double>() >= 0) into = j[name].get<T>();
}

// config_json: {permissions: "token"|"none"|"callback", persist, maxMessageSize, unloadAfterMs,
// maxDocumentsPerConnection, compactAfter, issuer, audience, allowMissingDocumentAccess};
// the token secret travels as bytes.
tp::server::ServerConfig parse_config(const std::string& config_json, const std::string& secret) {
  tp::server::ServerConfig config;
  auto j = nlohmann::json::parse(config_json, nullptr, false);
  if (!j.is_object()) return config;
  std::string mode = j.value("permissions", std::string("token"));
  if (mode == "none") config.permissions = tp::server::PermissionMode::none;
  if (mode == "callback") config.permissions = tp::server::PermissionMode::callback;
  config.persist = j.value("persist", true);
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
  read_number(j, "heartbeatMs", config.heartbeat_ms);
  read_number(j, "presenceTimeoutMs", config.presence_timeout_ms);
  config.tokens.secret.assign(secret.begin(), secret.end());
  config.tokens.issuer = j.value("issuer", std::string("teleportal"));
  config.tokens.audience = j.value("audience", std::string("teleportal"));
  config.tokens.allow_missing_document_access = j.value("allowMissingDocumentAccess", false);
  return config;
}

class ServerCore {
 public:
  ServerCore(const std::string& config_json, const std::string& secret)
      : server_(std::make_unique<tp::server::Server>(parse_config(config_json, secret))) {}

  // {handle, outputs}; handle -1 when the context is not a JSON object.
  val open(const std::string& id, const std::string& context_json, double now_ms) {
    val result = val::object();
    auto context = nlohmann::json::parse(context_json, nullptr, false);
    if (!context.is_object()) {
      result.set("handle", -1);
      result.set("outputs", val::array());
      return result;
    }
    tp::server::Outputs out;
    auto handle = server_->open(id, std::move(context), now_ms, out);
    result.set("handle", handle);
    result.set("outputs", outputs_to_js(out));
    return result;
  }

  val message(int handle, const std::string& frame) {
    return outputs_to_js(server_->message(static_cast<tp::server::ClientHandle>(handle), tp::wasm::view_of(frame)));
  }

  val rejoin(int handle, const std::string& document) {
    return outputs_to_js(server_->rejoin(static_cast<tp::server::ClientHandle>(handle), document));
  }

  // A pub/sub message from the document channel of `key` (cluster mode).
  val remote(const std::string& key, const std::string& message) {
    return outputs_to_js(server_->remote(key, tp::wasm::view_of(message)));
  }

  val close(int handle) { return outputs_to_js(server_->close(static_cast<tp::server::ClientHandle>(handle))); }

  // entries: a JS array of Uint8Array, crossed once per document load.
  val loaded(const std::string& key, val entries) {
    auto raw = emscripten::vecFromJSArray<std::string>(entries);
    return outputs_to_js(server_->loaded(key, views_of(raw)));
  }

  val loadFailed(const std::string& key, const std::string& error) { return outputs_to_js(server_->load_failed(key, error)); }

  // {id, keys: string[], entries: Uint8Array[]} (id 0: nothing to commit).
  val flush() {
    auto batch = server_->flush();
    val result = val::object();
    result.set("id", static_cast<double>(batch.id));
    val keys = val::array();
    val entries = val::array();
    for (const auto& w : batch.writes) {
      keys.call<void>("push", w.key);
      entries.call<void>("push", tp::wasm::to_js_bytes(w.entry));
    }
    result.set("keys", keys);
    result.set("entries", entries);
    return result;
  }

  val committed(double batch, bool ok, const std::string& error) {
    return outputs_to_js(server_->committed(static_cast<tp::server::BatchId>(batch), ok, error));
  }

  val permission(int handle, const std::string& document, int access) {
    return outputs_to_js(server_->permission(static_cast<tp::server::ClientHandle>(handle), document,
                                             static_cast<tp::server::Access>(access & 3)));
  }

  val tick(double now_ms) { return outputs_to_js(server_->tick(now_ms)); }

  // ms since the epoch, or -1 when nothing is due.
  double nextDeadline() const { return server_->next_deadline().value_or(-1); }

  // {entry} or {error}; `logs` outputs for skipped entries.
  val mergeEntries(val entries) {
    auto raw = emscripten::vecFromJSArray<std::string>(entries);
    tp::server::Outputs out;
    auto merged = server_->merge_entries(views_of(raw), out);
    val result = val::object();
    if (merged) {
      result.set("entry", tp::wasm::to_js_bytes(merged.value()));
    } else {
      result.set("error", merged.error().message);
    }
    result.set("outputs", outputs_to_js(out));
    return result;
  }

  int clientCount() const { return static_cast<int>(server_->client_count()); }
  int documentCount() const { return static_cast<int>(server_->session_count()); }

 private:
  std::unique_ptr<tp::server::Server> server_;
};

val authenticate_upgrade(const std::string& url, const std::string& authorization, const std::string& secret,
                         bool has_secret, const std::string& issuer, const std::string& audience,
                         double now_seconds) {
  tp::server::UpgradeAuthOptions options;
  options.secret = tp::wasm::view_of(secret);
  options.has_secret = has_secret;
  options.issuer = issuer;
  options.audience = audience;
  auto v = tp::server::authenticate_upgrade(url, authorization, options, now_seconds);
  val out = val::object();
  out.set("ok", v.ok);
  out.set("status", v.status);
  out.set("body", v.body);
  out.set("error", v.error);
  if (v.ok) out.set("context", v.context.dump());
  return out;
}

val inspect_frame(const std::string& frame) {
  auto v = tp::server::inspect_frame(tp::wasm::view_of(frame));
  val out = val::object();
  if (!v.reply.empty()) out.set("reply", tp::wasm::to_js_bytes(v.reply));
  if (!v.error.empty()) out.set("error", v.error);
  return out;
}

}  // namespace

EMSCRIPTEN_BINDINGS(tp_server) {
  emscripten::class_<ServerCore>("ServerCore")
      .constructor<const std::string&, const std::string&>()
      .function("open", &ServerCore::open)
      .function("message", &ServerCore::message)
      .function("close", &ServerCore::close)
      .function("rejoin", &ServerCore::rejoin)
      .function("remote", &ServerCore::remote)
      .function("loaded", &ServerCore::loaded)
      .function("loadFailed", &ServerCore::loadFailed)
      .function("flush", &ServerCore::flush)
      .function("committed", &ServerCore::committed)
      .function("permission", &ServerCore::permission)
      .function("tick", &ServerCore::tick)
      .function("nextDeadline", &ServerCore::nextDeadline)
      .function("mergeEntries", &ServerCore::mergeEntries)
      .function("clientCount", &ServerCore::clientCount)
      .function("documentCount", &ServerCore::documentCount);
  emscripten::function("authenticateUpgrade", &authenticate_upgrade);
  emscripten::function("inspectFrame", &inspect_frame);
}
