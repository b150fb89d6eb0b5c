// embind glue for teleportal/protocol: conversion and naming only. Each exported function is one
// boundary call per frame (or per batch); JS objects are built here with emscripten::val.
// Nothing throws into JS: failures come back as {ok:false, code, messages} and the JS wrapper
// (wasm/src/protocol.js) turns them into Errors.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <optional>
#include <string>

#include "js_bytes.hpp"
#include "tp/lib0/any.hpp"
#include "tp/protocol/envelope.hpp"
#include "tp/protocol/message.hpp"

namespace {

using emscripten::val;
using tp::Bytes;
using tp::ByteView;
using tp::Error;
using tp::lib0::Any;
using tp::lib0::AnyKind;
namespace proto = tp::protocol;

// ---- C++ -> JS ---------------------------------------------------------------------------------

// Strings: ASCII goes through embind; anything else through a TextDecoder that keeps a leading
// BOM (lib0 decodes with ignoreBOM: true; embind's UTF8ToString would strip it).
val js_string(std::string_view s) {
  bool ascii = true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80 || c == 0) {
      ascii = false;
      break;
    }
  }
  if (ascii) return val(std::string(s));
  static val decoder = [] {
    val opts = val::object();
    opts.set("ignoreBOM", true);
    return val::global("TextDecoder").new_(val("utf-8"), opts);
  }();
  return decoder.call<val>(
      "decode", val(emscripten::typed_memory_view(s.size(), reinterpret_cast<const std::uint8_t*>(s.data()))));
}

val js_number(std::uint64_t v) { return val(static_cast<double>(v)); }

val any_to_js(const Any& a) {
  switch (a.kind()) {
    case AnyKind::undefined:
      return val::undefined();
    case AnyKind::null:
      return val::null();
    case AnyKind::integer:
    case AnyKind::float32:
    case AnyKind::float64:
      return val(a.as_number());
    case AnyKind::bigint:
      return val::global("BigInt")(val(std::to_string(a.as_bigint())));
    case AnyKind::boolean:
      return val(a.as_bool());
    case AnyKind::string:
      return js_string(a.as_string());
    case AnyKind::object: {
      // Wire order; JS itself applies its key order and last-duplicate-wins, as in lib0.
      val o = val::object();
      for (const auto& [k, v] : a.as_object()) o.set(js_string(k), any_to_js(v));
      return o;
    }
    case AnyKind::array: {
      val arr = val::array();
      for (const Any& item : a.as_array()) arr.call<void>("push", any_to_js(item));
      return arr;
    }
    case AnyKind::bytes:
      return tp::wasm::to_js_bytes(a.as_bytes());
  }
  return val::undefined();
}

val update_obj(std::uint8_t version, const Bytes& data) {
  val u = val::object();
  u.set("version", version);
  u.set("data", tp::wasm::to_js_bytes(data));
  return u;
}

void set_presence_client(val& o, const proto::PresenceClient& c) {
  o.set("awarenessId", js_number(c.awareness_id));
  o.set("clientId", js_string(c.client_id));
  o.set("userId", js_string(c.user_id));
  o.set("data", any_to_js(c.data));
}

const char* request_type_name(proto::RpcRequestType t) {
  switch (t) {
    case proto::RpcRequestType::stream: return "stream";
    case proto::RpcRequestType::response: return "response";
    default: return "request";
  }
}

