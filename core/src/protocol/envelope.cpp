#include "tp/protocol/envelope.hpp"

#include <string>

#include "tp/lib0/decoding.hpp"
#include "tp/lib0/encoding.hpp"

namespace tp::protocol {

namespace {

Error envelope_error(const std::string& code, const std::string& inner) {
  return make_error(code, "Failed to decode content-encrypted payload: " + inner);
}

Error from_decoder(const lib0::Decoder& d) {
  const Error& e = d.error();
  return envelope_error(e.code,
                        e.code == "length_out_of_range" ? "Length out of range of buffer" : e.message);
}

}  // namespace

Result<ContentEncryptedEnvelope> decode_content_encrypted(ByteView bytes, EnvelopeMode mode) {
  lib0::Decoder d(bytes);
  ContentEncryptedEnvelope out;
  out.wire_version = d.read_var_uint();
  if (!d.ok()) return from_decoder(d);
  if (out.wire_version != kEnvelopeVersion) {
    return envelope_error("unsupported_envelope_version",
                          "Unsupported content-encrypted version: " + std::to_string(out.wire_version));
  }
  out.structure_update = d.read_var_bytes().to_bytes();
  // Counts are never used to reserve: each element consumes bytes or fails.
  const std::uint64_t sidecars = d.read_var_uint();
  for (std::uint64_t i = 0; i < sidecars && d.ok(); ++i) {
    ByteView s = d.read_var_bytes();
    if (d.ok()) out.encrypted_sidecars.push_back(s.to_bytes());
  }
  if (!d.ok()) return from_decoder(d);
  if (!d.has_more()) return out;  // legacy form without the hasCompaction byte

  const std::uint8_t has_compaction = d.read_u8();
  if (has_compaction == 1) {
    Compaction c;
    c.sidecar = d.read_var_bytes().to_bytes();
    const std::uint64_t n = d.read_var_uint();
    for (std::uint64_t i = 0; i < n && d.ok(); ++i) {
      CompactionIndexEntry entry;
      entry.client_id = d.read_var_uint();
      entry.min_clock = d.read_var_uint();
      entry.max_clock = d.read_var_uint();
      if (d.ok()) c.index.push_back(entry);
    }
    c.hash = d.read_var_bytes().to_bytes();
    const std::uint64_t m = d.read_var_uint();
    for (std::uint64_t i = 0; i < m && d.ok(); ++i) {
      ByteView h = d.read_var_bytes();
      if (d.ok()) c.source_hashes.push_back(h.to_bytes());
    }
    if (!d.ok()) return from_decoder(d);
    out.compaction = std::move(c);
  } else if (mode == EnvelopeMode::strict && has_compaction != 0) {
    return envelope_error("non_canonical_envelope",
                          "hasCompaction byte is " + std::to_string(has_compaction) + ", expected 0 or 1");
  }
  if (mode == EnvelopeMode::strict && d.has_more()) {
    return envelope_error("non_canonical_envelope",
                          std::to_string(d.remaining()) + " trailing bytes after the envelope");
  }
  return out;
}

Bytes encode_content_encrypted(const ContentEncryptedEnvelope& env) {
  lib0::Encoder e(env.structure_update.size() + 8);
  e.write_var_uint(env.wire_version);
  e.write_var_bytes(env.structure_update);
  e.write_var_uint(env.encrypted_sidecars.size());
  for (const Bytes& s : env.encrypted_sidecars) e.write_var_bytes(s);
  if (!env.compaction) {
    e.write_u8(0);
    return e.take();
  }
  const Compaction& c = *env.compaction;
  e.write_u8(1);
  e.write_var_bytes(c.sidecar);
  e.write_var_uint(c.index.size());
  for (const CompactionIndexEntry& entry : c.index) {
    e.write_var_uint(entry.client_id);
    e.write_var_uint(entry.min_clock);
    e.write_var_uint(entry.max_clock);
  }
  e.write_var_bytes(c.hash);
  e.write_var_uint(c.source_hashes.size());
  for (const Bytes& h : c.source_hashes) e.write_var_bytes(h);
  return e.take();
}

Bytes wrap_plain_update(ByteView structure_update_v2) {
  lib0::Encoder e(structure_update_v2.size + 8);
  e.write_var_uint(kEnvelopeVersion);
  e.write_var_bytes(structure_update_v2);
  e.write_var_uint(0);
  e.write_u8(0);
  return e.take();
}

std::optional<ByteView> peek_plain_envelope(ByteView bytes) {
  lib0::Decoder d(bytes);
  if (d.read_var_uint() != kEnvelopeVersion) return std::nullopt;
  ByteView structure = d.read_var_bytes();
  if (d.read_var_uint() != 0 || !d.ok()) return std::nullopt;
  if (d.has_more() && d.read_u8() != 0) return std::nullopt;
  if (d.has_more() || !d.ok()) return std::nullopt;
  return structure;
}

}  // namespace tp::protocol
