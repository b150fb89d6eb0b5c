// A host for the server core in tests: answers loads from an in-memory store, commits every
// flushed batch, compacts when told, until the core has nothing more to ask. Failures and time
// are switches. (The JS Server does the same with real storage and real time.)
#pragma once
#include <catch2/catch.hpp>
#include <fstream>
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tp/protocol/message.hpp"
#include "tp/server/server.hpp"

namespace tp::testing {

// The frame a reference transcript step sent, found by scenario name and label prefix.
inline Bytes vector_frame(const std::string& scenario, const std::string& label) {
  static nlohmann::json v = [] {
    std::ifstream in(std::string(TP_VECTORS_DIR) + "/server.json");
    return nlohmann::json::parse(in);
  }();
  for (const auto& s : v["scenarios"]) {
    if (s["name"] != scenario) continue;
    for (const auto& step : s["steps"]) {
      if (step.value("label", "").rfind(label, 0) == 0) return *from_hex(step["hex"].get<std::string>());
    }
  }
  FAIL("no vector step " << scenario << " / " << label);
  return {};
}


struct ServerHost {
  server::Server srv;
  std::map<std::string, std::vector<Bytes>> store;
  double now_ms = 1.7e12;
  bool fail_commits = false;
  bool fail_loads = false;
  bool hold_loads = false;  // leave LoadOutputs unanswered (answer_loads() later)
  std::vector<std::string> held;
  std::size_t commits = 0;
  std::map<std::string, std::vector<server::ClientHandle>> readers;  // from ReaderOutputs
  std::vector<server::PublishOutput> cluster;                        // what went to other nodes
  // Milestone storage (MilestoneStorage in memory): per key, in creation order.
  struct StoredMilestone {
    std::string id;
    Bytes meta;
    std::optional<Bytes> snapshot;
  };
  std::map<std::string, std::vector<StoredMilestone>> milestones;
  bool hold_milestones = false;        // leave milestone operations unanswered (answer_milestones() later)
  bool fail_milestone_writes = false;  // puts and removes fail ("disk full")
  bool fail_milestone_loads = false;   // loadMilestones fails ("database is locked")
  std::vector<server::MilestoneStoreOutput> held_milestones;
  std::size_t milestone_loads = 0;
  std::vector<server::RpcCallOutput> calls;             // what the application's handlers were asked
  std::vector<server::MilestoneCreatedOutput> created;  // automatic milestones stored

  explicit ServerHost(server::ServerConfig config = {}) : srv(std::move(config)) {}

  server::ClientHandle open(const std::string& id, nlohmann::json context, server::Outputs* out = nullptr) {
    server::Outputs o;
    auto h = srv.open(id, std::move(context), now_ms, o);
    settle(o);
    if (out) *out = std::move(o);
    return h;
  }
  server::Outputs send(server::ClientHandle c, const Bytes& frame) {
    srv.advance_time(now_ms);
    auto out = srv.message(c, frame);
    settle(out);
    return out;
  }
  server::Outputs close(server::ClientHandle c) {
    auto out = srv.close(c);
    settle(out);
    return out;
  }
  server::Outputs tick(double advance_ms) {
    now_ms += advance_ms;
    auto out = srv.tick(now_ms);
    settle(out);
    return out;
  }
  // Runs a core call that answers something (rpc_response, ...) and settles what follows.
  server::Outputs then(server::Outputs out) {
    settle(out);
    return out;
  }
  server::Outputs answer_milestones() {
    server::Outputs out;
    auto ops = std::move(held_milestones);
    held_milestones.clear();
    for (auto& op : ops) store_milestone(op, out);
    settle(out);
    return out;
  }
  server::Outputs answer_loads() {
    server::Outputs out;
    auto keys = std::move(held);
    held.clear();
    for (const auto& k : keys) load(k, out);
    settle(out);
    return out;
  }

