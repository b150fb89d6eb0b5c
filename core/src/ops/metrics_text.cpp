// Prometheus text format 0.0.4, one line at a time. Grammar of a sample line:
//   name [ "{" [ label "=" '"' value '"' { "," label "=" '"' value '"' } [","] ] "}" ] value [ts]
// with blanks (space, tab) allowed between tokens. Lines may end in \r\n.
#include "tp/ops/metrics_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>

namespace tp::ops {

namespace {

bool blank(char c) {
  return c == ' ' || c == '\t';
}
bool alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool digit(char c) {
  return c >= '0' && c <= '9';
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// What to show of a token in a message: quoted, cut to a readable length.
std::string shown(std::string_view token) {
  if (token.empty()) return "nothing";
  std::string out = "'";
  out.append(token.substr(0, 40));
  if (token.size() > 40) out += "...";
  return out + "'";
}

struct Cursor {
  std::string_view s;
  std::size_t i = 0;

  bool done() const { return i >= s.size(); }
  bool at(char c) const { return i < s.size() && s[i] == c; }
  void skip_blanks() {
    while (i < s.size() && blank(s[i])) ++i;
  }
  // [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, without ':' for label names; empty if none.
  std::string_view name(bool colon) {
    std::size_t start = i;
    auto ok = [&](char c, bool first) {
      return alpha(c) || (colon && c == ':') || (!first && digit(c));
    };
    if (i < s.size() && ok(s[i], true)) {
      ++i;
      while (i < s.size() && ok(s[i], false)) ++i;
    }
    return s.substr(start, i - start);
  }
  std::string_view token() {
    std::size_t start = i;
    while (i < s.size() && !blank(s[i])) ++i;
    return s.substr(start, i - start);
  }
  std::string_view rest() {
    std::string_view r = s.substr(std::min(i, s.size()));
    i = s.size();
    return r;
  }
};

std::optional<std::int64_t> parse_timestamp(std::string_view t) {
  std::size_t i = (!t.empty() && (t[0] == '+' || t[0] == '-')) ? 1 : 0;
  if (i == t.size()) return std::nullopt;
  for (std::size_t k = i; k < t.size(); ++k) {
    if (!digit(t[k])) return std::nullopt;
  }
  // Accumulate negatively: the most negative int64 has no positive counterpart.
  const std::int64_t min = std::numeric_limits<std::int64_t>::min();
  std::int64_t v = 0;
  for (std::size_t k = i; k < t.size(); ++k) {
    int d = t[k] - '0';
    if (v < (min + d) / 10) return std::nullopt;
    v = v * 10 - d;
  }
  if (t[0] == '-') return v;
  if (v == min) return std::nullopt;
  return -v;
}

class Parser {
public:
  Result<std::vector<Family>> run(std::string_view text) {
    std::size_t start = 0;
    while (start <= text.size() && error_.code.empty()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(start, end - start);
      // CR LF line ends, and stray CRs before them (a help text cannot end in one).
      while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      ++line_;
      parse_line(line);
      start = end + 1;
    }
    if (!error_.code.empty()) return error_;
    return std::move(families_);
  }

private:
  struct Declared {
    bool type = false;
    bool help = false;
  };

  std::vector<Family> families_;
  std::vector<Declared> declared_;  // parallel to families_
  std::map<std::string, std::size_t, std::less<>> index_;
  std::size_t line_ = 0;
  Error error_;

  bool fail(const char* code, const std::string& what) {
    error_ = make_error(code, "line " + std::to_string(line_) + ": " + what);
    return false;
  }

  // A metric name must be followed by a blank, the end of the line or (samples) the labels.
  bool metric_name_ends(const Cursor& c, std::string_view name, bool labels_may_follow) {
    if (name.empty()) {
      return fail("invalid_metric_name", "expected a metric name, found " + shown(c.s.substr(c.i)));
    }
    if (c.done() || blank(c.s[c.i]) || (labels_may_follow && c.at('{'))) return true;
    return fail("invalid_metric_name", "unexpected " + shown(c.s.substr(c.i, 1)) +
                                           " after metric name " + std::string(name));
  }

  std::size_t family(std::string_view name) {
    auto it = index_.find(name);
    if (it != index_.end()) return it->second;
    families_.push_back(Family{std::string(name), MetricType::untyped, {}, {}});
    declared_.push_back({});
    index_.emplace(std::string(name), families_.size() - 1);
    return families_.size() - 1;
  }

  // The family named `base` when a sample with `suffix` belongs to it (see the header).
  std::optional<std::size_t> family_by_suffix(std::string_view name) {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (!ends_with(name, suffix)) continue;
      auto it = index_.find(name.substr(0, name.size() - suffix.size()));
      if (it == index_.end()) return std::nullopt;
      MetricType t = families_[it->second].type;
      bool histogram_only = suffix == "_bucket";
      if (t == MetricType::histogram || (!histogram_only && t == MetricType::summary)) {
        return it->second;
      }
      return std::nullopt;
    }
    return std::nullopt;
  }

  bool parse_line(std::string_view line) {
    Cursor c{line};
    c.skip_blanks();
    if (c.done()) return true;
    if (c.at('#')) return parse_comment(c);
    return parse_sample(c);
  }

  // `# HELP name text`, `# TYPE name type`; any other comment is ignored.
  bool parse_comment(Cursor& c) {
    ++c.i;
    c.skip_blanks();
    std::string_view keyword = c.token();
    if (keyword != "HELP" && keyword != "TYPE") return true;
    c.skip_blanks();
    std::string_view name = c.name(true);
    if (!metric_name_ends(c, name, false)) return false;
    c.skip_blanks();
    std::size_t f = family(name);
    if (keyword == "HELP") {
      if (declared_[f].help)
        return fail("duplicate_help", "second # HELP for " + std::string(name));
      declared_[f].help = true;
      return unescape(c.rest(), false, families_[f].help);
    }
    std::string_view type = c.token();
    static const MetricType kTypes[] = {MetricType::counter, MetricType::gauge,
                                        MetricType::histogram, MetricType::summary,
                                        MetricType::untyped};
    const MetricType* found = nullptr;
    for (const MetricType& t : kTypes) {
      if (equals_ignoring_case(type, metric_type_name(t))) found = &t;
    }
    if (!found) {
      return fail("invalid_type", "unknown metric type " + shown(type) +
                                      " (counter, gauge, histogram, summary or untyped)");
    }
    c.skip_blanks();
    if (!c.done())
      return fail("trailing_text", "unexpected " + shown(c.rest()) + " after the type");
    if (declared_[f].type) return fail("duplicate_type", "second # TYPE for " + std::string(name));
    if (!families_[f].samples.empty()) {
      return fail("type_after_samples", "# TYPE for " + std::string(name) + " after its samples");
    }
    declared_[f].type = true;
    families_[f].type = *found;
    return true;
  }

  // Escapes: \\ and \n everywhere, \" in label values only.
  bool unescape(std::string_view in, bool label_value, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i] != '\\') {
        out.push_back(in[i]);
        continue;
      }
      char next = i + 1 < in.size() ? in[i + 1] : '\0';
      if (next == '\\' || next == 'n' || (label_value && next == '"')) {
        out.push_back(next == 'n' ? '\n' : next);
        ++i;
        continue;
      }
      return fail("invalid_escape", std::string("invalid escape ") + shown(in.substr(i, 2)) +
                                        (label_value ? " in a label value (\\\\, \\\" or \\n)"
                                                     : " in help text (\\\\ or \\n)"));
    }
    return true;
  }

  bool parse_labels(Cursor& c, Labels& labels) {
    ++c.i;  // '{'
    for (;;) {
      c.skip_blanks();
      if (c.at('}')) break;
      std::string_view name = c.name(false);
      if (name.empty()) {
        return fail("invalid_label", "expected a label name or '}', found " + shown(c.rest()));
      }
      c.skip_blanks();
      if (!c.at('=')) {
        return fail("invalid_label", "expected '=' after label " + std::string(name));
      }
      ++c.i;
      c.skip_blanks();
      if (!c.at('"')) {
        return fail("invalid_label",
                    "expected '\"' to open the value of label " + std::string(name));
      }
      // The closing quote is the first one not preceded by an escaping backslash.
      std::size_t begin = ++c.i;
      while (!c.done() && c.s[c.i] != '"') c.i += c.s[c.i] == '\\' ? 2 : 1;
      if (c.done()) {
        return fail("invalid_label", "unterminated value of label " + std::string(name));
      }
      Label label{std::string(name), {}};
      if (!unescape(c.s.substr(begin, c.i - begin), true, label.value)) return false;
      ++c.i;
      for (const Label& l : labels) {
        if (l.name == label.name) return fail("duplicate_label", "label " + l.name + " twice");
      }
      labels.push_back(std::move(label));
      c.skip_blanks();
      if (c.at(',')) {
        ++c.i;
        continue;
      }
      if (c.at('}')) break;
      return fail("invalid_label", "expected ',' or '}' after the value of label " +
                                       labels.back().name + ", found " + shown(c.rest()));
    }
    ++c.i;  // '}'
    return true;
  }

  bool parse_sample(Cursor& c) {
    Sample sample;
    sample.line = line_;
    std::string_view name = c.name(true);
    if (!metric_name_ends(c, name, true)) return false;
    sample.name = std::string(name);
    c.skip_blanks();
    if (c.at('{') && !parse_labels(c, sample.labels)) return false;
    c.skip_blanks();
    std::string_view value = c.token();
    std::optional<double> v = parse_metric_value(value);
    if (!v) return fail("invalid_value", "expected a sample value, found " + shown(value));
    sample.value = *v;
    c.skip_blanks();
    if (!c.done()) {
      std::string_view ts = c.token();
      sample.timestamp_ms = parse_timestamp(ts);
      if (!sample.timestamp_ms) {
        return fail("invalid_timestamp",
                    "expected a timestamp (integer milliseconds), found " + shown(ts));
      }
      c.skip_blanks();
      if (!c.done()) {
        return fail("trailing_text", "unexpected " + shown(c.rest()) + " after the timestamp");
      }
    }
    std::optional<std::size_t> f;
    if (auto it = index_.find(name); it != index_.end()) f = it->second;
    if (!f) f = family_by_suffix(name);
    if (!f) f = family(name);
    if (!check_typed_sample(families_[*f], sample)) return false;
    families_[*f].samples.push_back(std::move(sample));
    return true;
  }

  bool check_typed_sample(const Family& f, const Sample& s) {
    const char* needed = nullptr;
    if (f.type == MetricType::histogram) {
      if (s.name == f.name) {
        return fail("invalid_histogram",
                    "histogram sample " + s.name + " must end in _bucket, _sum or _count");
      }
      if (ends_with(s.name, "_bucket")) needed = "le";
    } else if (f.type == MetricType::summary && s.name == f.name) {
      needed = "quantile";
    }
    if (!needed) return true;
    for (const Label& l : s.labels) {
      if (l.name != needed) continue;
      if (parse_metric_value(l.value)) return true;
      return fail("invalid_value", std::string("label ") + needed + " of " + s.name + " is " +
                                       shown(l.value) + ", not a number");
    }
    return fail("missing_label", s.name + " has no " + needed + " label");
  }
};

}  // namespace