val message_to_js(const proto::Message& m) {
  val o = val::object();
  const proto::MessageType t = m.type();
  o.set("type", val(proto::to_string(t)));
  o.set("document", t == proto::MessageType::ack ? val::null() : js_string(m.document));
  o.set("encrypted", m.encrypted);
  val p = val::object();
  p.set("type", val(proto::payload_type_name(m.payload)));
  if (auto* s = m.get<proto::SyncStep1>()) p.set("sv", tp::wasm::to_js_bytes(s->state_vector));
  if (auto* s = m.get<proto::SyncStep2>()) p.set("update", update_obj(s->version, s->data));
  if (auto* s = m.get<proto::DocUpdate>()) p.set("update", update_obj(s->version, s->data));
  if (auto* a = m.get<proto::AuthMessage>()) {
    p.set("permission", val(a->permission == proto::Permission::denied ? "denied" : "allowed"));
    p.set("reason", js_string(a->reason));
  }
  if (auto* a = m.get<proto::AwarenessUpdate>()) p.set("update", tp::wasm::to_js_bytes(a->update));
  if (auto* a = m.get<proto::Ack>()) {
    p.set("messageId", js_string(a->message_id));
    if (a->retry_after) p.set("retryAfter", js_number(*a->retry_after));
    if (a->error) p.set("error", js_string(*a->error));
  }
  if (auto* a = m.get<proto::PresenceAnnounce>()) p.set("awarenessId", js_number(a->awareness_id));
  if (auto* a = m.get<proto::PresenceUnannounce>()) p.set("awarenessId", js_number(a->awareness_id));
  if (auto* a = m.get<proto::PresenceJoin>()) set_presence_client(p, a->client);
  if (auto* a = m.get<proto::PresenceLeave>()) set_presence_client(p, a->client);
  if (auto* h = m.get<proto::PresenceHeartbeat>()) {
    val clients = val::array();
    for (const proto::PresenceClient& c : h->clients) {
      val co = val::object();
      set_presence_client(co, c);
      clients.call<void>("push", co);
    }
    p.set("clients", clients);
  }
  const proto::Rpc* rpc = m.get<proto::Rpc>();
  if (rpc) {
    if (auto* ok = std::get_if<proto::RpcSuccess>(&rpc->result)) {
      p.set("payload", any_to_js(ok->payload));
    } else {
      const proto::RpcError& e = std::get<proto::RpcError>(rpc->result);
      p.set("statusCode", js_number(e.status_code));
      p.set("details", js_string(e.details));
      p.set("payload", any_to_js(e.payload));
    }
  }
  o.set("payload", p);
  if (rpc) {
    o.set("rpcMethod", js_string(rpc->method));
    o.set("requestType", val(request_type_name(rpc->request_type)));
    o.set("originalRequestId",
          rpc->original_request_id ? js_string(*rpc->original_request_id) : val::null());
  }
  o.set("id", val(m.id));
  return o;
}

val ok_result(val value) {
  val r = val::object();
  r.set("ok", true);
  r.set("value", value);
  return r;
}

val error_result(const Error& e) {
  val r = val::object();
  r.set("ok", false);
  r.set("code", val(e.code));
  val messages = val::array();
  for (const std::string& s : proto::error_chain(e)) messages.call<void>("push", js_string(s));
  r.set("messages", messages);
  return r;
}

// ---- JS -> C++ ---------------------------------------------------------------------------------

struct Reader {
  std::optional<Error> err;

  void fail(const std::string& what) {
    if (!err) err = tp::make_error("invalid_message_shape", what);
  }
  static std::string type_of(const val& v) { return v.typeOf().as<std::string>(); }
  static bool is_bytes(const val& v) { return v.instanceof(val::global("Uint8Array")); }

  std::string utf8(const val& v) {
    // TextEncoder, like lib0: unpaired surrogates become U+FFFD (embind would write WTF-8).
    static val encoder = val::global("TextEncoder").new_();
    return encoder.call<val>("encode", v).as<std::string>();
  }
  std::string string(const val& obj, const char* key) {
    val v = obj[key];
    if (type_of(v) != "string") {
      fail(std::string(key) + " must be a string");
      return {};
    }
    return utf8(v);
  }
  Bytes bytes(const val& obj, const char* key) {
    val v = obj[key];
    if (!is_bytes(v)) {
      fail(std::string(key) + " must be a Uint8Array");
      return {};
    }
    std::string s = v.as<std::string>();
    return Bytes(s.begin(), s.end());
  }
  std::uint64_t uint(const val& obj, const char* key) {
    val v = obj[key];
    double d = type_of(v) == "number" ? v.as<double>() : -1;
    if (!(d >= 0 && d <= 18446744073709549568.0 && std::floor(d) == d)) {
      fail(std::string(key) + " must be a non-negative integer");
      return 0;
    }
    return static_cast<std::uint64_t>(d);
  }
  std::uint8_t byte(const val& obj, const char* key) {
    std::uint64_t v = uint(obj, key);
    if (v > 255) fail(std::string(key) + " must be 0..255");
    return static_cast<std::uint8_t>(v);
  }

