// `teleportal stats URL`: fetches a Prometheus text page (a server's /metrics) and prints one row
// per metric family and label set, or JSON. Parsing and histogram arithmetic are tp::ops's.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli.hpp"
#include "http_get.hpp"
#include "tp/ops/metrics_text.hpp"

namespace {

using nlohmann::ordered_json;
using tp::ops::Family;
using tp::ops::HistogramSeries;
using tp::ops::Labels;
using tp::ops::MetricType;

const tp::cli::Spec kStats{
    "stats",
    "fetch a server's Prometheus metrics (text format 0.0.4) and print them as a table",
    {{"URL", "http://HOST[:PORT][/PATH], e.g. http://127.0.0.1:3000/metrics; without a path (or "
             "with just /) /metrics is fetched"}},
    {
        {"filter", "PREFIX", "only metric families whose name starts with PREFIX (default: all)"},
        {"json", nullptr, "print JSON instead of the table"},
        {"timeout", "SECONDS", "limit for connecting, sending and receiving, together",
         std::string("5")},
    },
    "The table has one row per metric family and label set: METRIC, TYPE, LABELS, VALUE. A "
    "histogram's row shows count, sum, mean and p50/p99 estimated from its buckets (linear "
    "interpolation, as Prometheus's histogram_quantile); '-' where there is nothing to compute.\n"
    "--json prints {\"url\", \"families\": [{\"name\", \"type\", \"help\", \"series\": [...]}]}; a "
    "series has \"labels\" (an object) and either \"name\", \"value\" (and \"timestamp_ms\") or, "
    "for histograms, \"count\", \"sum\", \"mean\", \"p50\", \"p99\" and \"buckets\" [{\"le\", "
    "\"count\"}]. Numbers that are not finite are the strings \"NaN\", \"+Inf\" and \"-Inf\".\n"
    "Exit codes: 0 printed; 1 the fetch failed (bad address, connection refused, timeout, an HTTP "
    "status other than 200) or the page is not valid metrics text; 2 usage."};

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  return buf;
}

// Nothing to compute (a histogram without observations) shows as '-'.
std::string computed(double v) {
  return std::isnan(v) ? "-" : number(v);
}
std::string computed(const std::optional<double>& v) {
  return v ? computed(*v) : "-";
}

std::string labels_text(const Labels& labels) {
  if (labels.empty()) return "-";
  std::string out;
  for (const auto& l : labels) {
    if (!out.empty()) out += ",";
    out += l.name + "=\"";
    for (char c : l.value) {
      if (c == '\\' || c == '"') out += '\\';
      out += c == '\n' ? std::string("\\n") : std::string(1, c);
    }
    out += "\"";
  }
  return out;
}

ordered_json json_number(double v) {
  if (!std::isfinite(v)) return number(v);
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    return static_cast<std::int64_t>(v);
  }
  return v;
}
ordered_json json_number(const std::optional<double>& v) {
  return v ? json_number(*v) : ordered_json();
}

ordered_json labels_json(const Labels& labels) {
  ordered_json out = ordered_json::object();
  for (const auto& l : labels) out[l.name] = l.value;
  return out;
}

struct Row {
  std::string metric, type, labels, value;
};

std::string histogram_text(const HistogramSeries& h) {
  return "count=" + computed(h.count) + " sum=" + computed(h.sum) + " mean=" + computed(h.mean()) +
         " p50=" + computed(tp::ops::histogram_quantile(0.5, h.buckets)) +
         " p99=" + computed(tp::ops::histogram_quantile(0.99, h.buckets));
}

void print_table(const std::vector<Family>& families) {
  std::vector<Row> rows{{"METRIC", "TYPE", "LABELS", "VALUE"}};
  for (const Family& f : families) {
    std::string type(tp::ops::metric_type_name(f.type));
    if (f.type == MetricType::histogram) {
      for (const HistogramSeries& h : tp::ops::histogram_series(f)) {
        rows.push_back({f.name, type, labels_text(h.labels), histogram_text(h)});
      }
      continue;
    }
    for (const auto& s : f.samples) {
      rows.push_back({s.name, type, labels_text(s.labels), number(s.value)});
    }
  }
  if (rows.size() == 1) {
    std::printf("no samples\n");
    return;
  }
  std::size_t w[3] = {0, 0, 0};
  for (const Row& r : rows) {
    w[0] = std::max(w[0], r.metric.size());
    w[1] = std::max(w[1], r.type.size());
    w[2] = std::max(w[2], r.labels.size());
  }
  for (const Row& r : rows) {
    std::printf("%-*s  %-*s  %-*s  %s\n", static_cast<int>(w[0]), r.metric.c_str(),
                static_cast<int>(w[1]), r.type.c_str(), static_cast<int>(w[2]), r.labels.c_str(),
                r.value.c_str());
  }
}

