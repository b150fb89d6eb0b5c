// The update algebra: struct streams, mergeUpdates, diffUpdate, encodeStateVectorFromUpdate,
// format conversion and validation. Algorithms follow yjs/src/utils/updates.js step by step so the
// output bytes are the same; the one structural change is in merge (see merge_impl).
#include "tp/yjs/updates.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "yjs/codec.hpp"

namespace tp::yjs {
namespace detail {
namespace {

// Structs an update may declare: V2 run-length columns can describe many structs in few bytes,
// so bound the work by input size (yjs itself would loop for as long as the input says).
std::uint64_t struct_budget(std::size_t bytes) { return (std::uint64_t{1} << 20) + 64 * std::uint64_t(bytes); }

// ---- reading structs lazily (LazyStructReader) -----------------------------------------------
template <class D>
struct StructReader {
  D& d;
  Ctx& cx;
  bool filter_skips;
  std::uint64_t clients_left = 0, structs_left = 0, client = 0, clock = 0;
  Struct cur;
  bool has = false;

  StructReader(D& dec, Ctx& c, bool filter) : d(dec), cx(c), filter_skips(filter) {
    clients_left = d.rest.vu();
    if (clients_left > d.rest.left() / 2) d.rest.stop(Code::length_out_of_range, "client count");
    next();
  }

  void next() {
    do {
      has = read_one();
    } while (has && filter_skips && cur.kind == Kind::skip);
  }

  bool read_one() {
    Status& st = cx.st;
    while (structs_left == 0) {
      if (clients_left == 0 || !st.ok()) return false;
      --clients_left;
      structs_left = d.rest.vu();
      client = d.client();
      clock = d.rest.vu();
      if (!st.ok()) return false;
    }
    --structs_left;
    if (cx.budget == 0) {
      d.rest.stop(Code::too_many_structs);
      return false;
    }
    --cx.budget;
    // Reset only what every struct sets; other fields are written before they are read.
    cur.has_origin = cur.has_right = cur.has_sub = false;
    cur.parent = 0;
    cur.len = 0;
    cur.c.ref = 0;
    cur.c.json_off = 0;
    cur.client = client;
    cur.clock = clock;
    std::uint8_t info = d.info();
    if (info == 10) {
      cur.kind = Kind::skip;
      cur.len = d.rest.vu();
    } else if (info & 0x1f) {
      cur.kind = Kind::item;
      if (info & 0x80) {
        cur.has_origin = true;
        cur.origin = d.left_id();
      }
      if (info & 0x40) {
        cur.has_right = true;
        cur.right = d.right_id();
      }
      if ((info & 0xc0) == 0) {
        if (d.parent_info()) {
          cur.parent = 1;
          cur.parent_key = d.string();
        } else {
          cur.parent = 2;
          cur.parent_id = d.left_id();
        }
        if (info & 0x20) {
          cur.has_sub = true;
          cur.parent_sub = d.string();
        }
      }
      read_content(info & 0x1f);
    } else {
      cur.kind = Kind::gc;
      cur.len = d.len();
    }
    if (!st.ok()) return false;
    if (cur.len == 0) {
      st.fail(Code::zero_length_struct, "client " + std::to_string(client) + " clock " + std::to_string(clock));
      return false;
    }
    if (cur.len > kMaxSafe - clock) {
      st.fail(Code::clock_overflow);
      return false;
    }
    clock += cur.len;
    return true;
  }

