// Strings (UTF-8 / UTF-16 bookkeeping), lib0 `any` validation, and the JSON <-> any conversions
// yjs performs implicitly (JSON.parse / JSON.stringify / writeAny / readAny).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <vector>

#include "yjs/internal.hpp"

namespace tp::yjs::detail {

const char* code_name(Code c) {
  switch (c) {
    case Code::ok: return "ok";
    case Code::truncated: return "truncated";
    case Code::integer_out_of_range: return "integer_out_of_range";
    case Code::invalid_utf8: return "invalid_utf8";
    case Code::length_out_of_range: return "length_out_of_range";
    case Code::unknown_content_ref: return "unknown_content_ref";
    case Code::unknown_type_ref: return "unknown_type_ref";
    case Code::unknown_any_tag: return "unknown_any_tag";
    case Code::invalid_json: return "invalid_json";
    case Code::invalid_parent_info: return "invalid_parent_info";
    case Code::trailing_bytes: return "trailing_bytes";
    case Code::column_exhausted: return "column_exhausted";
    case Code::column_trailing_data: return "column_trailing_data";
    case Code::zero_length_struct: return "zero_length_struct";
    case Code::clock_overflow: return "clock_overflow";
    case Code::invalid_delete_set: return "invalid_delete_set";
    case Code::too_many_structs: return "too_many_structs";
    case Code::nesting_too_deep: return "nesting_too_deep";
    case Code::unsupported_feature_flag: return "unsupported_feature_flag";
    case Code::duplicate_client: return "duplicate_client";
    case Code::invalid_state_vector: return "invalid_state_vector";
    case Code::unencodable_value: return "unencodable_value";
  }
  return "unknown";
}

static const char* code_message(Code c) {
  switch (c) {
    case Code::truncated: return "Unexpected end of array";
    case Code::integer_out_of_range: return "Integer out of Range";
    case Code::invalid_utf8: return "The encoded data was not valid for encoding utf-8";
    case Code::length_out_of_range: return "Declared length exceeds the remaining bytes";
    case Code::unknown_content_ref: return "Unknown item content type";
    case Code::unknown_type_ref: return "Unknown shared type reference";
    case Code::unknown_any_tag: return "Unknown lib0 any tag";
    case Code::invalid_json: return "Invalid JSON in item content";
    case Code::invalid_parent_info: return "Invalid parent info (expected 0 or 1)";
    case Code::trailing_bytes: return "Unexpected bytes after the end of the update";
    case Code::column_exhausted: return "A V2 column ended before all its values were read";
    case Code::column_trailing_data: return "A V2 column holds values that no struct uses";
    case Code::zero_length_struct: return "Struct or content of length zero";
    case Code::clock_overflow: return "Clock exceeds 2^53-1";
    case Code::invalid_delete_set: return "Invalid delete set";
    case Code::too_many_structs: return "Update declares more structs than its size allows";
    case Code::nesting_too_deep: return "Value nesting too deep";
    case Code::unsupported_feature_flag: return "Unsupported V2 feature flag";
    case Code::duplicate_client: return "Client listed twice";
    case Code::invalid_state_vector: return "Invalid state vector";
    case Code::unencodable_value: return "Value cannot be encoded in the target format";
    default: return "Invalid update";
  }
}

Error Status::to_error(const char* where) const {
  std::string msg = code_message(code);
  if (!detail.empty()) msg += " (" + detail + ")";
  if (where && *where) msg += " in " + std::string(where);
  return Error{code_name(code), msg};
}

// ---- Reader slow paths -----------------------------------------------------------------------
std::uint64_t Reader::vu_slow() {
  if (e - p >= 8) {  // common case: no bounds checks per byte; at most 8 bytes fit in 53 bits
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 56; shift += 7) {
      std::uint8_t b = *p++;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) {
        if (v > kMaxSafe) break;
        return v;
      }
    }
    stop(Code::integer_out_of_range);
    return 0;
  }
  std::uint64_t v = 0;
  unsigned shift = 0;
  while (true) {
    if (p >= e) {
      stop(Code::truncated);
      return 0;
    }
    std::uint8_t b = *p++;
    if (shift > 49) {
      stop(Code::integer_out_of_range);
      return 0;
    }
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    shift += 7;
    if (v > kMaxSafe) {
      stop(Code::integer_out_of_range);
      return 0;
    }
    if (b < 0x80) return v;
  }
}