  // lib0 writeAny on a JS value.
  Any any(const val& v, int depth = 0) {
    if (err) return {};
    if (depth > tp::lib0::kMaxAnyDepth) {
      err = tp::make_error("nesting_too_deep", "value nested too deeply (or cyclic)");
      return {};
    }
    const std::string t = type_of(v);
    if (t == "string") return Any::string(utf8(v));
    if (t == "number") return Any::number(v.as<double>());
    if (t == "boolean") return Any::boolean(v.as<bool>());
    if (t == "bigint") {
      val wrapped = val::global("BigInt").call<val>("asIntN", 64, v);
      return Any::bigint(std::stoll(val::global("String")(wrapped).as<std::string>()));
    }
    if (t == "object") {
      if (v.isNull()) return Any::null();
      if (val::global("Array").call<bool>("isArray", v)) {
        tp::lib0::AnyArray arr;
        const unsigned n = v["length"].as<unsigned>();
        for (unsigned i = 0; i < n && !err; ++i) arr.push_back(any(v[i], depth + 1));
        return Any::array(std::move(arr));
      }
      if (is_bytes(v)) {
        std::string s = v.as<std::string>();
        return Any::bytes(Bytes(s.begin(), s.end()));
      }
      val keys = val::global("Object").call<val>("keys", v);
      const unsigned n = keys["length"].as<unsigned>();
      tp::lib0::AnyObject obj;
      for (unsigned i = 0; i < n && !err; ++i) {
        val key = keys[i];
        obj.emplace_back(utf8(key), any(v[key], depth + 1));
      }
      return Any::object(std::move(obj));
    }
    return Any::undefined();  // undefined, functions, symbols
  }

  proto::PresenceClient presence_client(const val& p) {
    proto::PresenceClient c;
    c.awareness_id = uint(p, "awarenessId");
    c.client_id = string(p, "clientId");
    c.user_id = string(p, "userId");
    c.data = any(p["data"]);
    return c;
  }

  proto::Message message(const val& o) {
    proto::Message m;
    if (type_of(o) != "object" || o.isNull()) {
      fail("message must be an object");
      return m;
    }
    const std::string type = type_of(o["type"]) == "string" ? o["type"].as<std::string>() : "";
    val p = o["payload"];
    if (type_of(p) != "object" || p.isNull()) {
      fail("payload must be an object");
      return m;
    }
    const std::string pt = type_of(p["type"]) == "string" ? p["type"].as<std::string>() : "";
    if (type != "ack") m.document = string(o, "document");
    m.encrypted = o["encrypted"].as<bool>();  // truthiness, as the reference encoder
    if (type == "doc") {
      if (pt == "sync-step-1") {
        m.payload = proto::SyncStep1{bytes(p, "sv")};
      } else if (pt == "sync-step-2" || pt == "update") {
        val u = p["update"];
        if (type_of(u) != "object" || u.isNull()) {
          fail("payload.update must be {version, data}");
          return m;
        }
        std::uint8_t version = byte(u, "version");
        Bytes data = bytes(u, "data");
        if (pt == "update") {
          m.payload = proto::DocUpdate{version, std::move(data)};
        } else {
          m.payload = proto::SyncStep2{version, std::move(data)};
        }
      } else if (pt == "sync-done") {
        m.payload = proto::SyncDone{};
      } else if (pt == "auth-message") {
        val perm = p["permission"];
        const bool denied = type_of(perm) == "string" && perm.as<std::string>() == "denied";
        m.payload = proto::AuthMessage{denied ? proto::Permission::denied : proto::Permission::allowed,
                                       string(p, "reason")};
      } else {
        fail("unknown doc payload type");
      }
    } else if (type == "awareness") {
      if (pt == "awareness-update") {
        m.payload = proto::AwarenessUpdate{bytes(p, "update")};
      } else if (pt == "awareness-request") {
        m.payload = proto::AwarenessRequest{};
      } else {
        fail("unknown awareness payload type");
      }
    } else if (type == "ack") {
      proto::Ack ack;
      ack.message_id = string(p, "messageId");
      if (!p["retryAfter"].isUndefined()) ack.retry_after = uint(p, "retryAfter");
      if (!p["error"].isUndefined()) ack.error = string(p, "error");
      m.payload = std::move(ack);
    } else if (type == "presence") {
      if (pt == "presence-announce") {
        m.payload = proto::PresenceAnnounce{uint(p, "awarenessId")};
      } else if (pt == "presence-unannounce") {
        m.payload = proto::PresenceUnannounce{uint(p, "awarenessId")};
      } else if (pt == "presence-join") {
        m.payload = proto::PresenceJoin{presence_client(p)};
      } else if (pt == "presence-leave") {
        m.payload = proto::PresenceLeave{presence_client(p)};
      } else if (pt == "presence-heartbeat") {
        val clients = p["clients"];
        if (!val::global("Array").call<bool>("isArray", clients)) {
          fail("payload.clients must be an array");
          return m;
        }
        proto::PresenceHeartbeat hb;
        const unsigned n = clients["length"].as<unsigned>();
        for (unsigned i = 0; i < n && !err; ++i) hb.clients.push_back(presence_client(clients[i]));
        m.payload = std::move(hb);
      } else {
        fail("unknown presence payload type");
      }
    } else if (type == "rpc") {
      proto::Rpc rpc;
      rpc.method = string(o, "rpcMethod");
      val rt = o["requestType"];
      const std::string rts = type_of(rt) == "string" ? rt.as<std::string>() : "";
      if (rts == "request") {
        rpc.request_type = proto::RpcRequestType::request;
      } else if (rts == "stream") {
        rpc.request_type = proto::RpcRequestType::stream;
      } else if (rts == "response") {
        rpc.request_type = proto::RpcRequestType::response;
      } else {
        fail("requestType must be request, stream or response");
      }
      val orig = o["originalRequestId"];
      if (!orig.isUndefined() && !orig.isNull()) rpc.original_request_id = string(o, "originalRequestId");
      if (pt == "success") {
        rpc.result = proto::RpcSuccess{any(p["payload"])};
      } else if (pt == "error") {
        proto::RpcError e;
        e.status_code = uint(p, "statusCode");
        e.details = string(p, "details");
        e.payload = any(p["payload"]);
        rpc.result = std::move(e);
      } else {
        fail("rpc payload type must be success or error");
      }
      m.payload = std::move(rpc);
    } else {
      fail("type must be doc, awareness, ack, presence or rpc");
    }
    if (!err) {
      if (auto v = proto::validate_message(m)) err = *v;
    }
    return m;
  }
};

