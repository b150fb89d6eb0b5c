// Load generator for tests/bench/fanout.mjs (driven by it; not a benchmark on its own).
//
// Real WebSockets (RFC 6455 over TCP, masked client frames) from one epoll thread, so that the
// generator stays far below the servers' cost per frame and two shared cores measure the server,
// not the clients. The frames are made by the driver with Y.js and teleportal/protocol: real
// Y.js V2 updates in content envelopes (Teleportal) or V1 updates in Hocuspocus sync messages.
// Each update inserts a text token "~SSTTTTT" (sender index and send time, base32) whose bytes
// this program patches at send time; receivers find the tokens in every update they get (merged
// updates keep the text of each insert), which counts deliveries and gives their latency.
//
//   fanout_load CONFIG.json     prints one JSON object with the results on stdout
//
// Modes (config "mode"):
//   fanout     every client syncs, then sends updates keeping `window` unacknowledged (Teleportal
//              ack / Hocuspocus SyncStatus), for warmupMs + measureMs; deliveries are counted in
//              the measuring window; then drains (bounded) and reports what never arrived.
//   handshake  `concurrency` loops of: connect, upgrade (fresh token per connection), initial
//              sync, close handshake; for warmupMs + measureMs.
//   idle       connects counts[0], counts[1], ... clients (synced), samples the server's RSS
//              after each step, holds them holdMs and reports how many are still open.
// Teleportal clients ack every non-ack frame they receive, as the reference client does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

using nlohmann::json;
using Bytes = std::vector<std::uint8_t>;
using Clock = std::chrono::steady_clock;

Clock::time_point g_start = Clock::now();
double now_us() { return std::chrono::duration<double, std::micro>(Clock::now() - g_start).count(); }

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "fanout_load: %s\n", why.c_str());
  std::exit(2);
}

Bytes from_hex(const std::string& hex) {
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

constexpr char kBase32[] = "0123456789abcdefghijklmnopqrstuv";
int base32_value(std::uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'v') return c - 'a' + 10;
  return -1;
}

// ---- server process counters (/proc) --------------------------------------------------------
double proc_cpu_seconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return NAN;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double proc_rss_kb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6));
  }
  return NAN;
}

double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// ---- latency histogram: 1 us buckets up to 10 ms, then 100 us up to 10 s ---------------------
struct Histogram {
  std::vector<std::uint64_t> fine = std::vector<std::uint64_t>(10000);
  std::vector<std::uint64_t> coarse = std::vector<std::uint64_t>(100000);
  std::uint64_t count = 0;
  void add(double us) {
    ++count;
    if (us < 0) us = 0;
    if (us < 10000) {
      ++fine[static_cast<std::size_t>(us)];
    } else {
      ++coarse[std::min<std::size_t>(static_cast<std::size_t>(us / 100), coarse.size() - 1)];
    }
  }
  double quantile(double q) const {
    if (count == 0) return NAN;
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < fine.size(); ++i) {
      seen += fine[i];
      if (seen >= rank) return static_cast<double>(i) + 0.5;
    }
    for (std::size_t i = 100; i < coarse.size(); ++i) {
      seen += coarse[i];
      if (seen >= rank) return static_cast<double>(i) * 100 + 50;
    }
    return NAN;
  }
};

// ---- the spec 1.8 message id, written as 16 hex chars into `out` -----------------------------
void message_id_hex(const std::uint8_t* p, std::size_t n, std::uint8_t* out) {
  std::uint32_t h1 = 0x811c9dc5u, h2 = 0x01000193u;
  for (std::size_t i = 0; i < n; ++i) {
    h1 = (h1 ^ p[i]) * 0x01000193u;
    h2 = (h2 ^ p[i]) * 0x100001b3u;
  }
  static const char* digits = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) out[i] = digits[(h1 >> (28 - 4 * i)) & 15];
  for (int i = 0; i < 8; ++i) out[8 + i] = digits[(h2 >> (28 - 4 * i)) & 15];
}

