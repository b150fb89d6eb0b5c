// End-to-end encrypted documents (spec extensions section 3): the server never decrypts; it keeps
// each sidecar with its SHA-256 and the clock ranges of the update it came with, applies the
// compaction records clients send (they replace the sidecars they list), and answers a sync with
// only the sidecars that overlap the diff. Private to the server module.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"
#include "tp/protocol/envelope.hpp"

namespace tp::server {

struct Sidecar {
  Bytes data;
  Bytes hash;  // SHA-256 of data
  std::vector<protocol::CompactionIndexEntry> index;
};

// A stored entry, decoded: a client envelope (v1, compaction record included) or a merged entry
// written by merge_entries (internal v2: every sidecar with its own index, no record).
struct StoredEntry {
  Bytes structure;
  std::vector<Sidecar> sidecars;
  std::optional<protocol::Compaction> compaction;
};

Bytes sha256(ByteView bytes);
// The index the server gives every sidecar of an update: per client, [first clock, end - 1].
// Empty for a delete-only update (its sidecars are then dropped, as the reference does).
std::vector<protocol::CompactionIndexEntry> index_of(ByteView structure_update);
// From a client envelope (already validated): sidecars with hash and index.
StoredEntry entry_from_envelope(protocol::ContentEncryptedEnvelope envelope);
Result<StoredEntry> decode_entry(ByteView bytes);
// Internal v2 form: vu 2 | vb structure | vu n | n x (vb sidecar, vu k, k x (vu client, vu min, vu max)).
Bytes encode_merged_entry(ByteView structure, const std::vector<Sidecar>& sidecars);

// Whether every source hash of `c` names a distinct sidecar of `list` (first match wins).
bool compaction_matches(const std::vector<Sidecar>& list, const protocol::Compaction& c);
// Appends an entry's sidecars to the running list, first replacing the sources of its record
// (when it matches) by the compacted sidecar.
void apply_sidecars(std::vector<Sidecar>& list, std::vector<Sidecar> own, const std::optional<protocol::Compaction>& c);
// The sidecars a sync-step-2 carrying `diff` needs: those whose index overlaps the diff's ranges.
std::vector<Bytes> overlapping(const std::vector<Sidecar>& list, ByteView diff);

}  // namespace tp::server
