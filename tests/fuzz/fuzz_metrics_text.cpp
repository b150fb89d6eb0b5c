// libFuzzer target for the Prometheus text parser (tp/ops/metrics_text.hpp). Arbitrary text must
// either fail with a code and a "line N: " message inside the input, or parse to families that,
// written back in the exposition format (by the writer below), parse to the same families.
// Histogram arithmetic on whatever parsed must stay within the bucket bounds.
//   scripts/fuzz 60 metrics_text   (seeds: tests/fuzz/seeds-fuzz_metrics_text/)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tp/ops/metrics_text.hpp"

using namespace tp::ops;

namespace {

[[noreturn]] void fail() {
  std::abort();
}

std::string escaped(const std::string& s, bool label_value) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && label_value) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string write(const std::vector<Family>& families) {
  std::string out;
  for (const Family& f : families) {
    if (!f.help.empty()) out += "# HELP " + f.name + " " + escaped(f.help, false) + "\n";
    out += "# TYPE " + f.name + " " + std::string(metric_type_name(f.type)) + "\n";
    for (const Sample& s : f.samples) {
      out += s.name;
      if (!s.labels.empty()) {
        out += "{";
        for (const Label& l : s.labels) out += l.name + "=\"" + escaped(l.value, true) + "\",";
        out.back() = '}';
      }
      out += " " + number(s.value);
      if (s.timestamp_ms) out += " " + std::to_string(*s.timestamp_ms);
      out += "\n";
    }
  }
  return out;
}

bool same_number(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

bool same(const std::vector<Family>& a, const std::vector<Family>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Family& x = a[i];
    const Family& y = b[i];
    if (x.name != y.name || x.type != y.type || x.help != y.help) return false;
    if (x.samples.size() != y.samples.size()) return false;
    for (std::size_t k = 0; k < x.samples.size(); ++k) {
      const Sample& s = x.samples[k];
      const Sample& t = y.samples[k];
      if (s.name != t.name || !(s.labels == t.labels) || !same_number(s.value, t.value) ||
          s.timestamp_ms != t.timestamp_ms) {
        return false;
      }
    }
  }
  return true;
}

// A quantile lies between the lower edge of the first bucket and the highest finite bound.
void check_quantile(double q, const std::vector<Bucket>& buckets) {
  if (std::isnan(q) || buckets.size() < 2) return;
  double lo = std::min(0.0, buckets.front().le);
  double hi = buckets[buckets.size() - 2].le;
  double slack = 1e-9 * std::max({1.0, std::fabs(lo), std::fabs(hi)});
  if (std::isfinite(slack) && (q < lo - slack || q > hi + slack)) fail();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  auto parsed = parse_metrics_text(text);
  if (!parsed) {
    const tp::Error& e = parsed.error();
    if (e.code.empty() || e.message.rfind("line ", 0) != 0) fail();
    std::size_t line = std::strtoul(e.message.c_str() + 5, nullptr, 10);
    if (line < 1 || line > lines) fail();
    return 0;
  }
  const std::vector<Family>& families = parsed.value();
  for (const Family& f : families) {
    for (const Sample& s : f.samples) {
      if (s.line < 1 || s.line > lines) fail();
    }
    if (f.type != MetricType::histogram) continue;
    for (const HistogramSeries& h : histogram_series(f)) {
      for (std::size_t i = 1; i < h.buckets.size(); ++i) {
        if (h.buckets[i - 1].le > h.buckets[i].le) fail();
      }
      check_quantile(histogram_quantile(0.5, h.buckets), h.buckets);
      check_quantile(histogram_quantile(0.99, h.buckets), h.buckets);
      (void)h.mean();
    }
  }
  auto again = parse_metrics_text(write(families));
  if (!again || !same(families, again.value())) fail();
  return 0;
}
