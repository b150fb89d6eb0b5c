#include "sidecars.hpp"

#include <sodium.h>

#include "tp/lib0/decoding.hpp"
#include "tp/lib0/encoding.hpp"
#include "tp/yjs/updates.hpp"

namespace tp::server {

Bytes sha256(ByteView bytes) {
  Bytes out(crypto_hash_sha256_BYTES);
  crypto_hash_sha256(out.data(), bytes.data, bytes.size);
  return out;
}

std::vector<protocol::CompactionIndexEntry> index_of(ByteView structure_update) {
  std::vector<protocol::CompactionIndexEntry> index;
  if (structure_update.empty()) return index;
  auto meta = yjs::parse_update_meta_v2(structure_update);
  if (!meta) return index;
  for (const auto& r : meta.value()) {
    if (r.to > r.from) index.push_back({r.client, r.from, r.to - 1});
  }
  return index;
}

StoredEntry entry_from_envelope(protocol::ContentEncryptedEnvelope envelope) {
  StoredEntry e;
  auto index = index_of(envelope.structure_update);
  if (!index.empty()) {
    for (auto& data : envelope.encrypted_sidecars) {
      Bytes hash = sha256(data);
      e.sidecars.push_back({std::move(data), std::move(hash), index});
    }
  }
  e.structure = std::move(envelope.structure_update);
  e.compaction = std::move(envelope.compaction);
  return e;
}

Bytes encode_merged_entry(ByteView structure, const std::vector<Sidecar>& sidecars) {
  lib0::Encoder enc;
  enc.write_var_uint(2);
  enc.write_var_bytes(structure);
  enc.write_var_uint(sidecars.size());
  for (const auto& s : sidecars) {
    enc.write_var_bytes(s.data);
    enc.write_var_uint(s.index.size());
    for (const auto& r : s.index) {
      enc.write_var_uint(r.client_id);
      enc.write_var_uint(r.min_clock);
      enc.write_var_uint(r.max_clock);
    }
  }
  return enc.take();
}

Result<StoredEntry> decode_entry(ByteView bytes) {
  lib0::Decoder probe(bytes);
  if (probe.read_var_uint() != 2 || !probe.ok()) {
    auto envelope = protocol::decode_content_encrypted(bytes, protocol::EnvelopeMode::strict);
    if (!envelope) return envelope.error();
    if (!envelope.value().structure_update.empty()) {
      if (auto valid = yjs::validate_update_v2(envelope.value().structure_update); !valid) return valid.error();
    }
    return entry_from_envelope(std::move(envelope).value());
  }
  StoredEntry e;
  lib0::Decoder d(bytes);
  d.read_var_uint();
  e.structure = d.read_var_bytes().to_bytes();
  std::uint64_t n = d.read_var_uint();
  if (n > d.remaining()) return make_error("invalid_entry", "merged entry: sidecar count out of range");
  for (std::uint64_t i = 0; i < n && d.ok(); ++i) {
    Sidecar s;
    s.data = d.read_var_bytes().to_bytes();
    std::uint64_t k = d.read_var_uint();
    if (k > d.remaining()) return make_error("invalid_entry", "merged entry: index length out of range");
    for (std::uint64_t j = 0; j < k && d.ok(); ++j) {
      protocol::CompactionIndexEntry r;
      r.client_id = d.read_var_uint();
      r.min_clock = d.read_var_uint();
      r.max_clock = d.read_var_uint();
      s.index.push_back(r);
    }
    s.hash = sha256(s.data);
    e.sidecars.push_back(std::move(s));
  }
  if (!d.ok() || d.has_more()) return make_error("invalid_entry", "merged entry: truncated or trailing bytes");
  if (!e.structure.empty()) {
    if (auto valid = yjs::validate_update_v2(e.structure); !valid) return valid.error();
  }
  return e;
}

namespace {

// For each source hash, the position of the first sidecar with that hash not taken yet.
bool match(const std::vector<Sidecar>& list, const protocol::Compaction& c, std::vector<bool>& taken) {
  taken.assign(list.size(), false);
  for (const auto& h : c.source_hashes) {
    bool found = false;
    for (std::size_t i = 0; i < list.size() && !found; ++i) {
      if (list[i].hash == h) {
        if (taken[i]) return false;  // a duplicate source hash can never match (distinct rule)
        taken[i] = found = true;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

bool compaction_matches(const std::vector<Sidecar>& list, const protocol::Compaction& c) {
  std::vector<bool> taken;
  return !c.source_hashes.empty() && match(list, c, taken);
}

void apply_sidecars(std::vector<Sidecar>& list, std::vector<Sidecar> own, const std::optional<protocol::Compaction>& c) {
  std::vector<bool> taken;
  if (c && !c->source_hashes.empty() && match(list, *c, taken)) {
    std::vector<Sidecar> next;
    next.push_back({c->sidecar, c->hash, c->index});
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!taken[i]) next.push_back(std::move(list[i]));
    }
    list = std::move(next);
  }
  for (auto& s : own) list.push_back(std::move(s));
}

std::vector<Bytes> overlapping(const std::vector<Sidecar>& list, ByteView diff) {
  std::vector<Bytes> out;
  if (list.empty()) return out;
  auto meta = yjs::parse_update_meta_v2(diff);
  if (!meta) return out;
  for (const auto& s : list) {
    bool hit = false;
    for (const auto& r : s.index) {
      for (const auto& m : meta.value()) {
        if (m.client == r.client_id && r.max_clock >= m.from && r.min_clock < m.to) hit = true;
      }
    }
    if (hit) out.push_back(s.data);
  }
  return out;
}

}  // namespace tp::server
