// End-to-end encrypted documents (spec extensions section 3), replayed from the reference's
// transcript (vectors/extensions.json -> encryptedDocument): what is stored per update (sidecars
// with SHA-256 and server-derived index, compaction records), how records replace sidecars, and
// which sidecars a sync-step-2 carries. Deviation: a record that does not match the stored
// sidecars is refused with a NACK (the reference ignores it and lets the sidecar list grow).
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "../../core/src/server/sidecars.hpp"
#include "server_host.hpp"
#include "tp/protocol/message.hpp"

using nlohmann::json;
using namespace tp;

TEST_CASE("encrypted document transcript: sidecars, compaction records, sync-step-2 selection", "[server][encrypted][vectors]") {
  std::ifstream in(std::string(TP_VECTORS_DIR) + "/extensions.json");
  json steps = json::parse(in)["encryptedDocument"]["steps"];
  server::ServerConfig config;
  config.permissions = server::PermissionMode::none;  // the transcript's server had no checks
  testing::ServerHost h(config);
  std::map<std::string, server::ClientHandle> peers{{"peer-A", h.open("A", json::object())},
                                                    {"peer-B", h.open("B", json::object())}};
  std::map<server::ClientHandle, std::string> names{{peers["peer-A"], "peer-A"}, {peers["peer-B"], "peer-B"}};
  int compared = 0;
  std::set<std::size_t> refused;  // positions the reference's log has and ours does not
  for (const auto& step : steps) {
    std::string label = step["label"];
    if (step.contains("api")) continue;  // milestones over RPC: test_server_rpc.cpp
    INFO(label);
    REQUIRE(step["in"].size() == 1);
    const auto& input = step["in"][0];
    auto out = h.send(peers.at(input["from"]), *from_hex(input["hex"].get<std::string>()));
    std::vector<std::pair<std::string, std::string>> got, want;
    for (const auto& o : out) {
      if (const auto* s = std::get_if<server::SendOutput>(&o)) {
        for (auto c : s->to) got.emplace_back(names.at(c), to_hex(s->frame));
      }
    }
    bool deviates = label.rfind("update whose compaction lists", 0) == 0;
    if (deviates) {
      REQUIRE(got.size() == 1);  // only the sender hears back, with a NACK; nothing is relayed
      CHECK(got[0].first == "peer-A");
      auto m = protocol::decode_message(*from_hex(got[0].second));
      REQUIRE(m);
      CHECK(m.value().get<protocol::Ack>()->error.value_or("") == "Compaction record does not match the stored sidecars");
      refused.insert(step["storage"]["pendingLog"].size() - 1);
      continue;
    }
    for (const auto& o : step["out"]) want.emplace_back(o["to"], o["hex"]);
    CHECK(got == want);
    ++compared;
    // What is stored: one entry per update with a structure, its sidecars' hashes and index.
    json log = json::array();
    for (std::size_t i = 0; i < step["storage"]["pendingLog"].size(); ++i) {
      if (!refused.count(i)) log.push_back(step["storage"]["pendingLog"][i]);
    }
    const auto& stored = h.store["/enc"];
    REQUIRE(stored.size() == log.size());
    for (std::size_t i = 0; i < stored.size(); ++i) {
      auto e = server::decode_entry(stored[i]);
      REQUIRE(e);
      REQUIRE(e.value().sidecars.size() == log[i]["sidecars"].size());
      for (std::size_t k = 0; k < e.value().sidecars.size(); ++k) {
        const auto& want_sc = log[i]["sidecars"][k];
        CHECK(to_hex(e.value().sidecars[k].hash) == want_sc["sha256"].get<std::string>());
        REQUIRE(e.value().sidecars[k].index.size() == want_sc["index"].size());
        CHECK(e.value().sidecars[k].index[0].min_clock == want_sc["index"][0]["minClock"].get<std::uint64_t>());
        CHECK(e.value().sidecars[k].index[0].max_clock == want_sc["index"][0]["maxClock"].get<std::uint64_t>());
      }
      CHECK(e.value().compaction.has_value() == !log[i]["compaction"].is_null());
    }
  }
  CHECK(compared == 10);
}

TEST_CASE("stored entries of an encrypted document compact into one entry with the materialised sidecars", "[server][encrypted]") {
  std::ifstream in(std::string(TP_VECTORS_DIR) + "/extensions.json");
  json steps = json::parse(in)["encryptedDocument"]["steps"];
  server::ServerConfig config;
  config.permissions = server::PermissionMode::none;
  config.unload_after_ms = 0;
  testing::ServerHost h(config);
  auto a = h.open("A", json::object());
  for (int i = 0; i < 6; ++i) h.send(a, *from_hex(steps[i]["in"][0]["hex"].get<std::string>()));  // through 'd'
  auto& stored = h.store["/enc"];
  REQUIRE(stored.size() == 5);
  std::vector<ByteView> views(stored.begin(), stored.end());
  server::Outputs logs;
  auto merged = h.srv.merge_entries(views, logs);
  REQUIRE(merged);
  auto e = server::decode_entry(merged.value());
  REQUIRE(e);
  CHECK(e.value().sidecars.size() == 2);  // [compacted a-c, d], as the reference materialises
  stored = {merged.value()};
  h.close(a);  // unloads; the next sync reads the compacted entry
  auto b = h.open("B", json::object());
  auto out = h.send(b, *from_hex(steps[6]["in"][0]["hex"].get<std::string>()));
  std::vector<std::string> got;
  for (const auto& o : out) {
    if (const auto* s = std::get_if<server::SendOutput>(&o)) got.push_back(to_hex(s->frame));
  }
  REQUIRE(got.size() == 3);
  CHECK(got[0] == steps[6]["out"][0]["hex"].get<std::string>());  // same sync-step-2 bytes as before compaction
}