std::uint64_t Reader::vi_slow() {
  bool& neg = last_neg;
  if (e - p >= 9) {
    std::uint8_t first = *p++;
    neg = (first & 0x40) != 0;
    std::uint64_t v = first & 0x3f;
    if (!(first & 0x80)) return v;
    for (unsigned shift = 6; shift < 62; shift += 7) {
      std::uint8_t b = *p++;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) {
        if (v > kMaxSafe) break;
        return v;
      }
    }
    stop(Code::integer_out_of_range);
    return 0;
  }
  std::uint8_t first = u8();
  neg = (first & 0x40) != 0;
  std::uint64_t v = first & 0x3f;
  if (!(first & 0x80)) return v;
  unsigned shift = 6;
  while (true) {
    if (p >= e) {
      stop(Code::truncated);
      return 0;
    }
    std::uint8_t b = *p++;
    if (shift > 48) {
      stop(Code::integer_out_of_range);
      return 0;
    }
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    shift += 7;
    if (v > kMaxSafe) {
      stop(Code::integer_out_of_range);
      return 0;
    }
    if (b < 0x80) return v;
  }
}

// ---- UTF-8 / UTF-16 --------------------------------------------------------------------------
bool utf8_scan(const std::uint8_t* p, std::size_t n, std::size_t* u16, bool* ascii) {
  std::size_t i = 0, units = 0;
  bool all_ascii = true;
  while (i < n) {
    // ASCII runs eight bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
      units += 8;
    }
    if (i >= n) break;
    std::uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      ++units;
      continue;
    }
    all_ascii = false;
    if (c >= 0xc2 && c <= 0xdf) {
      if (i + 1 >= n || (p[i + 1] & 0xc0) != 0x80) return false;
      i += 2;
      units += 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      if (i + 2 >= n || (p[i + 1] & 0xc0) != 0x80 || (p[i + 2] & 0xc0) != 0x80) return false;
      if (c == 0xe0 && p[i + 1] < 0xa0) return false;   // overlong
      if (c == 0xed && p[i + 1] >= 0xa0) return false;  // surrogate
      i += 3;
      units += 1;
    } else if (c >= 0xf0 && c <= 0xf4) {
      if (i + 3 >= n || (p[i + 1] & 0xc0) != 0x80 || (p[i + 2] & 0xc0) != 0x80 ||
          (p[i + 3] & 0xc0) != 0x80)
        return false;
      if (c == 0xf0 && p[i + 1] < 0x90) return false;   // overlong
      if (c == 0xf4 && p[i + 1] >= 0x90) return false;  // > U+10FFFF
      i += 4;
      units += 2;
    } else {
      return false;
    }
  }
  if (u16) *u16 = units;
  if (ascii) *ascii = all_ascii;
  return true;
}

static inline std::size_t seq_len(std::uint8_t b) {
  return b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
}

bool u16_advance(const std::uint8_t* p, std::size_t size, U16Cursor& c, std::size_t n) {
  while (n > 0) {
    if (c.mid) {
      c.byte += 4;
      c.mid = false;
      --n;
      continue;
    }
    if (c.byte >= size) return false;
    std::uint8_t b = p[c.byte];
    if (b < 0x80) {
      ++c.byte;
      --n;
      continue;
    }
    std::size_t len = seq_len(b);
    if (len == 4) {
      if (n >= 2) {
        c.byte += 4;
        n -= 2;
      } else {
        c.mid = true;
        n = 0;
      }
    } else {
      c.byte += len;
      --n;
    }
  }
  return true;
}

static void put3(Bytes& out, std::uint32_t u) {
  out.push_back(static_cast<std::uint8_t>(0xe0 | (u >> 12)));
  out.push_back(static_cast<std::uint8_t>(0x80 | ((u >> 6) & 0x3f)));
  out.push_back(static_cast<std::uint8_t>(0x80 | (u & 0x3f)));
}

static std::uint32_t cp4(const std::uint8_t* q) {
  return (static_cast<std::uint32_t>(q[0] & 0x07) << 18) | (static_cast<std::uint32_t>(q[1] & 0x3f) << 12) |
         (static_cast<std::uint32_t>(q[2] & 0x3f) << 6) | (q[3] & 0x3f);
}

