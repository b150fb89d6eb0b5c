// libFuzzer target for the server state machine: the input is split into frames, each sent by
// one of three clients (token permissions on), with opens/closes interleaved. Whatever arrives,
// the core must not crash, every frame it sends must decode, and a reader must always be able
// to sync afterwards. Build: scripts/fuzz (clang, -DTP_FUZZ=ON).
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "tp/protocol/message.hpp"
#include "tp/server/server.hpp"
#include "../core/server_host.hpp"

using namespace tp;

static void check_outputs(const server::Outputs& outs) {
  for (const auto& o : outs) {
    if (const auto* s = std::get_if<server::SendOutput>(&o)) {
      if (protocol::is_pong_message(s->frame)) continue;
      if (!protocol::decode_message(s->frame)) std::abort();  // we only ever send valid frames
    }
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  server::ServerConfig config;
  config.compact_after = 3;
  config.merge_after = 4;
  config.unload_after_ms = 0;  // documents unload and reload from the test store as clients come and go
  config.max_documents_per_connection = 4;
  config.node_id = "n1";  // cluster mode: some inputs arrive as another node's messages
  testing::ServerHost srv(config);
  auto access = nlohmann::json::parse(R"([{"pattern":"*","permissions":["read","write"]}])");
  server::ClientHandle clients[3];
  for (int i = 0; i < 3; ++i) {
    clients[i] = srv.open("c" + std::to_string(i), {{"userId", "u"}, {"room", "r"}, {"documentAccess", access}});
  }
  // Frames: [u8 control][u8 length][bytes]; control bits 0-1 pick the client, bit 2 reopens it.
  std::size_t pos = 0;
  while (pos + 2 <= size) {
    std::uint8_t control = data[pos];
    std::size_t len = data[pos + 1];
    pos += 2;
    len = std::min(len, size - pos);
    int who = control % 3;
    if (control & 4) {
      check_outputs(srv.close(clients[who]));
      clients[who] = srv.open("c" + std::to_string(who), {{"room", "r"}, {"documentAccess", access}});
    }
    if (control & 8) {
      auto out = srv.srv.remote("r/doc", protocol::encode_pubsub_message(ByteView(data + pos, len), "n2"));
      srv.settle(out);
      check_outputs(out);
    } else {
      check_outputs(srv.send(clients[who], Bytes(data + pos, data + pos + len)));
    }
    pos += len;
  }
  // The document is still servable: a fresh sync-step-1 gets step-2, step-1 and an ack. A
  // document keeps the encryption mode of its first message (the input may have made it an
  // encrypted one, and then a plaintext reader is refused), so a reader of either mode is tried.
  bool served = false;
  for (const char* step1 : {"594a530103646f630000000100", "594a530103646f630100000100"}) {
    auto reader = srv.open(std::string("reader-") + step1[17], {{"room", "r"}, {"documentAccess", access}});
    auto outs = srv.send(reader, *from_hex(step1));
    check_outputs(outs);
    served = served || outs.size() >= 3;
  }
  if (!served) std::abort();
  return 0;
}
