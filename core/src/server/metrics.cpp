#include "tp/server/metrics.hpp"

#include "tp/protocol/message.hpp"

namespace tp::server {

FrameType frame_type(ByteView frame) {
  if (protocol::is_ping_message(frame)) return FrameType::ping;
  if (protocol::is_pong_message(frame)) return FrameType::pong;
  // "YJS", version 1, varString document name, encrypted byte, type byte.
  if (frame.size < 6 || frame[0] != 'Y' || frame[1] != 'J' || frame[2] != 'S' || frame[3] != 0x01) return FrameType::invalid;
  std::size_t at = 4;
  std::uint64_t name = 0;
  for (int shift = 0;; shift += 7) {
    if (at >= frame.size || shift > 28) return FrameType::invalid;
    std::uint8_t b = frame[at++];
    name |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  if (name > frame.size || at + name + 2 > frame.size) return FrameType::invalid;
  std::uint8_t type = frame[at + name + 1];
  return type <= static_cast<std::uint8_t>(protocol::MessageType::rpc) ? static_cast<FrameType>(type) : FrameType::invalid;
}

const char* frame_type_name(FrameType t) {
  static const char* names[] = {"doc", "awareness", "ack", "presence", "rpc", "ping", "pong", "invalid"};
  return t < FrameType::count ? names[static_cast<std::size_t>(t)] : "invalid";
}

const char* refusal_name(Refusal r) {
  static const char* names[] = {"permission",     "document_limit",      "invalid_frame", "too_large",
                                "rate_limited",   "queue_full",          "invalid_update", "encryption_mismatch",
                                "no_document",    "storage_failed",      "load_failed",   "token_refused",
                                "internal"};
  return r < Refusal::count ? names[static_cast<std::size_t>(r)] : "internal";
}

std::vector<std::pair<std::string, double>> Metrics::samples(std::size_t clients, std::size_t documents) const {
  std::vector<std::pair<std::string, double>> s;
  auto add = [&](std::string name, std::uint64_t v) { s.emplace_back(std::move(name), static_cast<double>(v)); };
  add("clients_active", clients);
  add("sessions_active", documents);
  add("clients_connected_total", clients_connected);
  add("clients_disconnected_total", clients_disconnected);
  add("documents_opened_total", documents_loaded);
  add("documents_unloaded_total", documents_unloaded);
  add("document_load_failures_total", document_load_failures);
  std::uint64_t all = 0;
  for (std::size_t t = 0; t < received.size(); ++t) {
    add(std::string("messages_total{type=\"") + frame_type_name(static_cast<FrameType>(t)) + "\"}", received[t]);
    all += received[t];
  }
  add("messages_total_all", all);
  for (std::size_t t = 0; t < sent.size(); ++t) {
    add(std::string("messages_sent_total{type=\"") + frame_type_name(static_cast<FrameType>(t)) + "\"}", sent[t]);
  }
  add("bytes_received_total", bytes_received);
  add("bytes_sent_total", bytes_sent);
  add("acks_total", acks);
  for (std::size_t r = 0; r < refused.size(); ++r) {
    add(std::string("nacks_total{reason=\"") + refusal_name(static_cast<Refusal>(r)) + "\"}", refused[r]);
  }
  add("rate_limit_exceeded_total", refusals(Refusal::rate_limited));
  add("storage_batches_total{result=\"committed\"}", batches_committed);
  add("storage_batches_total{result=\"failed\"}", batches_failed);
  add("storage_entries_written_total", entries_written);
  add("storage_bytes_written_total", bytes_written);
  add("server_closes_total{code=\"1008\"}", closes_1008);
  add("server_closes_total{code=\"4401\"}", closes_4401);
  add("server_closes_total{code=\"other\"}", closes_other);
  add("errors_total", errors);
  return s;
}

}  // namespace tp::server