Str u16_substr(const std::uint8_t* p, const U16Cursor& a, const U16Cursor& b, std::size_t u16,
               Arena& arena) {
  if (u16 == 0) return Str{p + a.byte, 0, 0, false};
  if (!a.mid && !b.mid) return Str{p + a.byte, b.byte - a.byte, u16, false};
  Bytes out;
  std::size_t from = a.byte;
  if (a.mid) {
    std::uint32_t cp = cp4(p + a.byte) - 0x10000;
    put3(out, 0xdc00 + (cp & 0x3ff));
    from += 4;
  }
  if (b.byte > from) out.insert(out.end(), p + from, p + b.byte);
  if (b.mid) {
    std::uint32_t cp = cp4(p + b.byte) - 0x10000;
    put3(out, 0xd800 + (cp >> 10));
  }
  return arena.keep(std::move(out), u16, true);
}

Str str_slice_from(const Str& s, std::size_t k, Arena& arena) {
  if (k == 0) return s;
  if (k >= s.u16) return Str{s.p + s.n, 0, 0, false};
  U16Cursor a;
  u16_advance(s.p, s.n, a, k);
  U16Cursor b{s.n, false};
  Str r = u16_substr(s.p, a, b, s.u16 - k, arena);
  r.wtf = r.wtf || s.wtf;
  return r;
}

static bool unit_is_high_surrogate(const Str& s, std::size_t idx) {
  U16Cursor c;
  if (!u16_advance(s.p, s.n, c, idx)) return false;
  if (c.mid || c.byte >= s.n) return false;
  std::uint8_t b = s.p[c.byte];
  if (b >= 0xf0) return true;
  return b == 0xed && c.byte + 1 < s.n && s.p[c.byte + 1] >= 0xa0 && s.p[c.byte + 1] < 0xb0;
}

Str str_splice_right(const Str& s, std::size_t k, Arena& arena) {
  Str right = str_slice_from(s, k, arena);
  if (k == 0 || !unit_is_high_surrogate(s, k - 1)) return right;
  // yjs replaces both halves of a split pair with U+FFFD (yjs issue 248).
  Str rest = str_slice_from(right, 1, arena);
  Bytes out{0xef, 0xbf, 0xbd};
  out.insert(out.end(), rest.p, rest.p + rest.n);
  return arena.keep(std::move(out), rest.u16 + 1, rest.wtf);
}

void append_utf8(Out& out, const std::uint8_t* p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t* hit = static_cast<const std::uint8_t*>(std::memchr(p + i, 0xed, n - i));
    std::size_t j = hit ? static_cast<std::size_t>(hit - p) : n;
    out.raw(p + i, j - i);
    i = j;
    if (i >= n) break;
    if (i + 2 < n && p[i + 1] >= 0xa0) {
      bool high = p[i + 1] < 0xb0;
      if (high && i + 5 < n && p[i + 3] == 0xed && p[i + 4] >= 0xb0) {
        std::uint32_t hi = ((p[i + 1] & 0x0f) << 6) | (p[i + 2] & 0x3f);
        std::uint32_t lo = ((p[i + 4] & 0x0f) << 6) | (p[i + 5] & 0x3f);
        std::uint32_t cp = 0x10000 + (hi << 10) + lo;
        out.u8(static_cast<std::uint8_t>(0xf0 | (cp >> 18)));
        out.u8(static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3f)));
        out.u8(static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3f)));
        out.u8(static_cast<std::uint8_t>(0x80 | (cp & 0x3f)));
        i += 6;
      } else {
        out.u8(0xef);
        out.u8(0xbf);
        out.u8(0xbd);
        i += 3;
      }
    } else {
      out.raw(p + i, std::min<std::size_t>(3, n - i));
      i += 3;
    }
  }
}

// ---- lib0 any --------------------------------------------------------------------------------
static bool check_str(Reader& r) {
  ByteView s = r.vbytes();
  if (!r.st->ok()) return false;
  if (!utf8_scan(s.data, s.size, nullptr)) {
    r.stop(Code::invalid_utf8);
    return false;
  }
  return true;
}

