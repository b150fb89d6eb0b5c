// Counters of what the server core decided: plain integers, incremented where the decision is
// made, never allocated per frame. The host reads them (samples()) only when they are scraped and
// renders them as Prometheus text with the `teleportal_` prefix (wasm/src/metrics.js).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tp/common/bytes.hpp"

namespace tp::server {

// The type of a frame on the wire, as counted (message types of spec 1.2, plus ping/pong and
// frames that are not Teleportal messages at all).
enum class FrameType : std::uint8_t { doc, awareness, ack, presence, rpc, ping, pong, invalid, count };
// Read from the frame's header only (magic, version, document name, encrypted, type).
FrameType frame_type(ByteView frame);
const char* frame_type_name(FrameType t);

// Why a client's message was refused: a NACK (an ack frame with an error or retryAfter) or a
// denial (auth-message / sync-done / rpc 403 instead of an ack). A fixed set, never free text.
enum class Refusal : std::uint8_t {
  permission,           // the connection may not read or write the document (denied)
  document_limit,       // maxDocumentsPerConnection / maxConnectionsPerDocument (denied)
  invalid_frame,        // not a Teleportal message
  too_large,            // frame, document name or awareness update over its limit
  rate_limited,         // a rate bucket was empty (retryAfter)
  queue_full,           // too many frames waiting for a load or a permission answer (retryAfter)
  invalid_update,       // an update or envelope that does not decode, or a mismatched compaction record
  encryption_mismatch,  // encrypted and plaintext messages for the same document
  no_document,          // a message without a document name
  storage_failed,       // the batch's commit failed
  load_failed,          // the document's load failed (retryAfter)
  token_refused,        // an in-band token refresh was refused
  internal,             // the document's state could not be read
  count
};
const char* refusal_name(Refusal r);

struct Metrics {
  std::array<std::uint64_t, static_cast<std::size_t>(FrameType::count)> received{};  // frames in
  std::array<std::uint64_t, static_cast<std::size_t>(FrameType::count)> sent{};      // frames out, per recipient
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;  // per recipient
  std::uint64_t acks = 0;        // successful acks sent
  std::array<std::uint64_t, static_cast<std::size_t>(Refusal::count)> refused{};
  std::uint64_t clients_connected = 0;
  std::uint64_t clients_disconnected = 0;
  std::uint64_t documents_loaded = 0;
  std::uint64_t documents_unloaded = 0;
  std::uint64_t document_load_failures = 0;
  std::uint64_t batches_committed = 0;
  std::uint64_t batches_failed = 0;
  std::uint64_t entries_written = 0;  // in committed batches
  std::uint64_t bytes_written = 0;
  std::uint64_t errors = 0;  // error-level log events
  // Closes the core decided, by code (1008, 4401; anything else counts as "other").
  std::uint64_t closes_1008 = 0;
  std::uint64_t closes_4401 = 0;
  std::uint64_t closes_other = 0;

  void refuse(Refusal r) { ++refused[static_cast<std::size_t>(r)]; }
  std::uint64_t refusals(Refusal r) const { return refused[static_cast<std::size_t>(r)]; }
  std::uint64_t in(FrameType t) const { return received[static_cast<std::size_t>(t)]; }
  std::uint64_t out(FrameType t) const { return sent[static_cast<std::size_t>(t)]; }
  void count_in(ByteView frame) {
    ++received[static_cast<std::size_t>(frame_type(frame))];
    bytes_received += frame.size;
  }
  void count_out(ByteView frame, std::uint64_t recipients) {
    sent[static_cast<std::size_t>(frame_type(frame))] += recipients;
    bytes_sent += frame.size * recipients;
  }

  // Every sample as (Prometheus name without the prefix, with its labels; value), e.g.
  // ("messages_total{type=\"doc\"}", 3). `clients` and `documents` are the current gauges.
  std::vector<std::pair<std::string, double>> samples(std::size_t clients, std::size_t documents) const;
};

}  // namespace tp::server
