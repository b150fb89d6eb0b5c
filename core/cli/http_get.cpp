// Sockets, deadlines and errno for `teleportal stats`; response framing is tp::ops's.
#include "http_get.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

namespace tp::cli {

namespace {

constexpr std::size_t kMaxResponse = 64 * 1024 * 1024;

Error bad_url(const std::string& what) {
  return make_error("bad_url", what);
}

bool host_char(char c, bool ipv6) {
  bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return alnum || c == '-' || c == '.' || c == '_' || (ipv6 && (c == ':' || c == '%'));
}

// host:port as a URL writes it (IPv6 literals in brackets).
std::string authority(const std::string& host, const std::string& port, bool with_port = true) {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + (with_port ? ":" + port : "");
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

class Deadline {
public:
  explicit Deadline(double seconds)
      : at_(std::chrono::steady_clock::now() +
            std::chrono::milliseconds(static_cast<long long>(seconds * 1000))) {}
  int remaining_ms() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        at_ - std::chrono::steady_clock::now());
    return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
  }

private:
  std::chrono::steady_clock::time_point at_;
};

// poll() for one event until the deadline: 1 ready, 0 timed out, -1 error (errno set).
int wait_for(int fd, short events, const Deadline& deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, deadline.remaining_ms());
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Result<int> connect_to(const HttpUrl& url, const Deadline& deadline, double timeout, Fd& sock) {
  std::string where = authority(url.host, url.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int gai = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found);
  if (gai != 0) {
    return make_error("resolve_failed",
                      "cannot resolve host '" + url.host + "': " + ::gai_strerror(gai));
  }
  int last_errno = 0;
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    Fd candidate;
    candidate.fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (candidate.fd < 0) {
      last_errno = errno;
      continue;
    }
    int err = ::connect(candidate.fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      int ready = wait_for(candidate.fd, POLLOUT, deadline);
      if (ready == 0) {
        ::freeaddrinfo(found);
        return make_error("timeout",
                          "timed out connecting to " + where + " after " + seconds_text(timeout));
      }
      socklen_t len = sizeof err;
      if (ready < 0 || ::getsockopt(candidate.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
    }
    if (err == 0) {
      std::swap(sock.fd, candidate.fd);
      ::freeaddrinfo(found);
      return sock.fd;
    }
    last_errno = err;
  }
  ::freeaddrinfo(found);
  if (last_errno == ECONNREFUSED) {
    return make_error("connection_refused",
                      "connection refused by " + where + " (is the server running there?)");
  }
  return make_error("connect_failed",
                    "cannot connect to " + where + ": " + std::strerror(last_errno));
}

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url, std::string_view default_path) {
  std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return bad_url("'" + std::string(url) + "' is not a URL (expected http://HOST[:PORT][/PATH])");
  }
  std::string scheme(url.substr(0, scheme_end));
  for (char& c : scheme) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (scheme != "http") {
    return bad_url("unsupported scheme '" + scheme + "://' (only http:// is supported)");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  std::size_t auth_end = rest.find_first_of("/?#");
  std::string_view auth = rest.substr(0, auth_end);
  std::string_view path = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
  path = path.substr(0, path.find('#'));
  if (auth.find('@') != std::string_view::npos) {
    return bad_url("credentials in the URL are not supported");
  }
  HttpUrl out;
  std::optional<std::string_view> port;
  bool ipv6 = !auth.empty() && auth[0] == '[';
  if (ipv6) {
    std::size_t close = auth.find(']');
    if (close == std::string_view::npos) return bad_url("unterminated [ in the URL's host");
    out.host = std::string(auth.substr(1, close - 1));
    std::string_view after = auth.substr(close + 1);
    if (!after.empty() && after[0] != ':') return bad_url("unexpected text after ] in the host");
    if (!after.empty()) port = after.substr(1);
  } else {
    std::size_t colon = auth.find(':');
    out.host = std::string(auth.substr(0, colon));
    if (colon != std::string_view::npos) port = auth.substr(colon + 1);
  }
  if (out.host.empty()) return bad_url("no host in '" + std::string(url) + "'");
  for (char c : out.host) {
    if (!host_char(c, ipv6)) return bad_url("invalid host '" + out.host + "'");
  }
  out.port = "80";
  if (port) {
    long value = port->empty() || port->size() > 5 ? -1 : 0;
    for (char c : *port) {
      if (value >= 0) value = c >= '0' && c <= '9' ? value * 10 + (c - '0') : -1;
    }
    if (value < 1 || value > 65535) {
      return bad_url("invalid port '" + std::string(*port) + "' (1 to 65535)");
    }
    out.port = std::to_string(value);
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return bad_url("the URL's path has a space or control character (percent-encode it)");
    }
  }
  if (path.empty() || path == "/" || path[0] == '?') {
    out.path = std::string(default_path) + std::string(path == "/" ? "" : path);
  } else {
    out.path = std::string(path);
  }
  out.text = "http://" + authority(out.host, out.port, port.has_value()) + out.path;
  return out;
}

Result<ops::HttpResponse> http_get(const HttpUrl& url, double timeout_seconds) {
  Deadline deadline(timeout_seconds);
  std::string where = authority(url.host, url.port);
  Fd sock;
  Result<int> connected = connect_to(url, deadline, timeout_seconds, sock);
  if (!connected) return connected.error();

  std::string host_header = authority(url.host, url.port, url.port != "80");
  std::string request = "GET " + url.path + " HTTP/1.1\r\nHost: " + host_header +
                        "\r\nUser-Agent: teleportal-cli\r\n"
                        "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\n"
                        "Accept-Encoding: identity\r\nConnection: close\r\n\r\n";
  for (std::size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    int ready = errno == EAGAIN || errno == EWOULDBLOCK ? wait_for(sock.fd, POLLOUT, deadline) : -1;
    if (ready == 0) {
      return make_error("timeout", "timed out sending to " + where + " after " +
                                       seconds_text(timeout_seconds));
    }
    if (ready < 0) {
      return make_error("send_failed", "cannot send to " + where + ": " + std::strerror(errno));
    }
  }

  std::string received;
  char buf[64 * 1024];
  for (;;) {
    int ready = wait_for(sock.fd, POLLIN, deadline);
    if (ready == 0) {
      return make_error("timeout", "no complete response from " + where + " within " +
                                       seconds_text(timeout_seconds));
    }
    ssize_t n = ready < 0 ? -1 : ::recv(sock.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return make_error("recv_failed", "cannot read from " + where + ": " + std::strerror(errno));
    }
    received.append(buf, static_cast<std::size_t>(n));
    if (received.size() > kMaxResponse) {
      return make_error("response_too_large", "the response from " + where + " exceeds 64 MiB");
    }
    auto parsed = ops::parse_http_response(received, n == 0);
    if (!parsed) return parsed.error();
    if (parsed.value()) return std::move(*parsed.value());
  }
}

}  // namespace tp::cli