void skip_any(Reader& r, int depth) {
  if (depth > kMaxDepth) return r.stop(Code::nesting_too_deep);
  std::uint8_t tag = r.u8();
  if (!r.st->ok()) return;
  switch (tag) {
    case 127: case 126: case 121: case 120: return;
    case 125: {
      bool neg;
      r.vi(neg);
      return;
    }
    case 124: r.raw(4); return;
    case 123: case 122: r.raw(8); return;
    case 119: check_str(r); return;
    case 118: {
      std::uint64_t n = r.vu();
      if (n > r.left() / 2) return r.stop(Code::length_out_of_range, "object size");
      for (std::uint64_t i = 0; i < n && r.st->ok(); ++i) {
        if (!check_str(r)) return;
        skip_any(r, depth + 1);
      }
      return;
    }
    case 117: {
      std::uint64_t n = r.vu();
      if (n > r.left()) return r.stop(Code::length_out_of_range, "array size");
      for (std::uint64_t i = 0; i < n && r.st->ok(); ++i) skip_any(r, depth + 1);
      return;
    }
    case 116: r.vbytes(); return;
    default: r.stop(Code::unknown_any_tag, "tag " + std::to_string(tag)); return;
  }
}

// ---- a JS value, just enough for JSON.parse/stringify and readAny/writeAny -------------------
namespace {

struct JV {
  enum T : std::uint8_t { Undef, Null, False, True, Num, Big, Text, Arr, Obj, Buf } t = Undef;
  double num = 0;
  std::int64_t big = 0;
  std::string s;  // Text (WTF-8) or Buf bytes
  std::vector<JV> items;
  std::vector<std::string> keys;  // Obj: parallel to items
};

bool is_index_key(const std::string& k, std::uint64_t* v) {
  if (k.empty() || k.size() > 10) return false;
  if (k.size() > 1 && k[0] == '0') return false;
  std::uint64_t x = 0;
  for (char c : k) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (x > 4294967294ULL) return false;
  *v = x;
  return true;
}

// JS own-property semantics: a repeated key keeps its first position and takes the last value;
// array-index keys come first in ascending order.
void finish_object(JV& o) {
  if (o.keys.size() > 1) {
    std::unordered_map<std::string, std::size_t> first;
    std::vector<std::string> keys;
    std::vector<JV> items;
    for (std::size_t i = 0; i < o.keys.size(); ++i) {
      auto it = first.find(o.keys[i]);
      if (it == first.end()) {
        first.emplace(o.keys[i], keys.size());
        keys.push_back(std::move(o.keys[i]));
        items.push_back(std::move(o.items[i]));
      } else {
        items[it->second] = std::move(o.items[i]);
      }
    }
    o.keys = std::move(keys);
    o.items = std::move(items);
  }
  std::vector<std::size_t> idx, rest;
  std::vector<std::uint64_t> num(o.keys.size());
  for (std::size_t i = 0; i < o.keys.size(); ++i) {
    if (is_index_key(o.keys[i], &num[i])) idx.push_back(i); else rest.push_back(i);
  }
  if (idx.empty()) return;
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return num[a] < num[b]; });
  idx.insert(idx.end(), rest.begin(), rest.end());
  std::vector<std::string> keys;
  std::vector<JV> items;
  for (std::size_t i : idx) {
    keys.push_back(std::move(o.keys[i]));
    items.push_back(std::move(o.items[i]));
  }
  o.keys = std::move(keys);
  o.items = std::move(items);
}

// ---- JSON.parse ----
struct JsonParser {
  const std::uint8_t* p;
  const std::uint8_t* e;
  bool ok = true;

