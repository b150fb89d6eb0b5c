// The Y.js update algebra without a Y.Doc: merge, diff, state vectors, V1<->V2 conversion and a
// strict validity check, byte-compatible with yjs 13.6 (`Y.mergeUpdatesV2`, `Y.diffUpdateV2`,
// `Y.encodeStateVectorFromUpdateV2`, `Y.convertUpdateFormatV1ToV2`, ...).
//
// Every function parses untrusted bytes. Unlike yjs, which reads past the end of a V2 column as
// zeros and ignores trailing bytes, these functions are strict: a malformed update is an Error
// with a stable `code` (see README.md) and a message for humans. Nothing is allocated from a
// declared count before that count is checked against the bytes that remain.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "tp/common/bytes.hpp"
#include "tp/common/result.hpp"

namespace tp::yjs {

enum class UpdateFormat : std::uint8_t { v1 = 1, v2 = 2 };

// client -> next expected clock, in the order stored (yjs writes clients by descending id).
using StateVector = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

// What a successful validation learned about an update.
struct UpdateInfo {
  std::uint64_t structs = 0;        // GC, Skip and Item structs
  std::uint64_t clients = 0;        // client blocks in the struct section
  std::uint64_t delete_ranges = 0;  // (clock, len) ranges in the delete set
  bool empty = false;               // no structs and no deletes
};

// `Y.parseUpdateMetaV2`: per client (in update order) the first clock and the exclusive end.
struct ClientRange {
  std::uint64_t client = 0;
  std::uint64_t from = 0;
  std::uint64_t to = 0;
};
using UpdateMeta = std::vector<ClientRange>;

// ---- the operations the server uses (V2 is what Teleportal stores) ----------------------------
// yjs returns a single input unchanged without reading it; so do these (validate it separately).
Result<Bytes> merge_updates_v2(const std::vector<ByteView>& updates);
Result<Bytes> diff_update_v2(ByteView update, ByteView state_vector);
Result<Bytes> encode_state_vector_from_update_v2(ByteView update);
Result<UpdateInfo> validate_update_v2(ByteView update);
Result<UpdateMeta> parse_update_meta_v2(ByteView update);

// ---- V1 and conversions ----------------------------------------------------------------------
Result<Bytes> merge_updates_v1(const std::vector<ByteView>& updates);
Result<Bytes> diff_update_v1(ByteView update, ByteView state_vector);
Result<Bytes> encode_state_vector_from_update_v1(ByteView update);
Result<UpdateInfo> validate_update_v1(ByteView update);
Result<Bytes> convert_update_format_v1_to_v2(ByteView update);
Result<Bytes> convert_update_format_v2_to_v1(ByteView update);

// ---- state vectors ---------------------------------------------------------------------------
// Strict: trailing bytes, truncation and duplicate clients are errors.
Result<StateVector> decode_state_vector(ByteView bytes);
// Writes clients in the order given (sort descending first to match yjs).
Bytes encode_state_vector(const StateVector& sv);

// `Y.encodeStateAsUpdate(new Y.Doc())` in each format: 0000 and 00000000000001000000000000.
Bytes empty_update_v1();
Bytes empty_update_v2();

}  // namespace tp::yjs