std::string_view metric_type_name(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
    case MetricType::summary: return "summary";
    case MetricType::untyped: break;
  }
  return "untyped";
}

std::optional<double> parse_metric_value(std::string_view t) {
  std::size_t i = (!t.empty() && (t[0] == '+' || t[0] == '-')) ? 1 : 0;
  std::string_view unsigned_part = t.substr(i);
  if (equals_ignoring_case(unsigned_part, "inf") ||
      equals_ignoring_case(unsigned_part, "infinity")) {
    double inf = std::numeric_limits<double>::infinity();
    return t[0] == '-' ? -inf : inf;
  }
  if (i == 0 && equals_ignoring_case(t, "nan")) return std::numeric_limits<double>::quiet_NaN();
  // Check the spelling first: strtod also takes hex, "nan(...)" and leading blanks.
  std::size_t digits = 0;
  while (i < t.size() && digit(t[i])) ++i, ++digits;
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (i < t.size() && digit(t[i])) ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    std::size_t exponent_digits = 0;
    while (i < t.size() && digit(t[i])) ++i, ++exponent_digits;
    if (exponent_digits == 0) return std::nullopt;
  }
  if (i != t.size()) return std::nullopt;
  // The core never sets a locale, so strtod reads '.' as the decimal point.
  return std::strtod(std::string(t).c_str(), nullptr);
}