// ---- exported functions ------------------------------------------------------------------------

val decode_message(const std::string& bytes) {
  tp::Result<proto::Message> m = proto::decode_message(tp::wasm::view_of(bytes));
  return m ? ok_result(message_to_js(m.value())) : error_result(m.error());
}

val encode_message(val obj) {
  Reader r;
  proto::Message m = r.message(obj);
  if (r.err) return error_result(*r.err);
  return ok_result(tp::wasm::to_js_bytes(proto::encode_message(m)));
}

std::string message_id(const std::string& bytes) { return proto::message_id(tp::wasm::view_of(bytes)); }

val decode_message_array(const std::string& bytes) {
  auto msgs = proto::decode_message_array(tp::wasm::view_of(bytes));
  if (!msgs) return error_result(msgs.error());
  val arr = val::array();
  for (const proto::Message& m : msgs.value()) arr.call<void>("push", message_to_js(m));
  return ok_result(arr);
}

// `frames` arrives as one buffer of concatenated frames plus their lengths, so a batch is one call.
val encode_message_array(const std::string& concatenated, val lengths) {
  ByteView all = tp::wasm::view_of(concatenated);
  std::vector<ByteView> frames;
  const unsigned n = lengths["length"].as<unsigned>();
  std::size_t off = 0;
  for (unsigned i = 0; i < n; ++i) {
    std::size_t len = lengths[i].as<std::size_t>();
    if (len > all.size - off) return error_result(tp::make_error("invalid_message_shape", "bad lengths"));
    frames.push_back(all.sub(off, len));
    off += len;
  }
  return ok_result(tp::wasm::to_js_bytes(proto::encode_message_array(frames)));
}

val encode_pubsub(const std::string& frame, val source_id) {
  Reader r;
  std::string id = r.utf8(source_id);
  return tp::wasm::to_js_bytes(proto::encode_pubsub_message(tp::wasm::view_of(frame), id));
}

val decode_pubsub(const std::string& bytes) {
  auto p = proto::decode_pubsub_message(tp::wasm::view_of(bytes));
  if (!p) return error_result(p.error());
  val o = val::object();
  o.set("sourceId", js_string(p.value().source_id));
  o.set("message", tp::wasm::to_js_bytes(p.value().message));
  return ok_result(o);
}

val envelope_to_js(const proto::ContentEncryptedEnvelope& e) {
  val o = val::object();
  o.set("wireVersion", js_number(e.wire_version));
  o.set("structureUpdate", tp::wasm::to_js_bytes(e.structure_update));
  val sidecars = val::array();
  for (const Bytes& s : e.encrypted_sidecars) sidecars.call<void>("push", tp::wasm::to_js_bytes(s));
  o.set("encryptedSidecars", sidecars);
  if (!e.compaction) {
    o.set("compaction", val::undefined());
    return o;
  }
  const proto::Compaction& c = *e.compaction;
  val co = val::object();
  co.set("sidecar", tp::wasm::to_js_bytes(c.sidecar));
  val index = val::array();
  for (const proto::CompactionIndexEntry& x : c.index) {
    val xo = val::object();
    xo.set("clientId", js_number(x.client_id));
    xo.set("minClock", js_number(x.min_clock));
    xo.set("maxClock", js_number(x.max_clock));
    index.call<void>("push", xo);
  }
  co.set("index", index);
  co.set("hash", tp::wasm::to_js_bytes(c.hash));
  val hashes = val::array();
  for (const Bytes& h : c.source_hashes) hashes.call<void>("push", tp::wasm::to_js_bytes(h));
  co.set("sourceHashes", hashes);
  o.set("compaction", co);
  return o;
}