  void read_content(std::uint8_t ref) {
    Content& c = cur.c;
    c.ref = ref;
    switch (ref) {
      case kDeleted: cur.len = d.len(); return;
      case kJSON: {
        std::uint64_t n = d.len();
        if (!cx.st.ok()) return;
        // every entry is at least one byte ("1"), in the rest stream (V1) or the string column (V2)
        if (n > string_room()) {
          d.rest.stop(Code::length_out_of_range, "JSON content count");
          return;
        }
        cx.lists.emplace_back();
        std::vector<Str>& list = cx.lists.back();
        list.reserve(static_cast<std::size_t>(n));
        static const std::uint8_t kUndef[] = {'u', 'n', 'd', 'e', 'f', 'i', 'n', 'e', 'd'};
        for (std::uint64_t i = 0; i < n && cx.st.ok(); ++i) {
          Str s = d.string();
          if (!cx.st.ok()) return;
          bool undef = s.n == 9 && std::memcmp(s.p, kUndef, 9) == 0;
          if (!undef && !json_valid(s)) return d.rest.stop(Code::invalid_json);
          list.push_back(s);
        }
        c.json = &list;
        cur.len = n;
        return;
      }
      case kBinary: c.raw = d.buf(); cur.len = 1; return;
      case kString: c.str = d.string(); cur.len = c.str.u16; return;
      case kEmbed: c.value = d.json(); cur.len = 1; return;
      case kFormat:
        c.str = d.key();
        c.value = d.json();
        cur.len = 1;
        return;
      case kType: {
        std::uint64_t t = d.type_ref();
        if (!cx.st.ok()) return;
        if (t > 6) return d.rest.stop(Code::unknown_type_ref, "type ref " + std::to_string(t));
        c.type_ref = static_cast<std::uint8_t>(t);
        if (t == 3 || t == 5) c.str = d.key();  // YXmlElement nodeName, YXmlHook hookName
        cur.len = 1;
        return;
      }
      case kAny: {
        std::uint64_t n = d.len();
        if (!cx.st.ok()) return;
        if (n > d.rest.left()) return d.rest.stop(Code::length_out_of_range, "any content count");
        const std::uint8_t* s = d.rest.p;
        for (std::uint64_t i = 0; i < n && cx.st.ok(); ++i) skip_any(d.rest);
        c.raw = ByteView(s, static_cast<std::size_t>(d.rest.p - s));
        cur.len = n;
        return;
      }
      case kDoc:
        c.str = d.string();
        c.raw = d.any();
        cur.len = 1;
        return;
      default:
        d.rest.stop(Code::unknown_content_ref, "content ref " + std::to_string(ref));
        return;
    }
  }