Result<std::vector<Family>> parse_metrics_text(std::string_view text) {
  return Parser().run(text);
}

// ---- histograms ---------------------------------------------------------------------------------

double HistogramSeries::mean() const {
  if (!sum || !count || *count == 0) return std::numeric_limits<double>::quiet_NaN();
  return *sum / *count;
}

std::vector<HistogramSeries> histogram_series(const Family& histogram) {
  std::vector<HistogramSeries> out;
  // A label set's key: its labels without `le`, sorted by name (written order may differ).
  std::map<std::vector<std::pair<std::string, std::string>>, std::size_t> index;
  for (const Sample& s : histogram.samples) {
    std::vector<std::pair<std::string, std::string>> key;
    Labels labels;
    std::optional<double> le;
    for (const Label& l : s.labels) {
      if (l.name == "le") {
        le = parse_metric_value(l.value);
        continue;
      }
      key.emplace_back(l.name, l.value);
      labels.push_back(l);
    }
    std::sort(key.begin(), key.end());
    auto [it, added] = index.emplace(std::move(key), out.size());
    if (added) out.push_back(HistogramSeries{std::move(labels), {}, {}, {}});
    HistogramSeries& series = out[it->second];
    if (ends_with(s.name, "_bucket")) {
      if (le) series.buckets.push_back(Bucket{*le, s.value});
    } else if (ends_with(s.name, "_sum")) {
      series.sum = s.value;
    } else if (ends_with(s.name, "_count")) {
      series.count = s.value;
    }
  }
  for (HistogramSeries& series : out) {
    std::stable_sort(series.buckets.begin(), series.buckets.end(),
                     [](const Bucket& a, const Bucket& b) { return a.le < b.le; });
    if (!series.count && !series.buckets.empty() && std::isinf(series.buckets.back().le)) {
      series.count = series.buckets.back().count;
    }
  }
  return out;
}