val decode_envelope(const std::string& bytes, bool strict) {
  auto e = proto::decode_content_encrypted(tp::wasm::view_of(bytes),
                                           strict ? proto::EnvelopeMode::strict : proto::EnvelopeMode::reference);
  return e ? ok_result(envelope_to_js(e.value())) : error_result(e.error());
}

val encode_envelope(val o) {
  Reader r;
  proto::ContentEncryptedEnvelope e;
  if (Reader::type_of(o) != "object" || o.isNull()) {
    return error_result(tp::make_error("invalid_message_shape", "payload must be an object"));
  }
  if (!o["wireVersion"].isUndefined()) e.wire_version = r.uint(o, "wireVersion");
  e.structure_update = r.bytes(o, "structureUpdate");
  val sidecars = o["encryptedSidecars"];
  if (!sidecars.isUndefined()) {
    if (!val::global("Array").call<bool>("isArray", sidecars)) r.fail("encryptedSidecars must be an array");
    const unsigned n = r.err ? 0 : sidecars["length"].as<unsigned>();
    for (unsigned i = 0; i < n && !r.err; ++i) {
      val holder = val::object();
      holder.set("s", sidecars[i]);
      e.encrypted_sidecars.push_back(r.bytes(holder, "s"));
    }
  }
  val c = o["compaction"];
  if (!r.err && !c.isUndefined() && !c.isNull()) {
    proto::Compaction comp;
    comp.sidecar = r.bytes(c, "sidecar");
    comp.hash = r.bytes(c, "hash");
    val index = c["index"];
    const bool index_ok = val::global("Array").call<bool>("isArray", index);
    const unsigned n = index_ok ? index["length"].as<unsigned>() : 0;
    if (!index_ok) r.fail("compaction.index must be an array");
    for (unsigned i = 0; i < n && !r.err; ++i) {
      val x = index[i];
      comp.index.push_back({r.uint(x, "clientId"), r.uint(x, "minClock"), r.uint(x, "maxClock")});
    }
    val hashes = c["sourceHashes"];
    const bool hashes_ok = val::global("Array").call<bool>("isArray", hashes);
    const unsigned m = hashes_ok ? hashes["length"].as<unsigned>() : 0;
    if (!hashes_ok) r.fail("compaction.sourceHashes must be an array");
    for (unsigned i = 0; i < m && !r.err; ++i) {
      val holder = val::object();
      holder.set("s", hashes[i]);
      comp.source_hashes.push_back(r.bytes(holder, "s"));
    }
    e.compaction = std::move(comp);
  }
  if (r.err) return error_result(*r.err);
  return ok_result(tp::wasm::to_js_bytes(proto::encode_content_encrypted(e)));
}

}  // namespace

// One lib0 `any` value (RPC payloads): the same reader and writer the frame codec uses.
val encode_any_value(val value) {
  Reader r;
  Any a = r.any(value);
  if (r.err) return error_result(*r.err);
  return ok_result(tp::wasm::to_js_bytes(tp::lib0::encode_any(a)));
}

val decode_any_value(const std::string& bytes) {
  auto a = tp::lib0::decode_any(tp::wasm::view_of(bytes));
  return a ? ok_result(any_to_js(a.value())) : error_result(a.error());
}

EMSCRIPTEN_BINDINGS(tp_protocol) {
  emscripten::function("protocolEncodeAny", &encode_any_value);
  emscripten::function("protocolDecodeAny", &decode_any_value);
  emscripten::function("protocolDecodeMessage", &decode_message);
  emscripten::function("protocolEncodeMessage", &encode_message);
  emscripten::function("protocolMessageId", &message_id);
  emscripten::function("protocolDecodeMessageArray", &decode_message_array);
  emscripten::function("protocolEncodeMessageArray", &encode_message_array);
  emscripten::function("protocolEncodePubSub", &encode_pubsub);
  emscripten::function("protocolDecodePubSub", &decode_pubsub);
  emscripten::function("protocolDecodeEnvelope", &decode_envelope);
  emscripten::function("protocolEncodeEnvelope", &encode_envelope);
}