// lib0 varuint reader over [p, end); false when truncated.
bool read_varuint(const std::uint8_t*& p, const std::uint8_t* end, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    std::uint8_t b = *p++;
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

enum class Protocol { teleportal, hocuspocus };

struct Config {
  std::string mode;
  Protocol protocol = Protocol::teleportal;
  std::string host = "127.0.0.1";
  int port = 0;
  int server_pid = 0;
  int window = 8;
  double warmup_ms = 500, measure_ms = 2000, drain_ms = 5000, settle_ms = 300, hold_ms = 2000;
  int concurrency = 16;
  int connect_parallel = 64;
  double timeout_ms = 60000;
  std::vector<int> counts;
};

// One client: its URL path, the frames it sends on open, what answers the server's sync-step-1,
// and (fanout) its updates with the offset of the 5 time characters in each.
struct Spec {
  std::string path;
  std::vector<Bytes> hello;
  Bytes step2_reply;
  int group = 0;   // document index
  int sender = 0;  // index within the document (the token's sender field)
  std::vector<Bytes> updates;
  std::vector<std::uint32_t> patch;
};

enum class State { connecting, upgrading, open, closing, done };

struct Conn {
  int fd = -1;
  const Spec* spec = nullptr;
  State state = State::connecting;
  Bytes in;
  std::size_t in_off = 0;
  Bytes out;
  std::size_t out_off = 0;
  bool want_write = false;
  bool epoll_out = true;  // EPOLLOUT is registered (until the upgrade request is out)
  bool synced = false;
  bool got_step2 = false;   // hocuspocus: the server's sync-step-2 arrived
  bool step2_acked = false; // hocuspocus: SyncStatus for our step2
  bool sent_step2 = false;
  int inflight = 0;
  std::size_t next_update = 0;
  double opened_us = 0;
  std::uint32_t mask_state = 0x9e3779b9u;
};

struct Stats {
  std::uint64_t frames_in = 0, bytes_in = 0, frames_out = 0, bytes_out = 0;
  std::uint64_t deliveries = 0, deliveries_total = 0, sent = 0, sent_window = 0, acked = 0, nacks = 0;
  std::uint64_t self_tokens = 0, bad_tokens = 0, denied = 0, closed_early = 0, handshakes = 0;
  Histogram latency, handshake_latency;
};

class Loop {
 public:
  Loop(Config cfg) : cfg_(std::move(cfg)) {
    ep_ = epoll_create1(0);
    if (ep_ < 0) die("epoll_create1");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(cfg_.port));
    if (inet_pton(AF_INET, cfg_.host.c_str(), &a.sin_addr) != 1) die("bad host " + cfg_.host);
    addr_ = a;
  }

  Config cfg_;
  Stats st_;
  std::vector<std::unique_ptr<Conn>> conns_;
  bool running_ = false;        // fanout: updates are being sent
  double window_start_ = 0, window_end_ = 0, run_start_ = 0;
  double send_until_ = 0;
  int open_count_ = 0;

  Conn* connect(const Spec* spec) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
    if (r < 0 && errno != EINPROGRESS) die(std::string("connect: ") + std::strerror(errno));
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->spec = spec;
    c->opened_us = now_us();
    c->mask_state ^= static_cast<std::uint32_t>(fd * 2654435761u);
    std::string req = "GET " + spec->path + " HTTP/1.1\r\nHost: " + cfg_.host + ":" + std::to_string(cfg_.port) +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    c->out.assign(req.begin(), req.end());
    c->state = State::upgrading;
    c->want_write = true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c.get();
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    conns_.push_back(std::move(c));
    return conns_.back().get();
  }

  // Runs the loop until `done()` or `deadline_us`; `each` runs once per wake-up.
  template <class Done, class Each>
  void run(Done done, double deadline_us, Each each) {
    std::vector<epoll_event> events(1024);
    while (!done() && now_us() < deadline_us) {
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 1);
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<Conn*>(events[i].data.ptr);
        if (c->state == State::done) continue;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(*c);
        if (c->state != State::done && (events[i].events & EPOLLOUT)) flush(*c);
      }
      flush_dirty();
      each();
      flush_dirty();
    }
  }

  void flush_dirty() {
    for (std::size_t i = 0; i < dirty_.size(); ++i) {
      if (dirty_[i]->state != State::done) flush(*dirty_[i]);
    }
    dirty_.clear();
  }

  void send_frame(Conn& c, const std::uint8_t* data, std::size_t n, std::uint8_t opcode = 0x2) {
    std::uint8_t head[14];
    std::size_t h = 0;
    head[h++] = static_cast<std::uint8_t>(0x80 | opcode);
    if (n < 126) {
      head[h++] = static_cast<std::uint8_t>(0x80 | n);
    } else if (n < 65536) {
      head[h++] = 0x80 | 126;
      head[h++] = static_cast<std::uint8_t>(n >> 8);
      head[h++] = static_cast<std::uint8_t>(n);
    } else {
      head[h++] = 0x80 | 127;
      for (int i = 7; i >= 0; --i) head[h++] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(n) >> (8 * i));
    }
    c.mask_state ^= c.mask_state << 13;
    c.mask_state ^= c.mask_state >> 17;
    c.mask_state ^= c.mask_state << 5;
    std::uint8_t mask[4];
    std::memcpy(mask, &c.mask_state, 4);
    std::memcpy(head + h, mask, 4);
    h += 4;
    std::size_t at = c.out.size();
    c.out.resize(at + h + n);
    std::memcpy(c.out.data() + at, head, h);
    std::uint8_t* dst = c.out.data() + at + h;
    for (std::size_t i = 0; i < n; ++i) dst[i] = data[i] ^ mask[i & 3];
    ++st_.frames_out;
    st_.bytes_out += n;
    mark_dirty(c);
  }
  void send_frame(Conn& c, const Bytes& b) { send_frame(c, b.data(), b.size()); }

  void close_conn(Conn& c, bool count_early) {
    if (c.state == State::done) return;
    if (count_early && c.state == State::open) ++st_.closed_early;
    if (c.state == State::open || c.state == State::closing) --open_count_;
    epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.state = State::done;
    c.in.clear();
    c.in.shrink_to_fit();
    c.out.clear();
    c.out.shrink_to_fit();
  }

  // Starts the closing handshake (1000); the connection ends when the server's close arrives.
  void start_close(Conn& c) {
    static const std::uint8_t code[2] = {0x03, 0xe8};
    send_frame(c, code, 2, 0x8);
    c.state = State::closing;
  }

  // Hooks for the modes.
  std::function<void(Conn&)> on_synced = [](Conn&) {};
  std::function<void(Conn&)> on_ack = [](Conn&) {};
  std::function<void(Conn&)> on_closed = [](Conn&) {};

 private:
  int ep_ = -1;
  sockaddr_in addr_{};
  std::vector<Conn*> dirty_;

  void mark_dirty(Conn& c) {
    if (!c.want_write) {
      c.want_write = true;
      dirty_.push_back(&c);
    }
  }

  void flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN) {
          c.want_write = true;
          watch_out(c, true);
          return;
        }
        close_conn(c, true);
        on_closed(c);
        return;
      }
      c.out_off += static_cast<std::size_t>(n);
    }
    c.out.clear();
    c.out_off = 0;
    c.want_write = false;
    watch_out(c, false);
  }

  // Level-triggered EPOLLOUT only while output is pending (else every writable socket wakes us).
  void watch_out(Conn& c, bool on) {
    if (c.epoll_out == on) return;
    c.epoll_out = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void on_readable(Conn& c) {
    std::uint8_t buf[65536];
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.insert(c.in.end(), buf, buf + n);
        if (static_cast<std::size_t>(n) < sizeof buf) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == ENOTCONN) return;  // still connecting
      // EOF or error
      parse(c);
      if (c.state != State::done) {
        bool early = c.state != State::closing;
        close_conn(c, early);
        on_closed(c);
      }
      return;
    }
    parse(c);
  }

  void parse(Conn& c) {
    if (c.state == State::upgrading) {
      std::string_view text(reinterpret_cast<const char*>(c.in.data()), c.in.size());
      auto end = text.find("\r\n\r\n");
      if (end == std::string_view::npos) return;
      if (text.substr(0, 12) != "HTTP/1.1 101") {
        ++st_.denied;
        std::fprintf(stderr, "fanout_load: upgrade refused: %.*s\n", static_cast<int>(std::min<std::size_t>(end, 200)), text.data());
        close_conn(c, false);
        on_closed(c);
        return;
      }
      c.in_off = end + 4;
      c.state = State::open;
      ++open_count_;
      for (const auto& f : c.spec->hello) send_frame(c, f);
    }
    while (c.state == State::open || c.state == State::closing) {
      std::size_t avail = c.in.size() - c.in_off;
      const std::uint8_t* p = c.in.data() + c.in_off;
      if (avail < 2) break;
      std::uint8_t opcode = p[0] & 0x0f;
      std::uint64_t len = p[1] & 0x7f;
      std::size_t h = 2;
      if (len == 126) {
        if (avail < 4) break;
        len = (static_cast<std::uint64_t>(p[2]) << 8) | p[3];
        h = 4;
      } else if (len == 127) {
        if (avail < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
        h = 10;
      }
      if (p[1] & 0x80) h += 4;  // servers do not mask; tolerate it anyway
      if (avail < h + len) break;
      const std::uint8_t* payload = p + h;
      c.in_off += h + static_cast<std::size_t>(len);
      ++st_.frames_in;
      st_.bytes_in += len;
      if (opcode == 0x8) {  // close: answer (if we did not start it) and end
        if (c.state == State::open) {
          send_frame(c, payload, std::min<std::uint64_t>(len, 2), 0x8);
          flush(c);
          close_conn(c, true);
        } else {
          close_conn(c, false);
        }
        on_closed(c);
        return;
      }
      if (opcode == 0x9) {
        send_frame(c, payload, static_cast<std::size_t>(len), 0xA);
        continue;
      }
      if (opcode != 0x2 && opcode != 0x1 && opcode != 0x0) continue;
      if (c.state == State::open) {
        if (cfg_.protocol == Protocol::teleportal) {
          on_teleportal(c, payload, static_cast<std::size_t>(len));
        } else {
          on_hocuspocus(c, payload, static_cast<std::size_t>(len));
        }
      }
    }
    if (c.state == State::done) return;
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    } else if (c.in_off > 65536) {
      c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(c.in_off));
      c.in_off = 0;
    }
  }

  // Tokens "~SSTTTTT" anywhere in an update: sender (2 base32) and send time (5 base32, 100 us).
  void count_tokens(Conn& c, const std::uint8_t* p, std::size_t n) {
    double now = now_us();
    bool in_window = now >= window_start_ && now < window_end_;
    for (std::size_t i = 0; i + 8 <= n; ++i) {
      if (p[i] != '~') continue;
      int v[7];
      bool ok = true;
      for (int k = 0; k < 7 && ok; ++k) ok = (v[k] = base32_value(p[i + 1 + k])) >= 0;
      if (!ok) continue;
      int sender = v[0] * 32 + v[1];
      if (sender == c.spec->sender) {
        ++st_.self_tokens;
        i += 7;
        continue;
      }
      double sent_us = 0;
      for (int k = 2; k < 7; ++k) sent_us = sent_us * 32 + v[k];
      sent_us = sent_us * 100 + run_start_;
      if (sent_us > now + 1000) {
        ++st_.bad_tokens;
        continue;
      }
      ++st_.deliveries_total;
      if (in_window) {
        ++st_.deliveries;
        st_.latency.add(now - sent_us);
      }
      i += 7;
    }
  }

  void on_teleportal(Conn& c, const std::uint8_t* p, std::size_t n) {
    if (n < 7 || p[0] != 'Y' || p[1] != 'J' || p[2] != 'S') return;  // ping/pong: nothing to do
    const std::uint8_t* q = p + 4;
    const std::uint8_t* end = p + n;
    std::uint64_t name_len = 0;
    if (!read_varuint(q, end, name_len) || static_cast<std::uint64_t>(end - q) < name_len + 2) return;
    q += name_len;
    ++q;  // encrypted flag
    std::uint8_t type = *q++;
    if (type == 2) {  // ack: vs id, flags
      std::uint64_t id_len = 0;
      if (read_varuint(q, end, id_len) && static_cast<std::uint64_t>(end - q) > id_len && (q[id_len] & 2)) ++st_.nacks;
      ++st_.acked;
      on_ack(c);
      return;
    }
    // Every other frame gets an ack, as the reference client sends.
    static std::uint8_t ack[25] = {'Y', 'J', 'S', 1, 0, 0, 2, 16};
    message_id_hex(p, n, ack + 8);
    ack[24] = 0;
    send_frame(c, ack, sizeof ack);
    if (type != 0 || q >= end) return;
    std::uint8_t sub = *q++;
    if (sub == 0) {  // server's sync-step-1: answer with our (empty) state
      send_frame(c, c.spec->step2_reply);
    } else if (sub == 1 || sub == 2) {
      count_tokens(c, q, static_cast<std::size_t>(end - q));
    } else if (sub == 3) {
      if (!c.synced) {
        c.synced = true;
        on_synced(c);
      }
    } else if (sub == 4) {
      ++st_.denied;
    }
  }

  void on_hocuspocus(Conn& c, const std::uint8_t* p, std::size_t n) {
    const std::uint8_t* q = p;
    const std::uint8_t* end = p + n;
    std::uint64_t name_len = 0, type = 0, sub = 0;
    if (!read_varuint(q, end, name_len) || static_cast<std::uint64_t>(end - q) < name_len) return;
    q += name_len;
    if (!read_varuint(q, end, type)) return;
    if (type == 0 || type == 4) {  // sync / sync reply
      if (!read_varuint(q, end, sub)) return;
      if (sub == 0) {
        send_frame(c, c.spec->step2_reply);
        c.sent_step2 = true;
      } else if (sub == 1) {
        c.got_step2 = true;
        count_tokens(c, q, static_cast<std::size_t>(end - q));
      } else if (sub == 2) {
        count_tokens(c, q, static_cast<std::size_t>(end - q));
      }
    } else if (type == 2) {  // auth
      if (read_varuint(q, end, sub) && sub == 1) ++st_.denied;
    } else if (type == 8) {  // sync status: the reply to each update (and to our step2)
      if (c.sent_step2 && !c.step2_acked) {
        c.step2_acked = true;
      } else {
        ++st_.acked;
        on_ack(c);
      }
    }
    if (!c.synced && c.got_step2 && c.step2_acked) {
      c.synced = true;
      on_synced(c);
    }
  }
};