  void ws() {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  }
  bool lit(const char* s) {
    std::size_t n = std::strlen(s);
    if (static_cast<std::size_t>(e - p) < n || std::memcmp(p, s, n) != 0) return ok = false;
    p += n;
    return true;
  }
  static void put_unit(std::string& out, std::uint32_t u) {
    Bytes b;
    if (u < 0x80) {
      out.push_back(static_cast<char>(u));
    } else if (u < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (u >> 6)));
      out.push_back(static_cast<char>(0x80 | (u & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xe0 | (u >> 12)));
      out.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (u & 0x3f)));
    }
  }
  static void put_cp(std::string& out, std::uint32_t cp) {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
  int hex4() {
    if (e - p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = static_cast<char>(p[i]);
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    p += 4;
    return v;
  }
  bool string(std::string& out) {
    if (p >= e || *p != '"') return ok = false;
    ++p;
    while (true) {
      if (p >= e) return ok = false;
      std::uint8_t c = *p;
      if (c == '"') {
        ++p;
        return true;
      }
      if (c < 0x20) return ok = false;
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        ++p;
        continue;
      }
      ++p;
      if (p >= e) return ok = false;
      char x = static_cast<char>(*p++);
      switch (x) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          int u = hex4();
          if (u < 0) return ok = false;
          if (u >= 0xd800 && u < 0xdc00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            const std::uint8_t* save = p;
            p += 2;
            int lo = hex4();
            if (lo >= 0xdc00 && lo < 0xe000) {
              put_cp(out, 0x10000 + ((static_cast<std::uint32_t>(u) - 0xd800) << 10) +
                              (static_cast<std::uint32_t>(lo) - 0xdc00));
              break;
            }
            p = save;
          }
          put_unit(out, static_cast<std::uint32_t>(u));
          break;
        }
        default: return ok = false;
      }
    }
  }
  bool number(double& v) {
    const std::uint8_t* s = p;
    if (p < e && *p == '-') ++p;
    if (p >= e) return ok = false;
    if (*p == '0') {
      ++p;
    } else if (*p >= '1' && *p <= '9') {
      while (p < e && *p >= '0' && *p <= '9') ++p;
    } else {
      return ok = false;
    }
    if (p < e && *p == '.') {
      ++p;
      if (p >= e || *p < '0' || *p > '9') return ok = false;
      while (p < e && *p >= '0' && *p <= '9') ++p;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
      ++p;
      if (p < e && (*p == '+' || *p == '-')) ++p;
      if (p >= e || *p < '0' || *p > '9') return ok = false;
      while (p < e && *p >= '0' && *p <= '9') ++p;
    }
    std::string lex(reinterpret_cast<const char*>(s), static_cast<std::size_t>(p - s));
    v = std::strtod(lex.c_str(), nullptr);
    return true;
  }
  bool value(JV& v, int depth) {
    if (depth > kMaxDepth) return ok = false;
    ws();
    if (p >= e) return ok = false;
    switch (*p) {
      case 'n': v.t = JV::Null; return lit("null");
      case 't': v.t = JV::True; return lit("true");
      case 'f': v.t = JV::False; return lit("false");
      case '"': v.t = JV::Text; return string(v.s);
      case '[': {
        ++p;
        v.t = JV::Arr;
        ws();
        if (p < e && *p == ']') {
          ++p;
          return true;
        }
        while (true) {
          v.items.emplace_back();
          if (!value(v.items.back(), depth + 1)) return false;
          ws();
          if (p < e && *p == ',') {
            ++p;
            continue;
          }
          if (p < e && *p == ']') {
            ++p;
            return true;
          }
          return ok = false;
        }
      }
      case '{': {
        ++p;
        v.t = JV::Obj;
        ws();
        if (p < e && *p == '}') {
          ++p;
          return true;
        }
        while (true) {
          ws();
          v.keys.emplace_back();
          if (!string(v.keys.back())) return false;
          ws();
          if (p >= e || *p != ':') return ok = false;
          ++p;
          v.items.emplace_back();
          if (!value(v.items.back(), depth + 1)) return false;
          ws();
          if (p < e && *p == ',') {
            ++p;
            continue;
          }
          if (p < e && *p == '}') {
            ++p;
            finish_object(v);
            return true;
          }
          return ok = false;
        }
      }
      default: v.t = JV::Num; return number(v.num);
    }
  }
};

bool parse_json(const Str& s, JV& v) {
  JsonParser jp{s.p, s.p + s.n};
  if (!jp.value(v, 0)) return false;
  jp.ws();
  return jp.p == jp.e;
}

// ---- Number.prototype.toString ----
void js_number(double v, std::string& out) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (v == 0) {
    out += '0';
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-Infinity" : "Infinity";
    return;
  }
  if (v < 0) {
    out += '-';
    v = -v;
  }
  char buf[40];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  // buf = d[.ddd]e[+-]xx
  std::string digits;
  const char* q = buf;
  for (; *q && *q != 'e'; ++q) if (*q != '.') digits += *q;
  int exp10 = std::atoi(q + 1);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int k = static_cast<int>(digits.size());
  int n = exp10 + 1;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<std::size_t>(n));
    out += '.';
    out += digits.substr(static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += 'e';
    out += (n - 1 >= 0) ? '+' : '-';
    out += std::to_string(std::abs(n - 1));
  }
}

