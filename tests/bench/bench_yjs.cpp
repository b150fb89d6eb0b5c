// Native benchmark of the Y.js update algebra on inputs written by tests/bench/updates.mjs
// (files of [u32le length, bytes]*). Prints "<case index>\t<median ms>\t<name>" per operation,
// in the same order as the JS script's table, which reads this output.
//   bench_yjs <dir>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "tp/yjs/updates.hpp"

using namespace tp;

static std::vector<Bytes> load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  Bytes all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<Bytes> out;
  std::size_t pos = 0;
  while (pos + 4 <= all.size()) {
    std::uint32_t n = all[pos] | (all[pos + 1] << 8) | (all[pos + 2] << 16) | (std::uint32_t(all[pos + 3]) << 24);
    pos += 4;
    out.emplace_back(all.begin() + static_cast<long>(pos), all.begin() + static_cast<long>(pos + n));
    pos += n;
  }
  return out;
}

static double median_ms(const std::function<bool()>& fn) {
  if (!fn()) return -1;
  std::vector<double> s;
  auto start = std::chrono::steady_clock::now();
  while (s.size() < 3 || (std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() < 300 && s.size() < 50)) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    s.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_yjs <dir written by tests/bench/updates.mjs>\n");
    return 2;
  }
  std::string dir = argv[1];
  auto small = load(dir + "/small.bin"), distinct = load(dir + "/distinct.bin");
  auto trace = load(dir + "/trace20k.bin"), state = load(dir + "/state.bin"), sv = load(dir + "/stalesv.bin");
  if (state.empty() || sv.empty()) {
    std::fprintf(stderr, "missing inputs in %s\n", dir.c_str());
    return 2;
  }
  auto views = [](const std::vector<Bytes>& v) { return std::vector<ByteView>(v.begin(), v.end()); };
  Bytes empty_sv{0};
  struct Case {
    const char* name;
    std::function<bool()> fn;
  };
  std::vector<Case> cases = {
      {"merge small updates", [&] { return yjs::merge_updates_v2(views(small)).ok(); }},
      {"merge distinct clients", [&] { return yjs::merge_updates_v2(views(distinct)).ok(); }},
      {"merge 20k trace updates", [&] { return yjs::merge_updates_v2(views(trace)).ok(); }},
      {"diff vs stale sv", [&] { return yjs::diff_update_v2(state[0], sv[0]).ok(); }},
      {"diff vs empty sv", [&] { return yjs::diff_update_v2(state[0], empty_sv).ok(); }},
      {"state vector", [&] { return yjs::encode_state_vector_from_update_v2(state[0]).ok(); }},
      {"v2 -> v1", [&] { return yjs::convert_update_format_v2_to_v1(state[0]).ok(); }},
      {"validate", [&] { return yjs::validate_update_v2(state[0]).ok(); }},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::printf("%zu\t%.4f\t%s\n", i, median_ms(cases[i].fn), cases[i].name);
  }
  return 0;
}