  std::size_t string_room() const;
};

template <>
std::size_t StructReader<DecV1>::string_room() const { return d.rest.left(); }
template <>
std::size_t StructReader<DecV2>::string_room() const { return d.strings.total - d.strings.used; }

std::size_t string_room_of(const DecV1& d) { return d.rest.left(); }
std::size_t string_room_of(const DecV2& d) { return d.strings.total - d.strings.used; }

// ---- skimming structs -------------------------------------------------------------------------
// The same reads, checks and errors, in the same order, as StructReader, but nothing is kept:
// strings are skipped (not sliced), ids are not stored. `on(client, clock, len, is_skip)` sees
// every struct. For encodeStateVectorFromUpdate and validation.
template <class D>
std::uint64_t skim_content(D& d, Ctx& cx, std::uint8_t ref) {
  switch (ref) {
    case kDeleted: return d.len();
    case kJSON: {
      // as StructReader::read_content: every entry must parse
      std::uint64_t n = d.len();
      if (!cx.st.ok()) return 0;
      if (n > string_room_of(d)) {
        d.rest.stop(Code::length_out_of_range, "JSON content count");
        return 0;
      }
      static const std::uint8_t kUndef[] = {'u', 'n', 'd', 'e', 'f', 'i', 'n', 'e', 'd'};
      for (std::uint64_t i = 0; i < n && cx.st.ok(); ++i) {
        Str s = d.string();
        if (!cx.st.ok()) return 0;
        bool undef = s.n == 9 && std::memcmp(s.p, kUndef, 9) == 0;
        if (!undef && !json_valid(s)) {
          d.rest.stop(Code::invalid_json);
          return 0;
        }
      }
      return n;
    }
    case kBinary: d.buf(); return 1;
    case kString: return d.skip_string();
    case kEmbed: d.skip_json(); return 1;
    case kFormat:
      d.skip_key();
      d.skip_json();
      return 1;
    case kType: {
      std::uint64_t t = d.type_ref();
      if (!cx.st.ok()) return 0;
      if (t > 6) {
        d.rest.stop(Code::unknown_type_ref, "type ref " + std::to_string(t));
        return 0;
      }
      if (t == 3 || t == 5) d.skip_key();
      return 1;
    }
    case kAny: {
      std::uint64_t n = d.len();
      if (!cx.st.ok()) return 0;
      if (n > d.rest.left()) {
        d.rest.stop(Code::length_out_of_range, "any content count");
        return 0;
      }
      for (std::uint64_t i = 0; i < n && cx.st.ok(); ++i) skip_any(d.rest);
      return n;
    }
    case kDoc:
      d.skip_string();
      d.any();
      return 1;
    default:
      d.rest.stop(Code::unknown_content_ref, "content ref " + std::to_string(ref));
      return 0;
  }
}

template <bool kDefer, class D, class F>
void skim_loop(D& d, Ctx& cx, F& on);

template <class D, class F>
void skim_structs(D& d, Ctx& cx, F&& on, bool defer) {
  if (defer) {
    skim_loop<true>(d, cx, on);
    if (cx.st.ok()) d.skim_flush();
  } else {
    skim_loop<false>(d, cx, on);
  }
}

template <bool kDefer, class D, class F>
void skim_loop(D& d, Ctx& cx, F& on) {
  Status& st = cx.st;
  std::uint64_t clients_left = d.rest.vu(), structs_left = 0, client = 0, clock = 0;
  if (clients_left > d.rest.left() / 2) d.rest.stop(Code::length_out_of_range, "client count");
  for (;;) {
    while (structs_left == 0) {
      if (clients_left == 0 || !st.ok()) return;
      --clients_left;
      structs_left = d.rest.vu();
      client = kDefer ? d.skim_client() : d.client();
      clock = d.rest.vu();
      if (!st.ok()) return;
    }
    --structs_left;
    if (cx.budget == 0) return d.rest.stop(Code::too_many_structs);
    --cx.budget;
    std::uint8_t info = d.info();
    std::uint64_t len;
    bool skip = false;
    if (info == 10) {
      skip = true;
      len = d.rest.vu();
    } else if (info & 0x1f) {
      if (info & 0x80) kDefer ? d.skim_left_id() : (void)d.left_id();
      if (info & 0x40) kDefer ? d.skim_right_id() : (void)d.right_id();
      if ((info & 0xc0) == 0) {
        if (d.parent_info()) {
          d.skip_string();
        } else {
          kDefer ? d.skim_left_id() : (void)d.left_id();
        }
        if (info & 0x20) d.skip_string();
      }
      len = skim_content(d, cx, info & 0x1f);
    } else {
      len = d.len();
    }
    if (!st.ok()) return;
    if (len == 0)
      return st.fail(Code::zero_length_struct, "client " + std::to_string(client) + " clock " + std::to_string(clock));
    if (len > kMaxSafe - clock) return st.fail(Code::clock_overflow);
    on(client, clock, len, skip);
    clock += len;
  }
}

// ---- writing structs (Item.write / GC.write / Skip.write) -------------------------------------
Str owned_text(Ctx& cx, Out&& t) {
  std::size_t u16 = 0;
  utf8_scan(t.data(), t.size(), &u16);
  return cx.arena.keep(t.take(), u16, false);
}

ByteView skip_values(Ctx& cx, ByteView raw, std::uint64_t k) {
  Reader r(raw, &cx.st);
  for (std::uint64_t i = 0; i < k; ++i) skip_any(r);
  return ByteView(r.p, r.left());
}

template <class E>
void write_content(Ctx& cx, E& e, const Struct& s, std::uint64_t off) {
  const Content& c = s.c;
  switch (c.ref) {
    case kDeleted: e.len(s.len - off); return;
    case kJSON: {
      e.len(s.len - off);
      for (std::size_t i = c.json_off + off; i < c.json->size(); ++i) {
        const Str& x = (*c.json)[i];
        if (x.n == 9 && std::memcmp(x.p, "undefined", 9) == 0) {
          e.string(x);
        } else {
          Out t;
          json_canonical(x, t, cx.st);
          e.string(owned_text(cx, std::move(t)));
        }
      }
      return;
    }
    case kBinary: e.buf(c.raw); return;
    case kString: e.string(off == 0 ? c.str : str_slice_from(c.str, off, cx.arena)); return;
    case kEmbed: e.json(c.value); return;
    case kFormat:
      e.key(c.str);
      e.json(c.value);
      return;
    case kType:
      e.type_ref(c.type_ref);
      if (c.type_ref == 3 || c.type_ref == 5) e.key(c.str);
      return;
    case kAny:
      e.len(s.len - off);
      e.any(off == 0 ? c.raw : skip_values(cx, c.raw, off));
      return;
    case kDoc:
      e.string(c.str);
      e.any(c.raw);
      return;
    default: return;
  }
}

template <class E>
void write_struct(Ctx& cx, E& e, const Struct& s, std::uint64_t off) {
  switch (s.kind) {
    case Kind::gc:
      e.info(0);
      e.len(s.len - off);
      return;
    case Kind::skip:
      e.info(10);
      e.rest.vu(s.len - off);
      return;
    case Kind::item: {
      bool has_origin = off > 0 || s.has_origin;
      Id origin = off > 0 ? Id{s.client, s.clock + off - 1} : s.origin;
      std::uint8_t info = static_cast<std::uint8_t>((s.c.ref & 0x1f) | (has_origin ? 0x80 : 0) |
                                                    (s.has_right ? 0x40 : 0) | (s.has_sub ? 0x20 : 0));
      e.info(info);
      if (has_origin) e.left_id(origin);
      if (s.has_right) e.right_id(s.right);
      if (!has_origin && !s.has_right) {
        if (s.parent == 1) {
          e.parent_info(true);
          e.string(s.parent_key);
        } else if (s.parent == 2) {
          e.parent_info(false);
          e.left_id(s.parent_id);
        } else {
          cx.st.fail(Code::unencodable_value, "item without parent");
        }
        if (s.has_sub) e.string(s.parent_sub);
      }
      write_content(cx, e, s, off);
      return;
    }
  }
}

// LazyStructWriter: per-client fragments of the rest stream, prefixed with struct counts later.
template <class E>
struct LazyWriter {
  Ctx& cx;
  E& e;
  std::uint64_t cur_client = 0, written = 0, next_clock = 0;
  std::size_t frag_start = 0;
  struct Frag {
    std::uint64_t written;
    std::size_t start, end;
  };
  std::vector<Frag> frags;