// ---- JSON.stringify ----
void json_quote(const std::string& s, std::string& out) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    std::uint8_t c = p[i];
    if (c == 0xed && i + 2 < n && p[i + 1] >= 0xa0) {
      bool high = p[i + 1] < 0xb0;
      if (high && i + 5 < n && p[i + 3] == 0xed && p[i + 4] >= 0xb0) {
        Out tmp;
        append_utf8(tmp, p + i, 6);
        out.append(reinterpret_cast<const char*>(tmp.data()), tmp.size());
        i += 6;
        continue;
      }
      std::uint32_t u = ((c & 0x0f) << 12) | ((p[i + 1] & 0x3f) << 6) | (p[i + 2] & 0x3f);
      out += "\\u";
      for (int sh = 12; sh >= 0; sh -= 4) out += hex[(u >> sh) & 0xf];
      i += 3;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

bool stringify(const JV& v, std::string& out) {
  switch (v.t) {
    case JV::Undef: return false;
    case JV::Null: out += "null"; return true;
    case JV::True: out += "true"; return true;
    case JV::False: out += "false"; return true;
    case JV::Num:
      if (!std::isfinite(v.num)) out += "null"; else js_number(v.num, out);
      return true;
    case JV::Big: return false;  // JSON.stringify throws on BigInt
    case JV::Text: json_quote(v.s, out); return true;
    case JV::Arr:
      out += '[';
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ',';
        if (v.items[i].t == JV::Undef) out += "null";
        else if (!stringify(v.items[i], out)) return false;
      }
      out += ']';
      return true;
    case JV::Obj: {
      out += '{';
      bool first = true;
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        if (v.items[i].t == JV::Undef) continue;
        if (!first) out += ',';
        first = false;
        json_quote(v.keys[i], out);
        out += ':';
        if (!stringify(v.items[i], out)) return false;
      }
      out += '}';
      return true;
    }
    case JV::Buf: {
      out += '{';
      for (std::size_t i = 0; i < v.s.size(); ++i) {
        if (i) out += ',';
        out += '"' + std::to_string(i) + "\":" + std::to_string(static_cast<std::uint8_t>(v.s[i]));
      }
      out += '}';
      return true;
    }
  }
  return false;
}

// ---- writeAny ----
void put_be(Out& out, std::uint64_t bits, int n) {
  for (int i = n - 1; i >= 0; --i) out.u8(static_cast<std::uint8_t>(bits >> (8 * i)));
}

void write_any(const JV& v, Out& out) {
  switch (v.t) {
    case JV::Undef: out.u8(127); return;
    case JV::Null: out.u8(126); return;
    case JV::True: out.u8(120); return;
    case JV::False: out.u8(121); return;
    case JV::Num: {
      double d = v.num;
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= 2147483647.0) {
        out.u8(125);
        out.vi(static_cast<std::uint64_t>(std::fabs(d)), std::signbit(d));
      } else if (!std::isnan(d) && static_cast<double>(static_cast<float>(d)) == d) {
        out.u8(124);
        float f = static_cast<float>(d);
        std::uint32_t bits;
        std::memcpy(&bits, &f, 4);
        put_be(out, bits, 4);
      } else {
        out.u8(123);
        std::uint64_t bits;
        std::memcpy(&bits, &d, 8);
        put_be(out, bits, 8);
      }
      return;
    }
    case JV::Big: out.u8(122); put_be(out, static_cast<std::uint64_t>(v.big), 8); return;
    case JV::Text: {
      out.u8(119);
      Out tmp;
      append_utf8(tmp, reinterpret_cast<const std::uint8_t*>(v.s.data()), v.s.size());
      out.vu(tmp.size());
      out.raw(tmp.data(), tmp.size());
      return;
    }
    case JV::Arr:
      out.u8(117);
      out.vu(v.items.size());
      for (const JV& x : v.items) write_any(x, out);
      return;
    case JV::Obj:
      out.u8(118);
      out.vu(v.items.size());
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        Out tmp;
        append_utf8(tmp, reinterpret_cast<const std::uint8_t*>(v.keys[i].data()), v.keys[i].size());
        out.vu(tmp.size());
        out.raw(tmp.data(), tmp.size());
        write_any(v.items[i], out);
      }
      return;
    case JV::Buf:
      out.u8(116);
      out.vu(v.s.size());
      out.raw(reinterpret_cast<const std::uint8_t*>(v.s.data()), v.s.size());
      return;
  }
}

