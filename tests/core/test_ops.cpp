// tp::ops (Prometheus text parser, histogram arithmetic, HTTP response framing) and the operator
// CLI as a user runs it: the real binary, with a one-response HTTP server on 127.0.0.1.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tp/ops/http_response.hpp"
#include "tp/ops/metrics_text.hpp"

extern char** environ;

using namespace tp::ops;

namespace {

std::vector<Family> parse_ok(const std::string& text) {
  auto r = parse_metrics_text(text);
  INFO(text);
  if (!r) FAIL(r.error().code + ": " + r.error().message);
  return std::move(r.value());
}

const Family& family(const std::vector<Family>& fs, const std::string& name) {
  auto it = std::find_if(fs.begin(), fs.end(), [&](const Family& f) { return f.name == name; });
  INFO(name);
  REQUIRE(it != fs.end());
  return *it;
}

std::vector<Bucket> buckets(std::vector<std::pair<double, double>> pairs) {
  std::vector<Bucket> out;
  for (auto [le, count] : pairs) out.push_back(Bucket{le, count});
  return out;
}

const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

// ---- metrics text -------------------------------------------------------------------------------

TEST_CASE("metrics text: families, types, help, labels, values and timestamps", "[ops]") {
  auto fs =
      parse_ok("# HELP teleportal_connections_open Open connections.\n"
               "# TYPE teleportal_connections_open gauge\n"
               "teleportal_connections_open 3\n"
               "# a comment, ignored\n"
               "\n"
               "#TYPE teleportal_messages_total COUNTER\n"
               "teleportal_messages_total{direction=\"in\",type=\"update\"} 120 1700000000000\n"
               "teleportal_messages_total { direction = \"out\" , type=\"ack\", } 1.5e3\r\n"
               "\tloose_metric{} -Inf\n"
               "nan_metric NaN -5\n"
               "inf_metric +inf\n"
               "a:b_c 0.25");
  REQUIRE(fs.size() == 6);
  CHECK(fs[0].name == "teleportal_connections_open");
  CHECK(fs[0].type == MetricType::gauge);
  CHECK(fs[0].help == "Open connections.");
  REQUIRE(fs[0].samples.size() == 1);
  CHECK(fs[0].samples[0].value == 3);
  CHECK(fs[0].samples[0].line == 3);
  CHECK_FALSE(fs[0].samples[0].timestamp_ms);

  const Family& m = fs[1];
  CHECK(m.type == MetricType::counter);  // the type is case-insensitive, '#TYPE' is a directive
  REQUIRE(m.samples.size() == 2);
  CHECK(m.samples[0].labels == Labels{{"direction", "in"}, {"type", "update"}});
  CHECK(m.samples[0].timestamp_ms == 1700000000000);
  CHECK(m.samples[1].labels == Labels{{"direction", "out"}, {"type", "ack"}});
  CHECK(m.samples[1].value == 1500);

  CHECK(fs[2].type == MetricType::untyped);
  CHECK(fs[2].samples[0].labels.empty());
  CHECK(fs[2].samples[0].value == -kInf);
  CHECK(std::isnan(fs[3].samples[0].value));
  CHECK(fs[3].samples[0].timestamp_ms == -5);
  CHECK(fs[4].samples[0].value == kInf);
  CHECK(family(fs, "a:b_c").samples[0].value == 0.25);
  CHECK(metric_type_name(MetricType::histogram) == "histogram");
}

TEST_CASE("metrics text: escapes in label values and help", "[ops]") {
  auto fs = parse_ok(
      "# HELP x A \\\\ backslash,\\na newline and \"quotes\" as they are.\n"
      "x{path=\"C:\\\\dir\\\\\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\",brace=\"}{,=\"} 1\n");
  REQUIRE(fs.size() == 1);
  CHECK(fs[0].help == "A \\ backslash,\na newline and \"quotes\" as they are.");
  CHECK(fs[0].samples[0].labels ==
        Labels{{"path", "C:\\dir\\"}, {"quote", "say \"hi\""}, {"nl", "a\nb"}, {"brace", "}{,="}});
}

TEST_CASE("metrics text: values are spelled as Go's ParseFloat (decimal) spells them", "[ops]") {
  for (const char* ok : {"0", "-0", "+1", "1.", ".5", "1e3", "1E-3", "-2.5e+10", "Inf", "-inf",
                         "+Infinity", "NaN", "nan"}) {
    INFO(ok);
    CHECK(parse_metric_value(ok));
  }
  for (const char* bad : {"", "+", ".", "e3", "1e", "1e+", "0x10", "1,5", " 1", "1 ", "+NaN",
                          "nan(1)", "infinit", "1.2.3", "--1"}) {
    INFO(bad);
    CHECK_FALSE(parse_metric_value(bad));
  }
  CHECK(*parse_metric_value("-2.5e+10") == -2.5e10);
}

TEST_CASE("metrics text: malformed lines give a code and the line number", "[ops]") {
  struct Case {
    const char* text;
    const char* code;
    int line;
    const char* message_part;
  };
  const Case cases[] = {
      {"ok 1\nbad-name 1", "invalid_metric_name", 2, "unexpected '-' after metric name bad"},
      {"1abc 1", "invalid_metric_name", 1, "expected a metric name"},
      {"# HELP 1x text", "invalid_metric_name", 1, "expected a metric name"},
      {"x{a=\"b\" 1", "invalid_label", 1, "expected ',' or '}'"},
      {"x{a=\"unterminated} 1", "invalid_label", 1, "unterminated value of label a"},
      {"x{1a=\"b\"} 1", "invalid_label", 1, "expected a label name"},
      {"x{a:b=\"c\"} 1", "invalid_label", 1, "expected '=' after label a"},
      {"x{a=b} 1", "invalid_label", 1, "expected '\"'"},
      {"x{a=\"b\\q\"} 1", "invalid_escape", 1, "invalid escape '\\q'"},
      {"# HELP x say \\\"", "invalid_escape", 1, "in help text"},
      {"x{a=\"1\",a=\"2\"} 1", "duplicate_label", 1, "label a twice"},
      {"\n\nx abc", "invalid_value", 3, "expected a sample value, found 'abc'"},
      {"x", "invalid_value", 1, "found nothing"},
      {"x 0x1p3", "invalid_value", 1, "'0x1p3'"},
      {"x 1 12.5", "invalid_timestamp", 1, "integer milliseconds"},
      {"x 1 9223372036854775808", "invalid_timestamp", 1, "found"},
      {"x 1 12 junk", "trailing_text", 1, "'junk' after the timestamp"},
      {"# TYPE x countr", "invalid_type", 1, "unknown metric type 'countr'"},
      {"# TYPE x counter extra", "trailing_text", 1, "after the type"},
      {"# TYPE x counter\n# TYPE x gauge", "duplicate_type", 2, "second # TYPE for x"},
      {"x 1\n# TYPE x counter", "type_after_samples", 2, "after its samples"},
      {"# HELP x a\n# HELP x b", "duplicate_help", 2, "second # HELP for x"},
      {"# TYPE h histogram\nh_bucket 1", "missing_label", 2, "h_bucket has no le label"},
      {"# TYPE h histogram\nh_bucket{le=\"x\"} 1", "invalid_value", 2, "label le of h_bucket"},
      {"# TYPE h histogram\nh 1", "invalid_histogram", 2, "must end in _bucket, _sum or _count"},
      {"# TYPE s summary\ns 1", "missing_label", 2, "s has no quantile label"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto r = parse_metrics_text(c.text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == c.code);
    std::string prefix = "line " + std::to_string(c.line) + ": ";
    CHECK(r.error().message.rfind(prefix, 0) == 0);
    CHECK_THAT(r.error().message, Catch::Contains(c.message_part));
  }
  // The extremes of a timestamp still fit.
  auto fs = parse_ok("x 1 -9223372036854775808\ny 1 9223372036854775807");
  CHECK(*fs[0].samples[0].timestamp_ms == std::numeric_limits<std::int64_t>::min());
  CHECK(*fs[1].samples[0].timestamp_ms == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("metrics text: histogram and summary samples join their family", "[ops]") {
  auto fs =
      parse_ok("# TYPE lat histogram\n"
               "lat_bucket{op=\"write\",le=\"0.01\"} 4\n"
               "lat_bucket{le=\"0.1\",op=\"write\"} 9\n"  // label order differs: still one series
               "lat_bucket{op=\"write\",le=\"+Inf\"} 10\n"
               "lat_sum{op=\"write\"} 0.5\n"
               "lat_count{op=\"write\"} 10\n"
               "lat_bucket{op=\"read\",le=\"1\"} 0\n"
               "lat_bucket{op=\"read\",le=\"+Inf\"} 0\n"
               "# TYPE rpc summary\n"
               "rpc{quantile=\"0.5\"} 0.2\n"
               "rpc_sum 3\n"
               "rpc_count 7\n"
               "other_count 1\n"  // no family `other`: its own untyped family
               "lat_total 2\n");  // not a histogram suffix
  REQUIRE(fs.size() == 4);
  const Family& lat = family(fs, "lat");
  CHECK(lat.samples.size() == 7);
  CHECK(family(fs, "rpc").samples.size() == 3);
  CHECK(family(fs, "other_count").type == MetricType::untyped);
  CHECK(family(fs, "lat_total").type == MetricType::untyped);

  auto series = histogram_series(lat);
  REQUIRE(series.size() == 2);
  CHECK(series[0].labels == Labels{{"op", "write"}});
  REQUIRE(series[0].buckets.size() == 3);
  CHECK(series[0].buckets[2].le == kInf);
  CHECK(series[0].sum == 0.5);
  CHECK(series[0].count == 10);
  CHECK(series[0].mean() == Approx(0.05));
  // op="read": no _sum or _count; the count comes from the +Inf bucket, the mean is unknown.
  CHECK(series[1].count == 0);
  CHECK_FALSE(series[1].sum);
  CHECK(std::isnan(series[1].mean()));
  CHECK(std::isnan(histogram_quantile(0.5, series[1].buckets)));
}

TEST_CASE("histogram quantiles interpolate inside buckets like histogram_quantile", "[ops]") {
  auto b = buckets({{0.1, 2}, {0.5, 8}, {1, 10}, {kInf, 10}});
  CHECK(histogram_quantile(0.5, b) == Approx(0.1 + 0.4 * (3.0 / 6.0)));  // rank 5 in (0.1, 0.5]
  CHECK(histogram_quantile(0.99, b) == Approx(0.5 + 0.5 * (1.9 / 2.0)));
  CHECK(histogram_quantile(0.1, b) == Approx(0.05));  // the first bucket starts at 0
  CHECK(histogram_quantile(0, b) == Approx(0));
  // Ranks in the +Inf bucket answer the highest finite bound.
  CHECK(histogram_quantile(0.99, buckets({{1, 5}, {kInf, 10}})) == 1);
  // A first bucket bound <= 0 answers itself.
  CHECK(histogram_quantile(0.1, buckets({{-1, 5}, {kInf, 10}})) == -1);
  // Order does not matter; decreasing cumulative counts are flattened.
  CHECK(histogram_quantile(0.5, buckets({{kInf, 10}, {1, 10}, {0.5, 4}})) == Approx(0.5 + 0.5 / 6));
  CHECK(histogram_quantile(0.5, buckets({{1, 6}, {2, 4}, {kInf, 10}})) == Approx(5.0 / 6));
  CHECK(std::isnan(histogram_quantile(0.5, buckets({{1, 5}, {2, 10}}))));  // no +Inf bucket
  CHECK(std::isnan(histogram_quantile(0.5, buckets({{kInf, 10}}))));       // one bucket
  CHECK(std::isnan(histogram_quantile(0.5, buckets({{1, 0}, {kInf, 0}}))));
  CHECK(histogram_quantile(-1, b) == -kInf);
  CHECK(histogram_quantile(2, b) == kInf);
}

// ---- HTTP response framing ----------------------------------------------------------------------

namespace {

HttpResponse complete(const std::string& raw, bool at_end = false) {
  auto r = parse_http_response(raw, at_end);
  INFO(raw);
  if (!r) FAIL(r.error().code + ": " + r.error().message);
  if (!r.value()) FAIL("incomplete");
  return std::move(*r.value());
}

}  // namespace

TEST_CASE("HTTP responses: Content-Length, chunked, until close, interim", "[ops]") {
  HttpResponse r = complete(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello(extra)");
  CHECK(r.status == 200);
  CHECK(r.reason == "OK");
  CHECK(*r.header("content-type") == "text/plain");
  CHECK(r.header("Content-Type") == nullptr);  // names are stored lower-case
  CHECK(r.body == "hello");

  std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
                        "5;ext=1\r\nhello\r\nA\r\n, chunked!\r\n0\r\nTrailer: x\r\n\r\n";
  CHECK(complete(chunked).body == "hello, chunked!");
  // Every proper prefix needs more bytes, and is truncated if the stream ends there.
  for (std::size_t n = 0; n < chunked.size(); ++n) {
    INFO(n);
    auto partial = parse_http_response(chunked.substr(0, n), false);
    REQUIRE(partial);
    CHECK_FALSE(partial.value());
    auto ended = parse_http_response(chunked.substr(0, n), true);
    REQUIRE_FALSE(ended);
    CHECK(ended.error().code == "truncated");
  }

  // No length: the body runs to the end of the stream. Bare LF line ends are accepted.
  auto open = parse_http_response("HTTP/1.0 200 OK\nServer: x\n\npartial", false);
  REQUIRE(open);
  CHECK_FALSE(open.value());
  CHECK(complete("HTTP/1.0 200 OK\nServer: x\n\nall of it", true).body == "all of it");

  r = complete("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  CHECK(r.status == 404);
  CHECK(r.reason == "Not Found");
  CHECK(complete("HTTP/1.1 204\r\n\r\n").reason.empty());
}

TEST_CASE("HTTP responses: malformed and unsupported", "[ops]") {
  struct Case {
    const char* raw;
    const char* code;
  };
  const Case cases[] = {
      {"SSH-2.0-OpenSSH\r\n\r\n", "malformed_response"},
      {"HTTP/2 200 OK\r\n\r\n", "malformed_response"},
      {"HTTP/1.1 20 OK\r\n\r\n", "malformed_response"},
      {"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed_response"},
      {"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "malformed_response"},
      {"HTTP/1.1 200 OK\r\nName : x\r\n\r\n", "malformed_response"},
      {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed_response"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", "malformed_response"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed_response"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", "malformed_response"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       "unsupported_transfer_encoding"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "truncated"},
      {"", "truncated"},
  };
  for (const Case& c : cases) {
    INFO(c.raw);
    auto r = parse_http_response(c.raw, true);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == c.code);
  }
  auto big = parse_http_response(std::string(70000, 'x'), false);
  REQUIRE_FALSE(big);
  CHECK(big.error().code == "malformed_response");
}

// ---- the CLI binary -----------------------------------------------------------------------------

namespace {

struct Run {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs the real `teleportal` with stdin from /dev/null; stdout and stderr through temp files.
Run cli(std::vector<std::string> args) {
  char out_path[] = "/tmp/tp-cli-out-XXXXXX";
  char err_path[] = "/tmp/tp-cli-err-XXXXXX";
  int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
  REQUIRE(out_fd >= 0);
  REQUIRE(err_fd >= 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  args.insert(args.begin(), TP_CLI_PATH);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, TP_CLI_PATH, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_fd);
  close(err_fd);
  REQUIRE(spawned == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  Run r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  unlink(out_path);
  unlink(err_path);
  return r;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Accepts one connection on a free 127.0.0.1 port, reads the request head, answers `response`
// (or, with `respond` false, nothing until the client gives up) and closes.
class OneShotServer {
public:
  explicit OneShotServer(std::string response, bool respond = true)
      : response_(std::move(response)), respond_(respond) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(listener_, 1) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotServer() {
    if (thread_.joinable()) thread_.join();
    close(listener_);
  }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string request() {  // what the client sent (waits for the exchange to end)
    if (thread_.joinable()) thread_.join();
    return request_;
  }

private:
  static bool readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
  }
  void serve() {
    if (!readable(listener_, 10000)) return;
    int fd = accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    char buf[4096];
    while (request_.find("\r\n\r\n") == std::string::npos && readable(fd, 5000)) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      request_.append(buf, static_cast<std::size_t>(n));
    }
    if (respond_) {
      send(fd, response_.data(), response_.size(), MSG_NOSIGNAL);
    } else {
      while (readable(fd, 10000) && recv(fd, buf, sizeof buf, 0) > 0) {
      }
    }
    close(fd);
  }

  std::string response_;
  bool respond_;
  int listener_ = -1;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

std::string http_ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

const char kMetrics[] = "# HELP teleportal_connections_open Open WebSocket connections.\n"
                        "# TYPE teleportal_connections_open gauge\n"
                        "teleportal_connections_open 3\n"
                        "# TYPE teleportal_messages_in_total counter\n"
                        "teleportal_messages_in_total{type=\"update\"} 120\n"
                        "teleportal_messages_in_total{type=\"sync-step-1\"} 7\n"
                        "# TYPE teleportal_storage_write_seconds histogram\n"
                        "teleportal_storage_write_seconds_bucket{le=\"0.001\"} 2\n"
                        "teleportal_storage_write_seconds_bucket{le=\"0.01\"} 8\n"
                        "teleportal_storage_write_seconds_bucket{le=\"0.1\"} 10\n"
                        "teleportal_storage_write_seconds_bucket{le=\"+Inf\"} 10\n"
                        "teleportal_storage_write_seconds_sum 0.0523\n"
                        "teleportal_storage_write_seconds_count 10\n"
                        "other_gauge{path=\"a \\\"b\\\"\"} 0.125\n";

// Every command and subcommand, as typed after `teleportal`.
const std::vector<std::vector<std::string>> kLeaves = {
    {"decode"}, {"token", "mint"}, {"token", "verify"}, {"permission"}, {"stats"}};
const std::vector<std::vector<std::string>> kGroups = {{}, {"token"}};

std::string joined(const std::vector<std::string>& words) {
  std::string out = "teleportal";
  for (const auto& w : words) out += " " + w;
  return out;
}

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("cli: --help and -h on every command print usage, arguments and options", "[cli]") {
  for (const auto& path : kLeaves) {
    for (const char* flag : {"--help", "-h"}) {
      INFO(joined(path) << " " << flag);
      Run r = cli(plus(path, {flag}));
      CHECK(r.exit_code == 0);
      CHECK(r.err.empty());
      CHECK(r.out.rfind("usage: " + joined(path), 0) == 0);
      CHECK_THAT(r.out, Catch::Contains("\noptions:\n"));
      CHECK_THAT(r.out, Catch::Contains("-h, --help"));
    }
  }
  // Help wins over anything else before `--`.
  CHECK(cli({"token", "verify", "--bogus", "--help"}).exit_code == 0);
  // Defaults are shown.
  CHECK_THAT(cli({"token", "mint", "--help"}).out, Catch::Contains("(default: 3600)"));
  CHECK_THAT(cli({"token", "verify", "--help"}).out, Catch::Contains("(default: teleportal)"));
  CHECK_THAT(cli({"stats", "--help"}).out, Catch::Contains("--timeout SECONDS"));
  CHECK_THAT(cli({"stats", "--help"}).out, Catch::Contains("(default: 5)"));
  CHECK_THAT(cli({"decode", "-h"}).out, Catch::Contains("HEX"));

  for (const auto& path : kGroups) {
    INFO(joined(path));
    Run help = cli(plus(path, {"--help"}));
    CHECK(help.exit_code == 0);
    CHECK(help.out.rfind("usage: " + joined(path) + " <command>", 0) == 0);
    Run bare = cli(path);  // without arguments: the list, as a usage error
    CHECK(bare.exit_code == 2);
    CHECK(bare.out.empty());
    CHECK(bare.err == help.out);
    Run unknown = cli(plus(path, {"bogus"}));
    CHECK(unknown.exit_code == 2);
    CHECK(lines(unknown.err).size() == 2);
    CHECK(lines(unknown.err)[0] == joined(path) + ": unknown command 'bogus'");
  }
  std::string list = cli({"--help"}).out;
  for (const char* command : {"decode", "permission", "stats", "token"}) {
    CHECK_THAT(list, Catch::Contains(std::string("\n  ") + command + " "));
  }
  CHECK_THAT(cli({"token", "-h"}).out, Catch::Contains("\n  verify "));
}

TEST_CASE("cli: unknown options and missing arguments: one line, the usage line, exit 2", "[cli]") {
  for (const auto& path : kLeaves) {
    INFO(joined(path));
    Run r = cli(plus(path, {"--bogus"}));
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    auto err = lines(r.err);
    REQUIRE(err.size() == 2);
    CHECK(err[0] == joined(path) + ": unknown option --bogus");
    CHECK(err[1].rfind("usage: " + joined(path), 0) == 0);
    CHECK_THAT(err[1], Catch::EndsWith("(see --help)"));
  }
  struct Case {
    std::vector<std::string> args;
    std::string first_line;
  };
  const Case cases[] = {
      {{"token", "verify", "--secret", "s"}, "teleportal token verify: missing TOKEN"},
      {{"token", "verify", "--now", "1", "t"},
       "teleportal token verify: missing --secret or --secret-hex"},
      {{"token", "verify", "--secret", "s", "--secret-hex", "00", "t"},
       "teleportal token verify: give only one of --secret or --secret-hex"},
      {{"token", "verify", "--secret"}, "teleportal token verify: missing value for --secret S"},
      {{"token", "verify", "--secret", "s", "a", "b"},
       "teleportal token verify: unexpected argument 'b'"},
      {{"token", "mint", "--secret", "s", "--room", "r"},
       "teleportal token mint: missing --user U"},
      {{"token", "mint", "--secret", "s", "--user", "u", "--room", "r", "--now", "x"},
       "teleportal token mint: --now takes Unix seconds"},
      {{"token", "verify", "-x", "t"}, "teleportal token verify: unknown option -x"},
      {{"permission", "--access", "[]", "--doc", "d"}, "teleportal permission: missing --perm P"},
      {{"permission", "--access", "[", "--doc", "d", "--perm", "read"},
       "teleportal permission: --access is not valid JSON"},
      {{"permission", "--allow-missing=yes"},
       "teleportal permission: --allow-missing takes no value"},
      {{"stats"}, "teleportal stats: missing URL"},
      {{"stats", "--timeout", "0", "http://127.0.0.1:1"},
       "teleportal stats: --timeout takes a positive number of seconds"},
      {{"stats", "https://example.com/metrics"},
       "teleportal stats: unsupported scheme 'https://' (only http:// is supported)"},
      {{"stats", "127.0.0.1:3000"},
       "teleportal stats: '127.0.0.1:3000' is not a URL (expected http://HOST[:PORT][/PATH])"},
      {{"stats", "http://:3000/"}, "teleportal stats: no host in 'http://:3000/'"},
      {{"stats", "http://127.0.0.1:99999/"}, "teleportal stats: invalid port '99999' (1 to 65535)"},
      {{"stats", "http://u:p@127.0.0.1/"},
       "teleportal stats: credentials in the URL are not supported"},
  };
  for (const Case& c : cases) {
    INFO(joined(c.args));
    Run r = cli(c.args);
    CHECK(r.exit_code == 2);
    auto err = lines(r.err);
    REQUIRE(err.size() == 2);
    CHECK(err[0] == c.first_line);
    CHECK(err[1].rfind("usage: teleportal ", 0) == 0);
  }
}

TEST_CASE("cli: -- ends options on every command", "[cli]") {
  Run decoded = cli({"decode", "--", "594a530103646f6300000003010102"});
  CHECK(decoded.exit_code == 0);
  CHECK_THAT(decoded.out, Catch::Contains("\"type\":\"sync-step-1\""));
  // Without arguments decode reads stdin (here /dev/null: empty, so not a frame).
  CHECK(cli({"decode", "--"}).exit_code == 1);

  Run minted = cli({"token", "mint", "--secret=s3cret", "--user", "u", "--room", "r", "--now",
                    "1000", "--access", "[{\"pattern\":\"*\",\"permissions\":[\"read\"]}]", "--"});
  REQUIRE(minted.exit_code == 0);
  std::string token = lines(minted.out).at(0);
  Run verified = cli({"token", "verify", "--secret", "s3cret", "--now", "1001", "--", token});
  CHECK(verified.exit_code == 0);
  CHECK_THAT(verified.out, Catch::StartsWith("{\"valid\": true, \"payload\": {\"userId\":\"u\""));
  CHECK_THAT(verified.out, Catch::Contains("\"exp\":4600"));
  // A token starting with '-' reaches the verifier (and fails there, exit 1, not 2).
  Run dashed = cli({"token", "verify", "--secret", "s3cret", "--", "-" + token});
  CHECK(dashed.exit_code == 1);
  CHECK_THAT(dashed.out, Catch::StartsWith("{\"valid\": false"));
  // After --, even --help is an argument.
  CHECK(cli({"token", "verify", "--secret", "s", "--", "--help"}).exit_code == 1);

  Run perm = cli({"permission", "--access", "[{\"pattern\":\"a/*\",\"permissions\":[\"read\"]}]",
                  "--doc", "a/b", "--perm", "read", "--"});
  CHECK(perm.exit_code == 0);
  CHECK(perm.out == "{\"has\": true, \"permissions\": [\"read\"]}\n");

  OneShotServer server(http_ok("x 1\n"));
  Run stats = cli({"stats", "--", server.url("/metrics")});
  CHECK(stats.exit_code == 0);
  CHECK_THAT(stats.out, Catch::Contains("\nx "));
}

TEST_CASE("cli: stats prints a table of a server's metrics", "[cli]") {
  OneShotServer server(http_ok(kMetrics));
  Run r = cli({"stats", server.url()});  // no path: /metrics
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::string request = server.request();
  CHECK(request.rfind("GET /metrics HTTP/1.1\r\n", 0) == 0);
  CHECK_THAT(request, Catch::Contains("\r\nHost: 127.0.0.1:"));
  CHECK_THAT(request, Catch::Contains("\r\nConnection: close\r\n"));
  auto rows = lines(r.out);
  REQUIRE(rows.size() == 6);
  // Columns are padded to the widest cell; compare cells rather than spacing.
  auto cells = [](const std::string& row) {
    std::vector<std::string> out;
    std::istringstream in(row);
    for (std::string cell; in >> cell;) out.push_back(cell);
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(cells(rows[0]) == V{"METRIC", "TYPE", "LABELS", "VALUE"});
  CHECK(cells(rows[1]) == V{"teleportal_connections_open", "gauge", "-", "3"});
  CHECK(cells(rows[2]) == V{"teleportal_messages_in_total", "counter", "type=\"update\"", "120"});
  CHECK(cells(rows[3]) ==
        V{"teleportal_messages_in_total", "counter", "type=\"sync-step-1\"", "7"});
  CHECK(cells(rows[4]) == V{"teleportal_storage_write_seconds", "histogram", "-", "count=10",
                            "sum=0.0523", "mean=0.00523", "p50=0.0055", "p99=0.0955"});
  CHECK(cells(rows[5]) == V{"other_gauge", "untyped", "path=\"a", "\\\"b\\\"\"", "0.125"});
  // The VALUE column starts at the same offset on every row.
  std::size_t at = rows[0].find("VALUE");
  for (const std::string& row : rows) CHECK(row.size() > at);
  CHECK(rows[1].substr(at) == "3");
  CHECK(rows[4].substr(at).rfind("count=10 ", 0) == 0);
}

TEST_CASE("cli: stats --json and --filter", "[cli]") {
  OneShotServer server(http_ok(kMetrics));
  Run r = cli({"stats", "--json", "--filter", "teleportal_", server.url("/metrics")});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["url"] == server.url("/metrics"));
  REQUIRE(j["families"].size() == 3);  // other_gauge is filtered out
  CHECK(j["families"][0]["name"] == "teleportal_connections_open");
  CHECK(j["families"][0]["type"] == "gauge");
  CHECK(j["families"][0]["help"] == "Open WebSocket connections.");
  CHECK(j["families"][0]["series"][0] ==
        nlohmann::json::parse(R"({"labels":{},"name":"teleportal_connections_open","value":3})"));
  CHECK(j["families"][1]["series"][1]["labels"]["type"] == "sync-step-1");
  auto h = j["families"][2]["series"][0];
  CHECK(h["count"] == 10);
  CHECK(h["sum"].get<double>() == Approx(0.0523));
  CHECK(h["p50"].get<double>() == Approx(0.0055));
  CHECK(h["p99"].get<double>() == Approx(0.0955));
  REQUIRE(h["buckets"].size() == 4);
  CHECK(h["buckets"][3] == nlohmann::json::parse(R"({"le":"+Inf","count":10})"));
}

TEST_CASE("cli: stats reports what went wrong with the fetch", "[cli]") {
  {
    OneShotServer server("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
    Run r = cli({"stats", server.url("/nope")});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "teleportal stats: GET " + server.url("/nope") +
                       ": HTTP 404 Not Found (expected 200) (http_status)\n");
  }
  {
    OneShotServer server(http_ok("ok 1\nbroken{ 2\n"));
    Run r = cli({"stats", server.url("/")});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::StartsWith("teleportal stats: " + server.url("/metrics") +
                                        ": line 2: expected a label name"));
    CHECK_THAT(r.err, Catch::EndsWith("(invalid_label)\n"));
  }
  {
    OneShotServer server(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nx 1\n\r\n0\r\n\r\n");
    Run r = cli({"stats", server.url()});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("\nx "));
  }
  {
    OneShotServer silent("", false);
    Run r = cli({"stats", "--timeout", "0.3", silent.url()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("no complete response from 127.0.0.1:"));
    CHECK_THAT(r.err, Catch::EndsWith("within 0.3 s (timeout)\n"));
  }
  {
    // A port nobody listens on: bound, then released.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    close(fd);
    std::string port = std::to_string(ntohs(addr.sin_port));
    Run r = cli({"stats", "http://127.0.0.1:" + port});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "teleportal stats: GET http://127.0.0.1:" + port +
                       "/metrics: connection refused by 127.0.0.1:" + port +
                       " (is the server running there?) (connection_refused)\n");
  }
}
