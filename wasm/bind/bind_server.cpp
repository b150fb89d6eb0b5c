// embind glue for the server core: conversion and naming only.
#include <emscripten/bind.h>

#include "js_bytes.hpp"
#include "tp/server/server.hpp"
#include "tp/server/upgrade.hpp"

using emscripten::val;

namespace {

val outputs_to_js(const tp::server::Outputs& outputs) {
  val list = val::array();
  for (const auto& o : outputs) {
    val item = val::object();
    if (const auto* send = std::get_if<tp::server::SendOutput>(&o)) {
      val to = val::array();
      for (auto h : send->to) to.call<void>("push", h);
      item.set("to", to);
      item.set("frame", tp::wasm::to_js_bytes(send->frame));
    } else if (const auto* close = std::get_if<tp::server::CloseOutput>(&o)) {
      item.set("close", close->client);
      item.set("code", close->code);
      item.set("reason", close->reason);
    } else if (const auto* persist = std::get_if<tp::server::PersistOutput>(&o)) {
      item.set("persist", persist->key);
      item.set("document", persist->document);
      item.set("envelope", tp::wasm::to_js_bytes(persist->envelope));
      item.set("replace", persist->replace);
    } else if (const auto* log = std::get_if<tp::server::LogOutput>(&o)) {
      item.set("level", log->level);
      item.set("event", log->event);
      item.set("fields", log->fields.dump());
    }
    list.call<void>("push", item);
  }
  return list;
}

class ServerCore {
 public:
  explicit ServerCore(const std::string& config_json) {
    tp::server::ServerConfig config;
    auto j = nlohmann::json::parse(config_json, nullptr, false);
    if (j.is_object()) {
      if (j.value("permissions", std::string("none")) == "token") {
        config.permissions = tp::server::PermissionMode::token;
      }
      config.persist = j.value("persist", false);
      if (j.contains("maxMessageSize") && j["maxMessageSize"].is_number_unsigned()) {
        config.max_message_size = j["maxMessageSize"].get<std::size_t>();
      }
    }
    server_ = std::make_unique<tp::server::Server>(config);
  }

  // -1 when the context is not a JSON object.
  int open(const std::string& id, const std::string& context_json) {
    auto context = nlohmann::json::parse(context_json, nullptr, false);
    if (!context.is_object()) return -1;
    return static_cast<int>(server_->open(id, std::move(context)));
  }

  val message(int handle, const std::string& frame) {
    return outputs_to_js(server_->message(static_cast<tp::server::ClientHandle>(handle), tp::wasm::view_of(frame)));
  }

  // envelopes: a JS array of Uint8Array, crossed once per document load.
  val restore(const std::string& key, const std::string& document, val envelopes) {
    auto raw = emscripten::vecFromJSArray<std::string>(envelopes);
    std::vector<tp::ByteView> views;
    views.reserve(raw.size());
    for (const auto& r : raw) views.push_back(tp::wasm::view_of(r));
    return outputs_to_js(server_->restore(key, document, views));
  }

  val close(int handle) { return outputs_to_js(server_->close(static_cast<tp::server::ClientHandle>(handle))); }


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
      .constructor<const std::string&>()
      .function("open", &ServerCore::open)
      .function("message", &ServerCore::message)
      .function("close", &ServerCore::close)
      .function("restore", &ServerCore::restore);
  emscripten::function("authenticateUpgrade", &authenticate_upgrade);
  emscripten::function("inspectFrame", &inspect_frame);
}
