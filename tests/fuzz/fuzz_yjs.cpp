// libFuzzer target for the Y.js update algebra (built with -DTP_FUZZ=ON and clang).
// First byte picks the format; every operation must either fail cleanly or produce an update that
// validates again (merge/diff/convert outputs are re-checked).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "tp/yjs/updates.hpp"

using namespace tp;

static void must(bool ok) {
  if (!ok) std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  bool v2 = data[0] & 1;
  ByteView u(data + 1, size - 1);
  auto info = v2 ? yjs::validate_update_v2(u) : yjs::validate_update_v1(u);
  auto sv = v2 ? yjs::encode_state_vector_from_update_v2(u) : yjs::encode_state_vector_from_update_v1(u);
  must(info.ok() == sv.ok());
  if (!info.ok()) return 0;
  std::vector<ByteView> two{u, u};
  auto merged = v2 ? yjs::merge_updates_v2(two) : yjs::merge_updates_v1(two);
  if (merged.ok()) must(v2 ? yjs::validate_update_v2(merged.value()).ok() : yjs::validate_update_v1(merged.value()).ok());
  auto diff = v2 ? yjs::diff_update_v2(u, sv.value()) : yjs::diff_update_v1(u, sv.value());
  if (diff.ok()) must(v2 ? yjs::validate_update_v2(diff.value()).ok() : yjs::validate_update_v1(diff.value()).ok());
  auto conv = v2 ? yjs::convert_update_format_v2_to_v1(u) : yjs::convert_update_format_v1_to_v2(u);
  if (conv.ok()) must(v2 ? yjs::validate_update_v1(conv.value()).ok() : yjs::validate_update_v2(conv.value()).ok());
  return 0;
}