std::vector<Bytes> hex_list(const json& j) {
  std::vector<Bytes> out;
  for (const auto& h : j) out.push_back(from_hex(h.get<std::string>()));
  return out;
}

// Updates file: per client (in config order) u32 count, then count x (u32 length, u32 patch, bytes).
void read_updates(const std::string& path, std::vector<Spec>& specs) {
  std::ifstream f(path, std::ios::binary);
  if (!f) die("cannot read " + path);
  auto u32 = [&] {
    std::uint8_t b[4];
    f.read(reinterpret_cast<char*>(b), 4);
    return static_cast<std::uint32_t>(b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24));
  };
  for (auto& s : specs) {
    std::uint32_t count = u32();
    s.updates.resize(count);
    s.patch.resize(count);
    for (std::uint32_t i = 0; i < count; ++i) {
      std::uint32_t len = u32();
      s.patch[i] = u32();
      s.updates[i].resize(len);
      f.read(reinterpret_cast<char*>(s.updates[i].data()), len);
    }
  }
  if (!f) die("truncated updates file " + path);
}

// Connects every spec (at most connect_parallel handshakes at once) and waits until all synced.
bool connect_all(Loop& loop, const std::vector<Spec>& specs, std::vector<Conn*>& out, double timeout_ms) {
  std::size_t next = 0, synced = 0;
  int pending = 0;
  loop.on_synced = [&](Conn&) {
    ++synced;
    --pending;
  };
  loop.on_closed = [&](Conn& c) {
    if (!c.synced) --pending;
  };
  double deadline = now_us() + timeout_ms * 1000;
  loop.run([&] { return synced == specs.size(); }, deadline, [&] {
    while (next < specs.size() && pending < loop.cfg_.connect_parallel) {
      out.push_back(loop.connect(&specs[next++]));
      ++pending;
    }
  });
  return synced == specs.size();
}