double histogram_quantile(double q, const std::vector<Bucket>& buckets) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (std::isnan(q)) return nan;
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  std::vector<Bucket> b;
  for (const Bucket& x : buckets) {
    if (!std::isnan(x.le)) b.push_back(x);
  }
  std::stable_sort(b.begin(), b.end(),
                   [](const Bucket& x, const Bucket& y) { return x.le < y.le; });
  if (b.size() < 2 || !(std::isinf(b.back().le) && b.back().le > 0)) return nan;
  // Cumulative counts must not decrease; scrapes racing with observations can make them do so.
  for (std::size_t i = 1; i < b.size(); ++i) b[i].count = std::max(b[i].count, b[i - 1].count);
  double total = b.back().count;
  if (!(total > 0)) return nan;
  double rank = q * total;
  std::size_t i = 0;
  while (i < b.size() && b[i].count < rank) ++i;
  if (i >= b.size() - 1) return b[b.size() - 2].le;
  if (i == 0 && b[0].le <= 0) return b[0].le;
  double lower = i == 0 ? 0 : b[i - 1].le;
  double below = i == 0 ? 0 : b[i - 1].count;
  double in_bucket = b[i].count - below;
  if (in_bucket <= 0) return b[i].le;
  return lower + (b[i].le - lower) * ((rank - below) / in_bucket);
}

}  // namespace tp::ops
