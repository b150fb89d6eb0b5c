// libFuzzer target for the frame codec: decode arbitrary bytes; whatever decodes must re-encode to
// a frame that decodes to the same message, and that canonical frame must be a fixed point.
// Also exercises the message array, pub/sub and envelope decoders on the same input.
// Build (the core must be instrumented too, hence the global fuzzer-no-link flag):
//   CC=clang CXX=clang++ cmake -S . -B build/fuzz -DTP_FUZZ=ON \
//     -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -g" \
//     -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
//   cmake --build build/fuzz --target fuzz_protocol
//   build/fuzz/fuzz_protocol -max_total_time=60 <corpus dir>
#include <cstdint>
#include <cstdlib>

#include "tp/protocol/envelope.hpp"
#include "tp/protocol/message.hpp"
#include "tp/server/http.hpp"

using namespace tp;
using namespace tp::protocol;

namespace {

[[noreturn]] void fail() { std::abort(); }

// Equality of decoded messages, modulo what the canonical encoding normalises: an RPC error
// payload of null is not written (it comes back undefined). The id is not compared (acks aside,
// it hashes the bytes, which differ for non-canonical input).
bool same(const Message& a, const Message& b) {
  if (a.document != b.document || a.encrypted != b.encrypted || a.payload.index() != b.payload.index()) {
    return false;
  }
  Bytes ea = encode_message(a), eb = encode_message(b);
  return ea == eb;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView input(data, size);
  Result<Message> m = decode_message(input);
  if (m.ok()) {
    if (m.value().id.size() != 16) fail();
    Bytes canonical = encode_message(m.value());
    Result<Message> again = decode_message(canonical);
    if (!again.ok()) fail();
    if (!same(m.value(), again.value())) fail();
    if (encode_message(again.value()) != canonical) fail();
    if (message_id(canonical) != again.value().id && again.value().type() != MessageType::ack) fail();
  } else {
    if (m.error().code.empty() || error_chain(m.error()).empty()) fail();
  }

  auto env = decode_content_encrypted(input);
  if (env.ok()) {
    Bytes canonical = encode_content_encrypted(env.value());
    auto again = decode_content_encrypted(canonical, EnvelopeMode::strict);
    if (!again.ok() || !(again.value() == env.value())) fail();
  }
  auto arr = decode_message_array(input);
  if (arr.ok()) {
    auto parts = split_message_array(input);
    if (!parts.ok() || parts.value().size() != arr.value().size()) fail();
  }
  // The HTTP transport's body rule is the message-array rule, element by element.
  auto body = tp::server::decode_http_body(input);
  if (body.error.empty() != arr.ok() || (arr.ok() && body.frames.size() != arr.value().size())) fail();
  (void)tp::server::classify_sent_frame(input);
  auto ps = decode_pubsub_message(input);
  if (ps.ok()) {
    Bytes re = encode_pubsub_message(ps.value().message, ps.value().source_id);
    auto back = decode_pubsub_message(re);
    if (!back.ok() || back.value().source_id != ps.value().source_id ||
        to_hex(back.value().message) != to_hex(ps.value().message)) {
      fail();
    }
  }
  return 0;
}