  // Carries out loads, compactions and commits until the core asks for nothing more.
  void settle(server::Outputs& out) {
    for (std::size_t i = 0;; ) {
      for (; i < out.size(); ++i) {
        expand(out[i]);
        if (const auto* l = std::get_if<server::LoadOutput>(&out[i])) {
          if (hold_loads) {
            held.push_back(l->key);
          } else {
            std::string key = l->key;
            load(key, out);
          }
        } else if (const auto* c = std::get_if<server::CompactOutput>(&out[i])) {
          std::string key = c->key;
          compact(key, out);
        } else if (const auto* ml = std::get_if<server::MilestoneLoadOutput>(&out[i])) {
          std::string key = ml->key;
          load_milestones(key, out);
        } else if (const auto* ms = std::get_if<server::MilestoneStoreOutput>(&out[i])) {
          server::MilestoneStoreOutput op = *ms;
          if (hold_milestones) {
            held_milestones.push_back(std::move(op));
          } else {
            store_milestone(op, out);
          }
        } else if (const auto* call = std::get_if<server::RpcCallOutput>(&out[i])) {
          calls.push_back(*call);
        } else if (const auto* mc = std::get_if<server::MilestoneCreatedOutput>(&out[i])) {
          created.push_back(*mc);
        }
      }
      auto batch = srv.flush();
      if (batch.id == 0) return;
      ++commits;
      if (!fail_commits) {
        for (auto& w : batch.writes) store[w.key].push_back(w.entry);
      }
      auto more = srv.committed(batch.id, !fail_commits, fail_commits ? "disk full" : "");
      out.insert(out.end(), more.begin(), more.end());
    }
  }

  // What a host does with reader changes and publishes: a publish becomes the sends it fans out to.
  void expand(server::Output& o) {
    if (const auto* r = std::get_if<server::ReaderOutput>(&o)) {
      auto& list = readers[r->key];
      list.erase(std::remove(list.begin(), list.end(), r->client), list.end());
      if (r->reading) list.push_back(r->client);
    } else if (auto* p = std::get_if<server::PublishOutput>(&o)) {
      if (p->cluster) cluster.push_back(*p);
      server::SendOutput send;
      if (p->local) {
        for (auto c : readers[p->key]) {
          bool excepted = c == p->except || std::count(p->also_except.begin(), p->also_except.end(), c) > 0;
          if (!excepted) send.to.push_back(c);
        }
      }
      send.frame = std::move(p->frame);
      o = std::move(send);
    } else if (const auto* a = std::get_if<server::AckOutput>(&o)) {
      server::SendOutput send{{a->client}, Bytes(protocol::kAckFrameSize)};
      protocol::write_ack_frame(a->id, send.frame.data());
      o = std::move(send);
    }
  }

 private:
  void load_milestones(const std::string& key, server::Outputs& out) {
    ++milestone_loads;
    if (fail_milestone_loads) {
      auto more = srv.milestones_load_failed(key, "database is locked");
      out.insert(out.end(), more.begin(), more.end());
      return;
    }
    std::vector<server::StoredMilestone> list;
    for (const auto& m : milestones[key]) list.push_back({m.id, m.meta});
    auto more = srv.milestones_loaded(key, list);
    out.insert(out.end(), more.begin(), more.end());
  }
  void store_milestone(const server::MilestoneStoreOutput& op, server::Outputs& out) {
    auto& list = milestones[op.key];
    auto it = std::find_if(list.begin(), list.end(), [&](const StoredMilestone& m) { return m.id == op.id; });
    server::Outputs more;
    if (op.kind == server::MilestoneOp::snapshot) {
      std::optional<ByteView> snap;
      if (it != list.end() && it->snapshot) snap = ByteView(*it->snapshot);
      more = srv.milestone_done(op.op, true, "", snap);
    } else if (fail_milestone_writes) {
      more = srv.milestone_done(op.op, false, "disk full");
    } else {
      if (op.kind == server::MilestoneOp::remove) {
        if (it != list.end()) list.erase(it);
      } else if (it == list.end()) {
        list.push_back({op.id, op.meta, op.snapshot});
      } else {
        it->meta = op.meta;
        if (op.snapshot) it->snapshot = op.snapshot;
      }
      more = srv.milestone_done(op.op, true);
    }
    out.insert(out.end(), more.begin(), more.end());
  }
  void load(const std::string& key, server::Outputs& out) {
    server::Outputs more;
    if (fail_loads) {
      more = srv.load_failed(key, "database is locked");
    } else {
      const auto& entries = store[key];
      std::vector<ByteView> views(entries.begin(), entries.end());
      more = srv.loaded(key, views);
    }
    out.insert(out.end(), more.begin(), more.end());
  }
  void compact(const std::string& key, server::Outputs& out) {
    auto& entries = store[key];
    std::vector<ByteView> views(entries.begin(), entries.end());
    auto merged = srv.merge_entries(views, out);
    if (merged) entries = {merged.value()};
  }
};

}  // namespace tp::testing