void print_json(const std::string& url, const std::vector<Family>& families) {
  ordered_json out = {{"url", url}, {"families", ordered_json::array()}};
  for (const Family& f : families) {
    ordered_json series = ordered_json::array();
    if (f.type == MetricType::histogram) {
      for (const HistogramSeries& h : tp::ops::histogram_series(f)) {
        ordered_json buckets = ordered_json::array();
        for (const auto& b : h.buckets) {
          buckets.push_back({{"le", json_number(b.le)}, {"count", json_number(b.count)}});
        }
        series.push_back({{"labels", labels_json(h.labels)},
                          {"count", json_number(h.count)},
                          {"sum", json_number(h.sum)},
                          {"mean", json_number(h.mean())},
                          {"p50", json_number(tp::ops::histogram_quantile(0.5, h.buckets))},
                          {"p99", json_number(tp::ops::histogram_quantile(0.99, h.buckets))},
                          {"buckets", std::move(buckets)}});
      }
    } else {
      for (const auto& s : f.samples) {
        ordered_json one = {
            {"labels", labels_json(s.labels)}, {"name", s.name}, {"value", json_number(s.value)}};
        if (s.timestamp_ms) one["timestamp_ms"] = *s.timestamp_ms;
        series.push_back(std::move(one));
      }
    }
    out["families"].push_back({{"name", f.name},
                               {"type", std::string(tp::ops::metric_type_name(f.type))},
                               {"help", f.help},
                               {"series", std::move(series)}});
  }
  std::printf("%s\n", out.dump(-1, ' ', false, ordered_json::error_handler_t::replace).c_str());
}

int failed(const std::string& what, const tp::Error& e) {
  std::fprintf(stderr, "teleportal stats: %s: %s (%s)\n", what.c_str(), e.message.c_str(),
               e.code.c_str());
  return 1;
}

int run(int argc, char** argv) {
  tp::cli::Args a = tp::cli::parse(kStats, argc, argv);
  if (a.exit_code >= 0) return a.exit_code;
  char* end = nullptr;
  std::string timeout_text = a.get("timeout");
  double timeout = std::strtod(timeout_text.c_str(), &end);
  if (timeout_text.empty() || *end != '\0' || !(timeout > 0) || timeout > 86400) {
    return tp::cli::usage_error(kStats, "--timeout takes a positive number of seconds");
  }
  auto url = tp::cli::parse_http_url(a.positional[0], "/metrics");
  if (!url) return tp::cli::usage_error(kStats, url.error().message);

  std::string what = "GET " + url.value().text;
  auto response = tp::cli::http_get(url.value(), timeout);
  if (!response) return failed(what, response.error());
  const tp::ops::HttpResponse& r = response.value();
  if (r.status != 200) {
    std::string status =
        "HTTP " + std::to_string(r.status) + (r.reason.empty() ? "" : " ") + r.reason;
    return failed(what, tp::make_error("http_status", status + " (expected 200)"));
  }
  const std::string* encoding = r.header("content-encoding");
  if (encoding && *encoding != "identity") {
    return failed(what, tp::make_error("unsupported_content_encoding",
                                       "the body is " + *encoding + "-encoded"));
  }
  auto families = tp::ops::parse_metrics_text(r.body);
  if (!families) return failed(url.value().text, families.error());

  std::vector<Family> shown;
  std::string prefix = a.get("filter");
  for (Family& f : families.value()) {
    if (f.name.compare(0, prefix.size(), prefix) == 0) shown.push_back(std::move(f));
  }
  if (a.has("json")) {
    print_json(url.value().text, shown);
  } else {
    print_table(shown);
  }
  return 0;
}

const tp::cli::Registrar r(tp::cli::command(kStats, &run));

}  // namespace