  LazyWriter(Ctx& c, E& enc) : cx(c), e(enc) {}
  // A block's structs have consecutive clocks, so a struct that does not start where the last one
  // ended starts a new block. Only an input that lists a client twice gets here (yjs would merge
  // the two lists and shift the second one's clocks; found by fuzz_yjs: a conversion of such an
  // update then ran past 2^53-1).
  void write(const Struct& s, std::uint64_t off) {
    if (written > 0 && (cur_client != s.client || next_clock != s.clock + off)) flush();
    if (written == 0) {
      cur_client = s.client;
      e.write_client(s.client);
      e.rest.vu(s.clock + off);
    }
    write_struct(cx, e, s, off);
    next_clock = s.end();
    ++written;
  }
  void flush() {
    if (written > 0) {
      frags.push_back({written, frag_start, e.rest.size()});
      frag_start = e.rest.size();
      written = 0;
    }
  }
  void finish() {
    flush();
    Out r;
    r.reserve(e.rest.size() + 8 * frags.size() + 16);
    r.vu(frags.size());
    for (const Frag& f : frags) {
      r.vu(f.written);
      r.raw(e.rest.data() + f.start, f.end - f.start);
    }
    e.rest = std::move(r);
  }
};

// ---- delete sets -----------------------------------------------------------------------------
struct DsRange {
  std::uint64_t clock, len;
};
struct DsClient {
  std::uint64_t client;
  std::vector<DsRange> ranges;
};

template <class D>
void read_ds(D& d, Ctx& cx, std::vector<DsClient>& out) {
  std::uint64_t n = d.rest.vu();
  if (n > d.rest.left() / 2) return d.rest.stop(Code::length_out_of_range, "delete set client count");
  std::unordered_set<std::uint64_t> seen;
  std::uint64_t only = 0;
  for (std::uint64_t i = 0; i < n && cx.st.ok(); ++i) {
    d.reset_ds();
    std::uint64_t client = d.rest.vu();
    std::uint64_t k = d.rest.vu();
    if (!cx.st.ok()) return;
    if (k > d.rest.left() / 2) return d.rest.stop(Code::length_out_of_range, "delete set range count");
    bool dup = false;
    if (i == 0) {
      only = client;
    } else {
      if (i == 1) seen.insert(only);
      dup = !seen.insert(client).second;
    }
    if (dup) return cx.st.fail(Code::duplicate_client, "delete set client " + std::to_string(client));
    if (k == 0) continue;
    out.push_back(DsClient{client, {}});
    std::vector<DsRange>& r = out.back().ranges;
    r.reserve(static_cast<std::size_t>(k));
    std::uint64_t prev_end = 0;
    for (std::uint64_t j = 0; j < k && cx.st.ok(); ++j) {
      std::uint64_t clock = d.ds_clock();
      std::uint64_t len = d.ds_len();
      if (!cx.st.ok()) return;
      if (len == 0) return cx.st.fail(Code::invalid_delete_set, "empty range");
      if (len > kMaxSafe - clock) return cx.st.fail(Code::clock_overflow, "delete set");
      if (clock < prev_end) return cx.st.fail(Code::invalid_delete_set, "ranges not sorted");
      prev_end = clock + len;
      r.push_back({clock, len});
    }
  }
}

template <class E>
void write_ds(E& e, std::vector<DsClient>& ds) {
  std::sort(ds.begin(), ds.end(), [](const DsClient& a, const DsClient& b) { return a.client > b.client; });
  e.rest.vu(ds.size());
  for (const DsClient& c : ds) {
    e.reset_ds();
    e.rest.vu(c.client);
    e.rest.vu(c.ranges.size());
    for (const DsRange& r : c.ranges) {
      e.ds_clock(r.clock);
      e.ds_len(r.len);
    }
  }
}

// mergeDeleteSets + sortAndMergeDeleteSet
void merge_ds(std::vector<DsClient>& all, std::vector<DsClient>& out) {
  std::unordered_map<std::uint64_t, std::size_t> index;
  for (DsClient& c : all) {
    auto it = index.find(c.client);
    if (it == index.end()) {
      index.emplace(c.client, out.size());
      out.push_back(std::move(c));
    } else {
      auto& dst = out[it->second].ranges;
      dst.insert(dst.end(), c.ranges.begin(), c.ranges.end());
    }
  }
  for (DsClient& c : out) {
    auto& d = c.ranges;
    std::stable_sort(d.begin(), d.end(), [](const DsRange& a, const DsRange& b) { return a.clock < b.clock; });
    std::size_t j = 1;
    for (std::size_t i = 1; i < d.size(); ++i) {
      DsRange& left = d[j - 1];
      const DsRange& right = d[i];
      if (left.clock + left.len >= right.clock) {
        left.len = std::max(left.len, right.clock + right.len - left.clock);
      } else {
        d[j++] = right;
      }
    }
    if (!d.empty()) d.resize(j);
  }
}

// ---- operations ------------------------------------------------------------------------------
template <class D>
Result<UpdateInfo> validate_run(ByteView update, bool defer) {
  Ctx cx;
  cx.budget = struct_budget(update.size);
  D d(&cx);
  d.init(update);
  UpdateInfo info;
  if (cx.st.ok()) {
    std::uint64_t last_client = 0;
    bool any = false;
    skim_structs(d, cx, [&](std::uint64_t client, std::uint64_t, std::uint64_t, bool) {
      ++info.structs;
      if (!any || client != last_client) ++info.clients;
      any = true;
      last_client = client;
    }, defer);
  }
  std::vector<DsClient> ds;
  if (cx.st.ok()) read_ds(d, cx, ds);
  d.finish();
  if (!cx.st.ok()) return cx.st.to_error("update");
  for (const DsClient& c : ds) info.delete_ranges += c.ranges.size();
  info.empty = info.structs == 0 && info.delete_ranges == 0;
  return info;
}

// encodeStateVectorFromUpdate: per client, the end of the structs that follow each other from
// clock 0 (a Skip or a gap stops the count).
template <class D>
Result<Bytes> state_vector_run(ByteView update, bool defer) {
  Ctx cx;
  cx.budget = struct_budget(update.size);
  D d(&cx);
  d.init(update);
  Out sv;
  std::uint64_t size = 0;
  bool first = true, stop_counting = false;
  std::uint64_t cur_client = 0, cur_clock = 0;
  if (cx.st.ok()) {
    skim_structs(d, cx, [&](std::uint64_t client, std::uint64_t clock, std::uint64_t len, bool skip) {
      if (first) {
        first = false;
        cur_client = client;
        stop_counting = clock != 0;
        cur_clock = stop_counting ? 0 : clock + len;
      } else if (cur_client != client) {
        if (cur_clock != 0) {
          ++size;
          sv.vu(cur_client);
          sv.vu(cur_clock);
        }
        cur_client = client;
        cur_clock = 0;
        stop_counting = clock != 0;
      }
      if (skip) stop_counting = true;
      if (!stop_counting) cur_clock = clock + len;
    }, defer);
    if (!first && cur_clock != 0) {
      ++size;
      sv.vu(cur_client);
      sv.vu(cur_clock);
    }
  }
  std::vector<DsClient> ds;
  if (cx.st.ok()) read_ds(d, cx, ds);
  d.finish();
  if (!cx.st.ok()) return cx.st.to_error("update");
  Out o;
  o.vu(size);
  o.raw(sv.data(), sv.size());
  return o.take();
}

// parseUpdateMeta: per client, the first struct's clock and the end of the last one (Skips count).
template <class D>
Result<UpdateMeta> meta_run(ByteView update, bool defer) {
  Ctx cx;
  cx.budget = struct_budget(update.size);
  D d(&cx);
  d.init(update);
  UpdateMeta meta;
  if (cx.st.ok()) {
    skim_structs(d, cx, [&](std::uint64_t client, std::uint64_t clock, std::uint64_t len, bool) {
      if (meta.empty() || meta.back().client != client) meta.push_back({client, clock, clock + len});
      meta.back().to = clock + len;
    }, defer);
  }
  std::vector<DsClient> ds;
  if (cx.st.ok()) read_ds(d, cx, ds);
  d.finish();
  if (!cx.st.ok()) return cx.st.to_error("update");
  return meta;
}

// A deferred skim reads the same values as the exact one, so both fail or neither does; on
// failure the exact reader runs again to report the same first error as every other operation.
template <class D>
Result<UpdateInfo> validate_impl(ByteView update) {
  auto r = validate_run<D>(update, D::kSkimDefers);
  if (!r && D::kSkimDefers) return validate_run<D>(update, false);
  return r;
}
template <class D>
Result<Bytes> state_vector_impl(ByteView update) {
  auto r = state_vector_run<D>(update, D::kSkimDefers);
  if (!r && D::kSkimDefers) return state_vector_run<D>(update, false);
  return r;
}

Result<std::unordered_map<std::uint64_t, std::uint64_t>> sv_map(ByteView bytes) {
  auto sv = decode_state_vector(bytes);
  if (!sv) return sv.error();
  std::unordered_map<std::uint64_t, std::uint64_t> m;
  m.reserve(sv.value().size());
  for (auto& [c, k] : sv.value()) m[c] = k;
  return m;
}


// The end of a diff or a conversion: flush the struct writer, then carry the delete set over.
template <class D, class E, class W>
Result<Bytes> finish_copy(Ctx& cx, D& d, E& e, W& w) {
  w.finish();
  std::vector<DsClient> ds;
  if (cx.st.ok()) read_ds(d, cx, ds);
  d.finish();
  if (cx.st.ok()) write_ds(e, ds);
  if (!cx.st.ok()) return cx.st.to_error("update");
  Bytes out = e.finish();
  if (!cx.st.ok()) return cx.st.to_error("update");
  return out;
}

template <class D, class E>
Result<Bytes> diff_impl(ByteView update, ByteView sv_bytes) {
  auto state = sv_map(sv_bytes);
  if (!state) return state.error();
  Ctx cx;
  cx.budget = struct_budget(update.size);
  D d(&cx);
  d.init(update);
  E e(&cx);
  LazyWriter<E> w(cx, e);
  if (cx.st.ok()) {
    StructReader<D> r(d, cx, false);
    const auto& sv = state.value();
    while (r.has && cx.st.ok()) {
      std::uint64_t cur_client = r.cur.client;
      auto it = sv.find(cur_client);
      std::uint64_t sv_clock = it == sv.end() ? 0 : it->second;
      if (r.cur.kind == Kind::skip) {
        r.next();
        continue;
      }
      if (r.cur.end() > sv_clock) {
        w.write(r.cur, sv_clock > r.cur.clock ? sv_clock - r.cur.clock : 0);
        r.next();
        while (r.has && r.cur.client == cur_client) {
          w.write(r.cur, 0);
          r.next();
        }
      } else {
        while (r.has && r.cur.client == cur_client && r.cur.end() <= sv_clock) r.next();
      }
    }
  }
  return finish_copy(cx, d, e, w);
}

template <class D, class E>
Result<Bytes> convert_impl(ByteView update) {
  Ctx cx;
  cx.budget = struct_budget(update.size);
  D d(&cx);
  d.init(update);
  E e(&cx);
  LazyWriter<E> w(cx, e);
  if (cx.st.ok()) {
    StructReader<D> r(d, cx, false);
    for (; r.has && cx.st.ok(); r.next()) w.write(r.cur, 0);
  }
  return finish_copy(cx, d, e, w);
}

// sliceStruct: the right part of `s` from `diff` on (content.splice semantics).
Struct slice_struct(Ctx& cx, const Struct& s, std::uint64_t diff) {
  Struct r = s;
  r.clock = s.clock + diff;
  r.len = s.len - diff;
  if (s.kind != Kind::item) return r;
  r.has_origin = true;
  r.origin = Id{s.client, s.clock + diff - 1};
  Content& c = r.c;
  switch (c.ref) {
    case kDeleted: break;
    case kJSON: c.json_off += diff; break;
    case kString: {
      c.str = str_splice_right(s.c.str, diff, cx.arena);
      r.len = c.str.u16;
      break;
    }
    case kAny: c.raw = skip_values(cx, s.c.raw, diff); break;
    default: cx.st.fail(Code::unencodable_value, "content cannot be split"); break;
  }
  return r;
}

// mergeUpdatesV2. yjs re-sorts all decoders after every step (stable sort by client descending,
// clock ascending); only the first decoder ever advances, and a stable sort puts it in front of
// every decoder with an equal key. A heap keyed by (client desc, clock asc, seq) with a fresh,
// smaller seq on every advance yields the same order in O(log n) per step instead of
// O(n log n) (yjs issue 710). GC-vs-Item ties, where yjs's comparator is inconsistent and the
// result depends on the JS engine's sort, are treated as equal keys.
template <class D, class E>
Result<Bytes> merge_impl(const std::vector<ByteView>& updates) {
  Ctx cx;
  std::size_t total = 0;
  for (const ByteView& u : updates) total += u.size;
  cx.budget = struct_budget(total);
  std::deque<D> decs;
  for (const ByteView& u : updates) {
    decs.emplace_back(&cx);
    decs.back().init(u);
    if (!cx.st.ok()) return cx.st.to_error("update");
  }
  std::deque<StructReader<D>> readers;
  for (D& d : decs) {
    readers.emplace_back(d, cx, true);
    if (!cx.st.ok()) return cx.st.to_error("update");
  }

  struct Entry {
    std::uint64_t client, clock;
    std::int64_t seq;
    std::size_t idx;
  };
  // std heap functions keep the "largest" on top: invert the order.
  auto after = [](const Entry& a, const Entry& b) {
    if (a.client != b.client) return a.client < b.client;
    if (a.clock != b.clock) return a.clock > b.clock;
    return a.seq > b.seq;
  };
  std::vector<Entry> heap;
  heap.reserve(readers.size());
  for (std::size_t i = 0; i < readers.size(); ++i) {
    if (readers[i].has) heap.push_back({readers[i].cur.client, readers[i].cur.clock, static_cast<std::int64_t>(i), i});
  }
  std::make_heap(heap.begin(), heap.end(), after);
  std::int64_t seq = -1;

  E e(&cx);
  LazyWriter<E> w(cx, e);
  bool have_write = false;
  Struct cw;

  while (!heap.empty() && cx.st.ok()) {
    std::size_t idx = heap.front().idx;
    StructReader<D>& dec = readers[idx];
    std::uint64_t first_client = dec.cur.client;
    bool advanced = false;
    bool skip_rest = false;

    if (have_write) {
      bool iterated = false;
      while (dec.has && dec.cur.end() <= cw.end() && dec.cur.client >= cw.client) {
        dec.next();
        iterated = advanced = true;
      }
      if (!dec.has || dec.cur.client != first_client || (iterated && dec.cur.clock > cw.end())) {
        skip_rest = true;
      } else if (first_client != cw.client) {
        w.write(cw, 0);
        cw = std::move(dec.cur);
        dec.next();
        advanced = true;
      } else if (cw.end() < dec.cur.clock) {
        if (cw.kind == Kind::skip) {
          cw.len = dec.cur.end() - cw.clock;
        } else {
          w.write(cw, 0);
          std::uint64_t gap = dec.cur.clock - cw.end();
          Struct sk;
          sk.kind = Kind::skip;
          sk.client = first_client;
          sk.clock = cw.end();
          sk.len = gap;
          cw = std::move(sk);
        }
      } else {
        std::uint64_t diff = cw.end() - dec.cur.clock;
        Struct c;
        if (diff > 0) {
          if (cw.kind == Kind::skip) {
            cw.len -= diff;
            c = dec.cur;
          } else {
            c = slice_struct(cx, dec.cur, diff);
          }
        } else {
          c = dec.cur;
        }
        bool merged = false;
        if (cw.kind == c.kind && cw.kind != Kind::item) {  // GC.mergeWith / Skip.mergeWith
          cw.len += c.len;
          merged = true;
        }
        if (!merged) {
          w.write(cw, 0);
          cw = std::move(c);
          dec.next();
          advanced = true;
        }
      }
    } else {
      cw = std::move(dec.cur);
      have_write = true;
      dec.next();
      advanced = true;
    }
    if (!skip_rest) {
      for (; dec.has && dec.cur.client == first_client && dec.cur.clock == cw.end() &&
             dec.cur.kind != Kind::skip;
           dec.next()) {
        w.write(cw, 0);
        cw = std::move(dec.cur);
        advanced = true;
      }
    }
    if (advanced) {
      std::pop_heap(heap.begin(), heap.end(), after);
      if (dec.has) {
        heap.back() = Entry{dec.cur.client, dec.cur.clock, seq--, idx};
        std::push_heap(heap.begin(), heap.end(), after);
      } else {
        heap.pop_back();
      }
    }
  }
  if (!cx.st.ok()) return cx.st.to_error("update");
  if (have_write) w.write(cw, 0);
  w.finish();

  std::vector<DsClient> all;
  for (D& d : decs) {
    read_ds(d, cx, all);
    d.finish();
    if (!cx.st.ok()) return cx.st.to_error("update");
  }
  std::vector<DsClient> merged;
  merge_ds(all, merged);
  write_ds(e, merged);
  if (!cx.st.ok()) return cx.st.to_error("update");
  Bytes out = e.finish();
  if (!cx.st.ok()) return cx.st.to_error("update");
  return out;
}

}  // namespace
}  // namespace detail

using namespace detail;

Bytes empty_update_v1() { return Bytes{0, 0}; }
Bytes empty_update_v2() { return Bytes{0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}; }

Result<StateVector> decode_state_vector(ByteView bytes) {
  Status st;
  Reader r(bytes, &st);
  std::uint64_t n = r.vu();
  if (st.ok() && n > r.left() / 2) r.stop(Code::length_out_of_range, "state vector size");
  StateVector sv;
  if (st.ok()) sv.reserve(static_cast<std::size_t>(n));
  std::unordered_set<std::uint64_t> seen;
  for (std::uint64_t i = 0; i < n && st.ok(); ++i) {
    std::uint64_t client = r.vu();
    std::uint64_t clock = r.vu();
    if (!st.ok()) break;
    if (!seen.insert(client).second) st.fail(Code::duplicate_client, "client " + std::to_string(client));
    sv.emplace_back(client, clock);
  }
  if (st.ok() && !r.empty()) st.fail(Code::trailing_bytes, std::to_string(r.left()) + " bytes");
  if (!st.ok()) {
    Error err = st.to_error("state vector");
    return err;
  }
  return sv;
}

Bytes encode_state_vector(const StateVector& sv) {
  Out o;
  o.vu(sv.size());
  for (auto& [c, k] : sv) {
    o.vu(c);
    o.vu(k);
  }
  return o.take();
}

Result<Bytes> merge_updates_v2(const std::vector<ByteView>& updates) {
  if (updates.empty()) return empty_update_v2();
  if (updates.size() == 1) return updates[0].to_bytes();
  return merge_impl<DecV2, EncV2>(updates);
}
Result<Bytes> merge_updates_v1(const std::vector<ByteView>& updates) {
  if (updates.empty()) return empty_update_v1();
  if (updates.size() == 1) return updates[0].to_bytes();
  return merge_impl<DecV1, EncV1>(updates);
}
Result<Bytes> diff_update_v2(ByteView update, ByteView sv) { return diff_impl<DecV2, EncV2>(update, sv); }
Result<Bytes> diff_update_v1(ByteView update, ByteView sv) { return diff_impl<DecV1, EncV1>(update, sv); }
Result<Bytes> encode_state_vector_from_update_v2(ByteView u) { return state_vector_impl<DecV2>(u); }
Result<Bytes> encode_state_vector_from_update_v1(ByteView u) { return state_vector_impl<DecV1>(u); }
Result<UpdateInfo> validate_update_v2(ByteView u) { return validate_impl<DecV2>(u); }
Result<UpdateMeta> parse_update_meta_v2(ByteView u) {
  auto r = meta_run<DecV2>(u, DecV2::kSkimDefers);
  if (!r && DecV2::kSkimDefers) return meta_run<DecV2>(u, false);
  return r;
}
Result<UpdateInfo> validate_update_v1(ByteView u) { return validate_impl<DecV1>(u); }
Result<Bytes> convert_update_format_v1_to_v2(ByteView u) { return convert_impl<DecV1, EncV2>(u); }
Result<Bytes> convert_update_format_v2_to_v1(ByteView u) { return convert_impl<DecV2, EncV1>(u); }

}  // namespace tp::yjs
