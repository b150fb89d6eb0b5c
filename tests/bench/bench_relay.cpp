// Native benchmark of the server core's relay path (what the fan-out benchmark exercises, without
// sockets, JS or storage): D documents x C clients, every client sends W updates per batch, then
// the batch is flushed and committed. Prints time and heap allocations per update for message(),
// flush() and committed(). Also a target for valgrind --tool=callgrind (instruction counts are
// repeatable on a noisy machine). Not a test: nothing is asserted.
//
//   build/native/bench_relay [updates.tp.bin] [docs clients window batches]
// The updates are the Y.js V2 update frames tests/bench/fanout.mjs makes (build/bench-cache/
// fanout-v4-<D>x<C>-<n>.tp.bin): run that once first.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "tp/protocol/message.hpp"
#include "tp/server/server.hpp"

namespace {
std::size_t g_allocations = 0;
}

void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using tp::Bytes;
namespace srv = tp::server;

std::vector<std::vector<Bytes>> read_updates(const std::string& path, std::size_t clients, std::size_t keep) {
  std::ifstream f(path, std::ios::binary);
  std::vector<std::vector<Bytes>> out(clients);
  auto u32 = [&] {
    unsigned char b[4] = {0, 0, 0, 0};
    f.read(reinterpret_cast<char*>(b), 4);
    return static_cast<std::uint32_t>(b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24));
  };
  for (auto& list : out) {
    std::uint32_t count = u32();
    for (std::uint32_t i = 0; i < count && f; ++i) {
      std::uint32_t len = u32();
      u32();  // patch offset (unused here)
      if (i >= keep) {
        f.seekg(len, std::ios::cur);
        continue;
      }
      Bytes frame(len);
      f.read(reinterpret_cast<char*>(frame.data()), len);
      list.push_back(std::move(frame));
    }
  }
  return out;
}

std::string find_cache(int docs, int clients) {
  std::string prefix = "fanout-v4-" + std::to_string(docs) + "x" + std::to_string(clients) + "-";
  for (const char* dir : {"build/bench-cache", "../build/bench-cache"}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && name.size() > 7 && name.substr(name.size() - 7) == ".tp.bin") return e.path().string();
    }
  }
  return {};
}

struct Clock {
  double ns = 0;
  std::size_t allocations = 0;
  template <class F>
  void run(F&& f) {
    std::size_t a0 = g_allocations;
    auto t0 = std::chrono::steady_clock::now();
    f();
    ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    allocations += g_allocations - a0;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int docs = 1, clients = 16, window = 8, batches = 200;
  std::string path;
  if (argc > 1) path = argv[1];
  if (argc > 5) docs = std::atoi(argv[2]), clients = std::atoi(argv[3]), window = std::atoi(argv[4]), batches = std::atoi(argv[5]);
  if (path.empty() || path == "-") path = find_cache(docs, clients);
  if (path.empty()) {
    std::printf("bench_relay: no update frames for %dx%d: run tests/bench/fanout.mjs first (it caches them)\n", docs, clients);
    return 0;
  }
  std::size_t need = static_cast<std::size_t>(window) * static_cast<std::size_t>(batches) + 1;
  auto updates = read_updates(path, static_cast<std::size_t>(docs * clients), need);
  std::size_t per_client = updates[0].size();
  if (per_client < need) batches = static_cast<int>((per_client - 1) / static_cast<std::size_t>(window));

  srv::ServerConfig config;
  config.permissions = srv::PermissionMode::none;
  config.info_logs = false;
  srv::Server server(config);
  std::vector<srv::ClientHandle> handles;
  for (int i = 0; i < docs * clients; ++i) {
    srv::Outputs out;
    handles.push_back(server.open("c" + std::to_string(i), {{"room", "bench"}}, 1.7e12, out));
  }
  // Join: each client's first update (the one that names the type) through the slow path; the
  // documents load empty.
  std::vector<std::string> loaded;
  for (int i = 0; i < docs * clients; ++i) {
    auto out = server.message(handles[static_cast<std::size_t>(i)], updates[static_cast<std::size_t>(i)][0]);
    for (auto& o : out) {
      if (auto* l = std::get_if<srv::LoadOutput>(&o)) loaded.push_back(l->key);
    }
  }
  for (const auto& key : loaded) server.loaded(key, {});
  auto warm = server.flush();
  server.committed(warm.id, true);

  Clock message, flush, committed;
  std::size_t sent = 0, outputs = 0, frames = 0;
  for (int b = 0; b < batches; ++b) {
    for (int w = 0; w < window; ++w) {
      for (int i = 0; i < docs * clients; ++i) {
        const Bytes& frame = updates[static_cast<std::size_t>(i)][1 + static_cast<std::size_t>(b * window + w)];
        message.run([&] { outputs += server.message(handles[static_cast<std::size_t>(i)], frame).size(); });
        ++sent;
      }
    }
    srv::Batch batch;
    flush.run([&] { batch = server.flush(); });
    srv::Outputs out;
    committed.run([&] { out = server.committed(batch.id, true); });
    for (const auto& o : out) frames += std::holds_alternative<srv::PublishOutput>(o) || std::holds_alternative<srv::SendOutput>(o);
  }
  auto per = [&](const Clock& c) { return c.ns / static_cast<double>(sent); };
  auto allocs = [&](const Clock& c) { return static_cast<double>(c.allocations) / static_cast<double>(sent); };
  std::printf("relay path, %dx%d, window %d, %d batches (%zu updates from %s)\n", docs, clients, window, batches, sent, path.c_str());
  std::printf("| step      | ns/update | allocations/update |\n|-----------|-----------|--------------------|\n");
  std::printf("| message   | %9.0f | %18.2f |\n", per(message), allocs(message));
  std::printf("| flush     | %9.0f | %18.2f |\n", per(flush), allocs(flush));
  std::printf("| committed | %9.0f | %18.2f |\n", per(committed), allocs(committed));
  std::printf("| total     | %9.0f | %18.2f |\n", per(message) + per(flush) + per(committed),
              allocs(message) + allocs(flush) + allocs(committed));
  std::printf("outputs from message(): %zu; relay frames per batch: %.1f\n", outputs, static_cast<double>(frames) / batches);
  return 0;
}