json run_fanout(Loop& loop, std::vector<Spec>& specs) {
  std::vector<Conn*> conns;
  json r;
  if (!connect_all(loop, specs, conns, loop.cfg_.timeout_ms)) {
    r["error"] = "not every client synced";
    return r;
  }
  auto& cfg = loop.cfg_;
  loop.run([] { return false; }, now_us() + cfg.settle_ms * 1000, [] {});
  loop.st_ = Stats{};
  auto send_next = [&](Conn& c) {
    if (!loop.running_ || now_us() >= loop.send_until_) return;
    const Spec& s = *c.spec;
    if (c.next_update >= s.updates.size()) return;
    Bytes& u = const_cast<Bytes&>(s.updates[c.next_update]);
    auto t = static_cast<std::uint64_t>((now_us() - loop.run_start_) / 100);
    for (int k = 4; k >= 0; --k) {
      u[s.patch[c.next_update] + k] = static_cast<std::uint8_t>(kBase32[t & 31]);
      t >>= 5;
    }
    ++c.next_update;
    ++c.inflight;
    ++loop.st_.sent;
    double now = now_us();
    if (now >= loop.window_start_ && now < loop.window_end_) ++loop.st_.sent_window;
    loop.send_frame(c, u);
  };
  loop.on_ack = [&](Conn& c) {
    if (c.inflight > 0) --c.inflight;
    while (c.inflight < cfg.window && loop.running_) {
      std::size_t before = c.next_update;
      send_next(c);
      if (c.next_update == before) break;
    }
  };
  std::size_t out_of_updates = 0;
  loop.on_closed = [&](Conn&) {};
  loop.run_start_ = now_us();
  loop.window_start_ = loop.run_start_ + cfg.warmup_ms * 1000;
  loop.window_end_ = loop.window_start_ + cfg.measure_ms * 1000;
  loop.send_until_ = loop.window_end_;
  loop.running_ = true;
  for (auto* c : conns) {
    for (int i = 0; i < cfg.window; ++i) send_next(*c);
  }
  double cpu0 = NAN, self0 = 0;
  bool started = false;
  loop.run([] { return false; }, loop.window_end_, [&] {
    if (!started && now_us() >= loop.window_start_) {
      started = true;
      cpu0 = proc_cpu_seconds(cfg.server_pid);
      self0 = self_cpu_seconds();
    }
  });
  double cpu1 = proc_cpu_seconds(cfg.server_pid);
  double self1 = self_cpu_seconds();
  double window_s = (now_us() - loop.window_start_) / 1e6;
  loop.running_ = false;
  for (auto* c : conns) out_of_updates += c->next_update >= c->spec->updates.size();
  // Drain: every update sent must reach every other client of its document.
  std::vector<std::uint64_t> sent_per_group;
  std::vector<std::uint64_t> members;
  for (auto* c : conns) {
    auto g = static_cast<std::size_t>(c->spec->group);
    if (sent_per_group.size() <= g) sent_per_group.resize(g + 1), members.resize(g + 1);
    sent_per_group[g] += c->next_update;
    ++members[g];
  }
  std::uint64_t expected = 0;
  for (std::size_t g = 0; g < sent_per_group.size(); ++g) expected += sent_per_group[g] * (members[g] - 1);
  loop.run([&] { return loop.st_.deliveries_total >= expected; }, now_us() + cfg.drain_ms * 1000, [] {});
  auto& st = loop.st_;
  r["deliveries"] = st.deliveries;
  r["windowS"] = window_s;
  r["deliveriesPerS"] = static_cast<double>(st.deliveries) / window_s;
  r["serverCpuS"] = cpu1 - cpu0;
  r["cpuUsPerDelivery"] = (cpu1 - cpu0) * 1e6 / static_cast<double>(std::max<std::uint64_t>(st.deliveries, 1));
  r["generatorCpuS"] = self1 - self0;
  r["p50Ms"] = st.latency.quantile(0.50) / 1000;
  r["p99Ms"] = st.latency.quantile(0.99) / 1000;
  r["sent"] = st.sent;
  r["sentInWindow"] = st.sent_window;
  r["acked"] = st.acked;
  r["nacks"] = st.nacks;
  r["expected"] = expected;
  r["received"] = st.deliveries_total;
  r["missing"] = expected > st.deliveries_total ? expected - st.deliveries_total : 0;
  r["badTokens"] = st.bad_tokens;
  r["selfTokens"] = st.self_tokens;
  r["framesIn"] = st.frames_in;
  r["bytesIn"] = st.bytes_in;
  r["framesOut"] = st.frames_out;
  r["closedEarly"] = st.closed_early;
  r["outOfUpdates"] = out_of_updates;
  r["serverRssKb"] = proc_rss_kb(cfg.server_pid);
  return r;
}