// ---- readAny ----
std::uint64_t get_be(Reader& r, int n) {
  ByteView b = r.raw(static_cast<std::uint64_t>(n));
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < b.size; ++i) v = (v << 8) | b[i];
  return v;
}

void read_any(Reader& r, JV& v, int depth) {
  if (depth > kMaxDepth) return r.stop(Code::nesting_too_deep);
  std::uint8_t tag = r.u8();
  if (!r.st->ok()) return;
  switch (tag) {
    case 127: v.t = JV::Undef; return;
    case 126: v.t = JV::Null; return;
    case 121: v.t = JV::False; return;
    case 120: v.t = JV::True; return;
    case 125: {
      bool neg;
      std::uint64_t m = r.vi(neg);
      v.t = JV::Num;
      v.num = neg ? -static_cast<double>(m) : static_cast<double>(m);
      return;
    }
    case 124: {
      auto bits = static_cast<std::uint32_t>(get_be(r, 4));
      float f;
      std::memcpy(&f, &bits, 4);
      v.t = JV::Num;
      v.num = f;
      return;
    }
    case 123: {
      std::uint64_t bits = get_be(r, 8);
      v.t = JV::Num;
      std::memcpy(&v.num, &bits, 8);
      return;
    }
    case 122: v.t = JV::Big; v.big = static_cast<std::int64_t>(get_be(r, 8)); return;
    case 119: {
      ByteView s = r.vbytes();
      if (!r.st->ok()) return;
      if (!utf8_scan(s.data, s.size, nullptr)) return r.stop(Code::invalid_utf8);
      v.t = JV::Text;
      v.s.assign(reinterpret_cast<const char*>(s.data), s.size);
      return;
    }
    case 118: {
      std::uint64_t n = r.vu();
      if (n > r.left() / 2) return r.stop(Code::length_out_of_range, "object size");
      v.t = JV::Obj;
      for (std::uint64_t i = 0; i < n && r.st->ok(); ++i) {
        ByteView k = r.vbytes();
        if (!r.st->ok()) return;
        if (!utf8_scan(k.data, k.size, nullptr)) return r.stop(Code::invalid_utf8);
        JV item;
        read_any(r, item, depth + 1);
        std::string key(reinterpret_cast<const char*>(k.data), k.size);
        if (key == "__proto__") continue;  // `obj[key] = v` sets the prototype, not a key
        v.keys.push_back(std::move(key));
        v.items.push_back(std::move(item));
      }
      finish_object(v);
      return;
    }
    case 117: {
      std::uint64_t n = r.vu();
      if (n > r.left()) return r.stop(Code::length_out_of_range, "array size");
      v.t = JV::Arr;
      v.items.resize(static_cast<std::size_t>(n));
      for (std::uint64_t i = 0; i < n && r.st->ok(); ++i) read_any(r, v.items[i], depth + 1);
      return;
    }
    case 116: {
      ByteView b = r.vbytes();
      v.t = JV::Buf;
      v.s.assign(reinterpret_cast<const char*>(b.data), b.size);
      return;
    }
    default: return r.stop(Code::unknown_any_tag, "tag " + std::to_string(tag));
  }
}

}  // namespace

bool json_valid(const Str& s) {
  JV v;
  return parse_json(s, v);
}

void json_canonical(const Str& s, Out& out, Status& st) {
  JV v;
  if (!parse_json(s, v)) return st.fail(Code::invalid_json);
  std::string text;
  if (!stringify(v, text)) return st.fail(Code::unencodable_value);
  out.raw(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

void json_to_any(const Str& s, Out& out, Status& st) {
  JV v;
  if (!parse_json(s, v)) return st.fail(Code::invalid_json);
  write_any(v, out);
}

void any_to_json(Reader& r, Out& out, Status& st) {
  JV v;
  read_any(r, v, 0);
  if (!st.ok()) return;
  std::string text;
  if (!stringify(v, text)) return st.fail(Code::unencodable_value, "JSON.stringify cannot encode it");
  out.raw(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

}  // namespace tp::yjs::detail
