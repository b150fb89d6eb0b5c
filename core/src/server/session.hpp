// What the server keeps per document while it is loaded: its state, members, presence roster,
// and the frames that wait for its load. Private to the server module.
#pragma once
#include <algorithm>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "milestones.hpp"
#include "sidecars.hpp"
#include "tp/server/server.hpp"

namespace tp::server {

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

// A milestone request (or an automatic milestone) waiting for its turn: one is decided at a
// time, on the document's committed milestones, once they are loaded.
struct MilestoneJob {
  ClientHandle client = 0;  // 0: an automatic milestone
  std::string method;
  std::string request_id;
  bool encrypted = false;  // the request's flag
  lib0::Any payload;       // the request's success payload
  std::string user_id;     // the requester's userId ("" when none)
  // automatic milestones
  double created_at = 0;
  Bytes snapshot;
  std::optional<std::string> name;
};

// A document's milestones as stored (creation order), loaded on first use.
struct MilestoneBook {
  enum class State : std::uint8_t { unloaded, loading, loaded };
  State state = State::unloaded;
  std::vector<MilestoneMeta> list;
  std::deque<MilestoneJob> waiting;
  bool busy = false;  // a storage operation is out: the next job waits for its answer
  // Automatic milestones: one counter and one clock for every trigger, from the first write.
  bool counting = false;
  std::uint64_t update_count = 0;
  double last_time = 0;
};

struct DocumentSession {
  std::string key;
  std::string document;  // bare name, as clients see it
  std::string document_id;  // namespaced as the reference names it: "room/document" (or the bare name)
  MilestoneBook milestones;
  std::uint32_t topic = 0;  // this session's number in ReaderOutput / PublishOutput
  bool encrypted = false;
  bool tentative = true;  // fixed by the first doc/awareness message (spec 4.3)
  bool loading = false;   // a LoadOutput is out; frames wait in `queue`
  struct Member {
    ClientHandle client;
    bool can_read;
  };
  std::vector<Member> members;  // join order
  Roster roster;
  std::vector<Bytes> pending;   // V2 structure updates not merged yet
  std::vector<Sidecar> sidecars;  // encrypted documents: the running sidecar list (records applied)
  struct Queued {
    ClientHandle client;
    Bytes frame;
  };
  std::deque<Queued> queue;  // frames that arrived while loading, in order
  std::size_t queued_bytes = 0;
  std::uint32_t stored_entries = 0;  // entries in storage since the last compaction
  std::size_t stored_bytes = 0;      // bytes appended to storage since the document was loaded
  std::size_t compacted_bytes = 0;   // stored_bytes when compaction was last asked for
  std::uint32_t in_flight = 0;       // accepted updates not committed yet
  std::uint64_t group_tag = 0;       // scratch for Server::group: the batch that grouped this last
  std::size_t group_index = 0;       // and this document's group in it
  double empty_since_ms = -1;        // >= 0: no members since then (unload candidate)
  // Cluster: the presence other nodes announced for this document, by node id.
  struct RemoteNode {
    std::vector<protocol::PresenceClient> clients;
    double last_seen_ms = 0;
  };
  std::map<std::string, RemoteNode> remote;

  Member* member(ClientHandle c) {
    for (auto& m : members) {
      if (m.client == c) return &m;
    }
    return nullptr;
  }
};

// An rpc frame the host's handler is serving: where its answers go and with which ids.
struct Server::PendingCall {
  ClientHandle client = 0;
  std::string method;
  std::string document;
  std::string reply_id;  // originalRequestId of the frames sent for it
  std::string ack_id;    // the frame's own id (acked when the call ends)
  bool encrypted = false;
  double deadline = 0;  // 0: none
};

// A milestone storage operation out, and what its success means.
struct Server::PendingOp {
  std::string key;
  ClientHandle client = 0;  // 0: an automatic milestone
  std::string method;
  std::string request_id;
  bool encrypted = false;
  MilestoneOp kind = MilestoneOp::put;
  MilestoneMeta meta;  // put: the milestone as it will be stored
  bool insert = false;  // put of a new milestone
  std::string id;
  lib0::Any response;  // the success payload
};

}  // namespace tp::server
