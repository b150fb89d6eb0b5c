// Prometheus text exposition format 0.0.4 (what a /metrics endpoint serves), parsed into metric
// families, plus the histogram arithmetic an operator view needs. Pure: text in, data out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tp/common/result.hpp"

namespace tp::ops {

// `# TYPE` values, in the order the format lists them; a family without `# TYPE` is untyped.
enum class MetricType : std::uint8_t { counter, gauge, histogram, summary, untyped };
std::string_view metric_type_name(MetricType type);

struct Label {
  std::string name;
  std::string value;  // unescaped
  bool operator==(const Label& o) const { return name == o.name && value == o.value; }
};
using Labels = std::vector<Label>;  // in the order written

struct Sample {
  std::string name;  // as written: a histogram's samples are name_bucket, name_sum, name_count
  Labels labels;
  double value = 0;                          // NaN and +-Inf allowed
  std::optional<std::int64_t> timestamp_ms;  // optional in the format
  std::size_t line = 0;                      // 1-based, for messages about this sample
};

struct Family {
  std::string name;
  MetricType type = MetricType::untyped;
  std::string help;  // unescaped; empty without `# HELP`
  std::vector<Sample> samples;
};

// Families in order of first mention (`# HELP`, `# TYPE` or a sample). A sample joins the family
// of its own name, else (name_bucket, name_sum, name_count) the histogram or summary `name`
// declared before it, else a new untyped family. Errors (message "line N: ..."):
//   invalid_metric_name, invalid_label, invalid_escape, duplicate_label, invalid_value,
//   invalid_timestamp, trailing_text, invalid_type, duplicate_type, type_after_samples,
//   duplicate_help, missing_label (le on a bucket, quantile on a summary), invalid_histogram
//   (a histogram sample without one of the three suffixes).
Result<std::vector<Family>> parse_metrics_text(std::string_view text);

// Go's ParseFloat spelling as the format uses it: decimal, or Inf / +Inf / -Inf / NaN (any case).
std::optional<double> parse_metric_value(std::string_view text);

// ---- histograms ---------------------------------------------------------------------------------
struct Bucket {
  double le = 0;     // upper bound, +Inf for the last
  double count = 0;  // cumulative
};

// One label set of a histogram family: its buckets (sorted by `le`) with _sum and _count.
struct HistogramSeries {
  Labels labels;  // without `le`, in the order of the first sample of the set
  std::vector<Bucket> buckets;
  std::optional<double> sum;
  std::optional<double> count;  // the _count sample; else the +Inf bucket's count
  double mean() const;          // sum / count, NaN when either is missing or count is 0
};
std::vector<HistogramSeries> histogram_series(const Family& histogram);

// The q-quantile (0 <= q <= 1) estimated like Prometheus's histogram_quantile: linear
// interpolation inside the bucket holding rank q * count, the first bucket starting at 0 (unless
// its bound is <= 0), the +Inf bucket answered by the highest finite bound. NaN without
// observations, without a +Inf bucket or with fewer than two buckets.
double histogram_quantile(double q, const std::vector<Bucket>& buckets);

}  // namespace tp::ops
