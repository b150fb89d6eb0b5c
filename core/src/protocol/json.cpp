#include "tp/protocol/json.hpp"

namespace tp::protocol {

namespace {

using json = nlohmann::ordered_json;

json hex(ByteView b) {
  json j = json::object();
  j["$hex"] = to_hex(b);
  return j;
}

json undefined() {
  json j = json::object();
  j["$undefined"] = true;
  return j;
}

void put_presence_client(json& j, const PresenceClient& c) {
  j["awarenessId"] = c.awareness_id;
  j["clientId"] = c.client_id;
  j["userId"] = c.user_id;
  j["data"] = lib0::any_to_json(c.data);
}

const char* request_type_name(RpcRequestType t) {
  switch (t) {
    case RpcRequestType::request: return "request";
    case RpcRequestType::stream: return "stream";
    case RpcRequestType::response: return "response";
  }
  return "request";
}

json payload_json(const Message& m) {
  json p = json::object();
  p["type"] = payload_type_name(m.payload);
  if (auto* s = m.get<SyncStep1>()) p["sv"] = hex(s->state_vector);
  if (auto* s = m.get<SyncStep2>()) p["update"] = {{"version", s->version}, {"data", hex(s->data)}};
  if (auto* s = m.get<DocUpdate>()) p["update"] = {{"version", s->version}, {"data", hex(s->data)}};
  if (auto* a = m.get<AuthMessage>()) {
    p["permission"] = a->permission == Permission::denied ? "denied" : "allowed";
    p["reason"] = a->reason;
  }
  if (auto* a = m.get<AwarenessUpdate>()) p["update"] = hex(a->update);
  if (auto* a = m.get<Ack>()) {
    p["messageId"] = a->message_id;
    if (a->retry_after) p["retryAfter"] = *a->retry_after;
    if (a->error) p["error"] = *a->error;
  }
  if (auto* a = m.get<PresenceAnnounce>()) p["awarenessId"] = a->awareness_id;
  if (auto* a = m.get<PresenceUnannounce>()) p["awarenessId"] = a->awareness_id;
  const PresenceClient* client = nullptr;
  if (auto* a = m.get<PresenceJoin>()) client = &a->client;
  if (auto* a = m.get<PresenceLeave>()) client = &a->client;
  if (client) put_presence_client(p, *client);
  if (auto* h = m.get<PresenceHeartbeat>()) {
    p["clients"] = json::array();
    for (const PresenceClient& c : h->clients) {
      json cj = json::object();
      put_presence_client(cj, c);
      p["clients"].push_back(std::move(cj));
    }
  }
  if (auto* r = m.get<Rpc>()) {
    if (auto* ok = std::get_if<RpcSuccess>(&r->result)) {
      p["payload"] = lib0::any_to_json(ok->payload);
    } else {
      const RpcError& e = std::get<RpcError>(r->result);
      p["statusCode"] = e.status_code;
      p["details"] = e.details;
      p["payload"] = lib0::any_to_json(e.payload);
    }
  }
  return p;
}

}  // namespace

json message_to_json(const Message& m) {
  json j = json::object();
  const MessageType t = m.type();
  j["type"] = to_string(t);
  j["document"] = t == MessageType::ack ? json(nullptr) : json(m.document);
  j["encrypted"] = m.encrypted;
  j["payload"] = payload_json(m);
  if (auto* r = m.get<Rpc>()) {
    j["rpcMethod"] = r->method;
    j["requestType"] = request_type_name(r->request_type);
    j["originalRequestId"] = r->original_request_id ? json(*r->original_request_id) : json(nullptr);
  }
  j["id"] = m.id;
  return j;
}

json envelope_to_json(const ContentEncryptedEnvelope& e) {
  json j = json::object();
  j["wireVersion"] = e.wire_version;
  j["structureUpdate"] = hex(e.structure_update);
  j["encryptedSidecars"] = json::array();
  for (const Bytes& s : e.encrypted_sidecars) j["encryptedSidecars"].push_back(hex(s));
  if (!e.compaction) {
    j["compaction"] = undefined();
  } else {
    const Compaction& c = *e.compaction;
    json cj = json::object();
    cj["sidecar"] = hex(c.sidecar);
    cj["index"] = json::array();
    for (const CompactionIndexEntry& x : c.index) {
      cj["index"].push_back({{"clientId", x.client_id}, {"minClock", x.min_clock}, {"maxClock", x.max_clock}});
    }
    cj["hash"] = hex(c.hash);
    cj["sourceHashes"] = json::array();
    for (const Bytes& h : c.source_hashes) cj["sourceHashes"].push_back(hex(h));
    j["compaction"] = cj;
  }
  return j;
}

json error_to_json(const Error& e) {
  std::vector<std::string> chain = error_chain(e);
  json j = json::object();
  j["error"] = e.code;
  j["message"] = chain.front();
  if (chain.size() > 1) {
    j["causes"] = json::array();
    for (std::size_t i = 1; i < chain.size(); ++i) j["causes"].push_back(chain[i]);
  }
  return j;
}

}  // namespace tp::protocol