json run_handshake(Loop& loop, std::vector<Spec>& specs) {
  auto& cfg = loop.cfg_;
  std::size_t next = 0;
  bool stopping = false;
  int live = 0;
  double window_start = now_us() + cfg.warmup_ms * 1000;
  double window_end = window_start + cfg.measure_ms * 1000;
  auto start_one = [&] {
    if (stopping || next >= specs.size()) return;
    ++live;
    loop.connect(&specs[next++]);
  };
  std::uint64_t failed = 0;
  loop.on_synced = [&](Conn& c) {
    double now = now_us();
    if (now >= window_start && now < window_end) {
      ++loop.st_.handshakes;
      loop.st_.handshake_latency.add(now - c.opened_us);
    }
    loop.start_close(c);
  };
  loop.on_closed = [&](Conn& c) {
    --live;
    if (!c.synced) ++failed;
    start_one();
  };
  for (int i = 0; i < cfg.concurrency; ++i) start_one();
  double cpu0 = NAN, self0 = 0;
  bool started = false;
  loop.run([] { return false; }, window_end, [&] {
    if (!started && now_us() >= window_start) {
      started = true;
      cpu0 = proc_cpu_seconds(cfg.server_pid);
      self0 = self_cpu_seconds();
    }
    // Forget finished connections (their fds are closed already).
    if (loop.conns_.size() > 4096) {
      auto& v = loop.conns_;
      v.erase(std::remove_if(v.begin(), v.end(), [](const auto& c) { return c->state == State::done; }), v.end());
    }
  });
  double cpu1 = proc_cpu_seconds(cfg.server_pid);
  double self1 = self_cpu_seconds();
  double window_s = (now_us() - window_start) / 1e6;
  stopping = true;
  loop.run([&] { return live == 0; }, now_us() + cfg.drain_ms * 1000, [] {});
  json r;
  auto& st = loop.st_;
  r["handshakes"] = st.handshakes;
  r["windowS"] = window_s;
  r["handshakesPerS"] = static_cast<double>(st.handshakes) / window_s;
  r["serverCpuS"] = cpu1 - cpu0;
  r["cpuUsPerHandshake"] = (cpu1 - cpu0) * 1e6 / static_cast<double>(std::max<std::uint64_t>(st.handshakes, 1));
  r["generatorCpuS"] = self1 - self0;
  r["p50Ms"] = st.handshake_latency.quantile(0.5) / 1000;
  r["p99Ms"] = st.handshake_latency.quantile(0.99) / 1000;
  r["failed"] = failed;
  r["denied"] = st.denied;
  r["tokensUsed"] = next;
  r["tokensLeft"] = specs.size() - next;
  return r;
}

