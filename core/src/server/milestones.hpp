// Milestones (spec extensions section 2): the metadata record of one milestone, its binary form
// (section 2.6, the meta entry the durable backends store), the two `any` shapes the RPC methods
// answer with (section 2.2), and UUID v4 ids from host-supplied randomness. Private to the server
// module; the per-document state and the six methods are in server.cpp.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>
#include <optional>
#include <string>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"
#include "tp/lib0/any.hpp"

namespace tp::server {

struct MilestoneMeta {
  std::string document_id;  // the namespaced key ("room/document", or the bare name)
  std::string id;
  std::string name;
  double created_at = 0;
  std::optional<double> deleted_at;
  std::optional<std::string> deleted_by;
  std::optional<std::string> lifecycle_state;
  std::optional<std::string> retention_policy_id;
  std::optional<double> expires_at;
  bool created_by_user = false;  // createdBy.type: "user", else "system"
  std::string created_by_id;

  // Soft-deleted: what list hides and get, updateName and restore treat as such.
  bool deleted() const { return deleted_at.has_value() || lifecycle_state.value_or("") == "deleted"; }
};

// Spec 2.6: magic, version, vs documentId, vs id, vs name, f64 BE createdAt, u8 flags, the
// optional fields in flag-bit order, u8 createdBy.type (1 user, 0 system), vs createdBy.id.
Bytes encode_milestone_meta(const MilestoneMeta& m);
// Errors: "Invalid message prefix", "Version not supported", or a truncated/invalid field.
// Bytes after the entry are ignored (the content record's snapshot tail).
Result<MilestoneMeta> decode_milestone_meta(ByteView bytes);

// {id, name, documentId, createdAt, createdBy{type, id}} (create and updateName answers).
lib0::Any milestone_meta_any(const MilestoneMeta& m);
// {id, name, documentId, createdAt, deletedAt, lifecycleState, expiresAt, createdBy{type, id}},
// absent values written as undefined (list and restore answers).
lib0::Any milestone_item_any(const MilestoneMeta& m);

// The default name for a new milestone: `<prefix> N` with N one more than both the number of
// milestones the document has and the highest `<prefix> N` among their names, so that no two
// milestones of a document get the same default name (the reference's count can repeat, spec 5.6).
std::string default_milestone_name(const std::string& prefix, std::size_t count, const std::vector<MilestoneMeta>& list);

// UUID v4 ids. Bytes the host supplies are used first (tests pin ids that way); then a ChaCha20
// keystream under the host's 32-byte seed. An empty seed is filled from libsodium's
// randombytes (the OS on native builds; the JS host always passes one).
class IdSource {
 public:
  explicit IdSource(Bytes seed);
  void supply(ByteView random);
  std::string next_uuid();

 private:
  Bytes seed_;
  std::uint64_t counter_ = 0;
  std::deque<std::uint8_t> supplied_;
};

std::string format_uuid_v4(const std::uint8_t bytes[16]);

// The six built-in methods: milestoneList, milestoneGet, milestoneCreate, milestoneUpdateName,
// milestoneDelete, milestoneRestore.
bool is_milestone_method(const std::string& method);

}  // namespace tp::server
