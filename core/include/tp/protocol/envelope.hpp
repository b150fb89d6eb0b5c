// The content-encrypted envelope (spec 1.4): what real clients and storage put in the `data` of
// doc update / sync-step-2 frames, for encrypted and plaintext documents alike.
//
//   vu 1 (envelope version) | vb structureUpdate (Y.js V2) | vu n, n x vb sidecar
//   [u8 hasCompaction] (read only if bytes remain; 1 = present)
//   if 1: vb compactedSidecar | vu k, k x (vu clientId, vu minClock, vu maxClock) | vb hash |
//         vu m, m x vb sourceHash
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"

namespace tp::protocol {

constexpr std::uint64_t kEnvelopeVersion = 1;

struct CompactionIndexEntry {
  std::uint64_t client_id = 0;
  std::uint64_t min_clock = 0;
  std::uint64_t max_clock = 0;
  bool operator==(const CompactionIndexEntry& o) const {
    return client_id == o.client_id && min_clock == o.min_clock && max_clock == o.max_clock;
  }
};

struct Compaction {
  Bytes sidecar;
  std::vector<CompactionIndexEntry> index;
  Bytes hash;
  std::vector<Bytes> source_hashes;
  bool operator==(const Compaction& o) const {
    return sidecar == o.sidecar && index == o.index && hash == o.hash &&
           source_hashes == o.source_hashes;
  }
};

struct ContentEncryptedEnvelope {
  std::uint64_t wire_version = kEnvelopeVersion;
  Bytes structure_update;  // a Y.js V2 update, may be empty
  std::vector<Bytes> encrypted_sidecars;
  std::optional<Compaction> compaction;
  bool operator==(const ContentEncryptedEnvelope& o) const {
    return wire_version == o.wire_version && structure_update == o.structure_update &&
           encrypted_sidecars == o.encrypted_sidecars && compaction == o.compaction;
  }
};

enum class EnvelopeMode {
  // What the reference accepts: trailing bytes ignored, hasCompaction != 1 means "absent",
  // a missing hasCompaction byte is the legacy 3-byte form. (A raw V1 update starting with 01
  // parses as an envelope this way: spec 6 item 2.)
  reference,
  // Additionally rejects trailing bytes and hasCompaction values other than 0/1
  // (code "non_canonical_envelope"). Still accepts the legacy form without the flag byte.
  strict,
};

// Errors: "unsupported_envelope_version", truncated, integer_out_of_range, length_out_of_range,
// non_canonical_envelope. Error::message starts with "Failed to decode content-encrypted payload: ".
Result<ContentEncryptedEnvelope> decode_content_encrypted(ByteView bytes,
                                                          EnvelopeMode mode = EnvelopeMode::reference);
// Always writes the hasCompaction byte (canonical empty envelope: 01 00 00 00).
Bytes encode_content_encrypted(const ContentEncryptedEnvelope& envelope);
// Plaintext wrapping of a V2 update: 01 vb(update) 00 00.
Bytes wrap_plain_update(ByteView structure_update_v2);
// The structure update of a plaintext envelope (version 1, no sidecars, no compaction; with or
// without the hasCompaction byte) as a view into `bytes`, when decode_content_encrypted(strict)
// would accept it; nullopt for every other envelope (decode it fully).
std::optional<ByteView> peek_plain_envelope(ByteView bytes);

}  // namespace tp::protocol