json run_idle(Loop& loop, std::vector<Spec>& specs) {
  auto& cfg = loop.cfg_;
  json r;
  json steps = json::array();
  auto settle = [&](double ms) { loop.run([] { return false; }, now_us() + ms * 1000, [] {}); };
  settle(cfg.settle_ms);
  double base = proc_rss_kb(cfg.server_pid);
  r["baseRssKb"] = base;
  std::vector<Conn*> conns;
  std::size_t done = 0;
  for (int count : cfg.counts) {
    auto n = std::min<std::size_t>(static_cast<std::size_t>(count), specs.size());
    std::vector<Spec> dummy;
    std::size_t synced = 0, pending = 0;
    loop.on_synced = [&](Conn&) { ++synced, --pending; };
    loop.on_closed = [&](Conn& c) {
      if (!c.synced) --pending;
    };
    double deadline = now_us() + cfg.timeout_ms * 1000;
    loop.run([&] { return done + synced >= n; }, deadline, [&] {
      while (done + synced + pending < n && pending < static_cast<std::size_t>(cfg.connect_parallel)) {
        conns.push_back(loop.connect(&specs[done + synced + pending]));
        ++pending;
      }
    });
    done += synced;
    settle(cfg.settle_ms);
    double rss = proc_rss_kb(cfg.server_pid);
    json s;
    s["connections"] = done;
    s["rssKb"] = rss;
    s["kbPerConnection"] = (rss - base) / static_cast<double>(std::max<std::size_t>(done, 1));
    s["open"] = loop.open_count_;
    steps.push_back(s);
  }
  settle(cfg.hold_ms);
  r["steps"] = steps;
  r["heldOpen"] = loop.open_count_;
  r["closedEarly"] = loop.st_.closed_early;
  r["denied"] = loop.st_.denied;
  r["serverRssKb"] = proc_rss_kb(cfg.server_pid);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) die("usage: fanout_load CONFIG.json");
  std::ifstream f(argv[1]);
  if (!f) die(std::string("cannot read ") + argv[1]);
  json j = json::parse(f);
  Config cfg;
  cfg.mode = j.at("mode").get<std::string>();
  cfg.protocol = j.value("protocol", std::string("teleportal")) == "hocuspocus" ? Protocol::hocuspocus : Protocol::teleportal;
  cfg.host = j.value("host", cfg.host);
  cfg.port = j.at("port").get<int>();
  cfg.server_pid = j.at("serverPid").get<int>();
  cfg.window = j.value("window", cfg.window);
  cfg.warmup_ms = j.value("warmupMs", cfg.warmup_ms);
  cfg.measure_ms = j.value("measureMs", cfg.measure_ms);
  cfg.drain_ms = j.value("drainMs", cfg.drain_ms);
  cfg.settle_ms = j.value("settleMs", cfg.settle_ms);
  cfg.hold_ms = j.value("holdMs", cfg.hold_ms);
  cfg.concurrency = j.value("concurrency", cfg.concurrency);
  cfg.connect_parallel = j.value("connectParallel", cfg.connect_parallel);
  cfg.timeout_ms = j.value("timeoutMs", cfg.timeout_ms);
  if (j.contains("counts")) cfg.counts = j["counts"].get<std::vector<int>>();

  std::vector<Spec> specs;
  for (const auto& c : j.at("clients")) {
    Spec s;
    s.path = c.at("path").get<std::string>();
    s.hello = hex_list(c.at("hello"));
    s.step2_reply = from_hex(c.at("step2").get<std::string>());
    s.group = c.value("group", 0);
    s.sender = c.value("sender", 0);
    specs.push_back(std::move(s));
  }
  if (j.contains("updates")) read_updates(j["updates"].get<std::string>(), specs);

  Loop loop(cfg);
  json r;
  if (cfg.mode == "fanout") {
    r = run_fanout(loop, specs);
  } else if (cfg.mode == "handshake") {
    r = run_handshake(loop, specs);
  } else if (cfg.mode == "idle") {
    r = run_idle(loop, specs);
  } else {
    die("unknown mode " + cfg.mode);
  }
  std::printf("%s\n", r.dump().c_str());
  return 0;
}
