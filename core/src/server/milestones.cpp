#include "milestones.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "tp/lib0/decoding.hpp"
#include "tp/lib0/encoding.hpp"

namespace tp::server {

namespace {

constexpr std::uint8_t kFlagDeletedAt = 1;
constexpr std::uint8_t kFlagDeletedBy = 2;
constexpr std::uint8_t kFlagLifecycle = 4;
constexpr std::uint8_t kFlagRetention = 8;
constexpr std::uint8_t kFlagExpiresAt = 16;

lib0::Any optional_number(const std::optional<double>& v) { return v ? lib0::Any::number(*v) : lib0::Any::undefined(); }
lib0::Any optional_string(const std::optional<std::string>& v) { return v ? lib0::Any::string(*v) : lib0::Any::undefined(); }

lib0::Any created_by(const MilestoneMeta& m) {
  return lib0::Any::object({{"type", lib0::Any::string(m.created_by_user ? "user" : "system")},
                            {"id", lib0::Any::string(m.created_by_id)}});
}

}  // namespace

Bytes encode_milestone_meta(const MilestoneMeta& m) {
  lib0::Encoder e(64 + m.document_id.size() + m.id.size() + m.name.size());
  e.write_raw(ByteView(std::string_view("YJS")));
  e.write_u8(0x01);
  e.write_var_string(m.document_id);
  e.write_var_string(m.id);
  e.write_var_string(m.name);
  e.write_float64_be(m.created_at);
  std::uint8_t flags = (m.deleted_at ? kFlagDeletedAt : 0) | (m.deleted_by ? kFlagDeletedBy : 0) |
                       (m.lifecycle_state ? kFlagLifecycle : 0) | (m.retention_policy_id ? kFlagRetention : 0) |
                       (m.expires_at ? kFlagExpiresAt : 0);
  e.write_u8(flags);
  if (m.deleted_at) e.write_float64_be(*m.deleted_at);
  if (m.deleted_by) e.write_var_string(*m.deleted_by);
  if (m.lifecycle_state) e.write_var_string(*m.lifecycle_state);
  if (m.retention_policy_id) e.write_var_string(*m.retention_policy_id);
  if (m.expires_at) e.write_float64_be(*m.expires_at);
  e.write_u8(m.created_by_user ? 1 : 0);
  e.write_var_string(m.created_by_id);
  return e.take();
}

Result<MilestoneMeta> decode_milestone_meta(ByteView bytes) {
  lib0::Decoder d(bytes);
  if (bytes.size < 3 || bytes[0] != 0x59 || bytes[1] != 0x4a || bytes[2] != 0x53) {
    return make_error("bad_magic", "Invalid message prefix");
  }
  d.read_raw(3);
  if (d.read_u8() != 0x01 || !d.ok()) return make_error("bad_version", "Version not supported");
  MilestoneMeta m;
  m.document_id = d.read_var_string();
  m.id = d.read_var_string();
  m.name = d.read_var_string();
  m.created_at = d.read_float64_be();
  std::uint8_t flags = d.read_u8();
  if (flags & kFlagDeletedAt) m.deleted_at = d.read_float64_be();
  if (flags & kFlagDeletedBy) m.deleted_by = d.read_var_string();
  if (flags & kFlagLifecycle) m.lifecycle_state = d.read_var_string();
  if (flags & kFlagRetention) m.retention_policy_id = d.read_var_string();
  if (flags & kFlagExpiresAt) m.expires_at = d.read_float64_be();
  m.created_by_user = d.read_u8() == 1;
  m.created_by_id = d.read_var_string();
  if (!d.ok()) return d.error();
  return m;
}

lib0::Any milestone_meta_any(const MilestoneMeta& m) {
  return lib0::Any::object({{"id", lib0::Any::string(m.id)},
                            {"name", lib0::Any::string(m.name)},
                            {"documentId", lib0::Any::string(m.document_id)},
                            {"createdAt", lib0::Any::number(m.created_at)},
                            {"createdBy", created_by(m)}});
}

lib0::Any milestone_item_any(const MilestoneMeta& m) {
  return lib0::Any::object({{"id", lib0::Any::string(m.id)},
                            {"name", lib0::Any::string(m.name)},
                            {"documentId", lib0::Any::string(m.document_id)},
                            {"createdAt", lib0::Any::number(m.created_at)},
                            {"deletedAt", optional_number(m.deleted_at)},
                            {"lifecycleState", optional_string(m.lifecycle_state)},
                            {"expiresAt", optional_number(m.expires_at)},
                            {"createdBy", created_by(m)}});
}

std::string default_milestone_name(const std::string& prefix, std::size_t count, const std::vector<MilestoneMeta>& list) {
  std::uint64_t highest = count;
  const std::string head = prefix + " ";
  for (const auto& m : list) {
    if (m.name.size() <= head.size() || m.name.compare(0, head.size(), head) != 0) continue;
    std::string_view digits(m.name);
    digits.remove_prefix(head.size());
    if (digits.size() > 15 || digits.front() == '0' ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    highest = std::max<std::uint64_t>(highest, std::stoull(std::string(digits)));
  }
  return head + std::to_string(highest + 1);
}

std::string format_uuid_v4(const std::uint8_t in[16]) {
  std::uint8_t b[16];
  std::memcpy(b, in, 16);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 15]);
  }
  return s;
}

IdSource::IdSource(Bytes seed) : seed_(std::move(seed)) {
  if (seed_.size() != crypto_stream_chacha20_KEYBYTES) {
    Bytes key(crypto_stream_chacha20_KEYBYTES);
    if (seed_.empty()) {
      if (sodium_init() < 0) {
        // Without libsodium's generator there is no randomness at all: refuse to make ids that
        // would repeat across runs (every create would then fail loudly instead).
        std::abort();
      }
      randombytes_buf(key.data(), key.size());
    } else {
      crypto_generichash(key.data(), key.size(), seed_.data(), seed_.size(), nullptr, 0);
    }
    seed_ = std::move(key);
  }
}

void IdSource::supply(ByteView random) { supplied_.insert(supplied_.end(), random.begin(), random.end()); }

std::string IdSource::next_uuid() {
  std::uint8_t b[16];
  if (supplied_.size() >= 16) {
    for (auto& x : b) {
      x = supplied_.front();
      supplied_.pop_front();
    }
  } else {
    std::uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {};
    std::uint64_t n = counter_++;
    for (std::size_t i = 0; i < sizeof nonce; ++i) nonce[i] = static_cast<std::uint8_t>(n >> (8 * i));
    crypto_stream_chacha20(b, sizeof b, nonce, seed_.data());
  }
  return format_uuid_v4(b);
}

bool is_milestone_method(const std::string& method) {
  static const char* names[] = {"milestoneList",       "milestoneGet",    "milestoneCreate",
                                "milestoneUpdateName", "milestoneDelete", "milestoneRestore"};
  for (const char* n : names) {
    if (method == n) return true;
  }
  return false;
}

}  // namespace tp::server
