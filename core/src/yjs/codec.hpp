// Y.js update structs and the V1 / V2 update decoders and encoders (private).
//
// Layout facts (yjs 13.6, UpdateEncoder.js / UpdateDecoder.js / structs/*.js):
//  V1: everything goes through one lib0 stream ("rest").
//  V2: varUint feature flag (0), then nine varUint8Array columns: keyClock (IntDiffOptRle),
//      client (UintOptRle), leftClock (IntDiffOptRle), rightClock (IntDiffOptRle), info (Rle u8),
//      string (StringEncoder), parentInfo (Rle u8), typeRef (UintOptRle), len (UintOptRle);
//      then the rest stream, unprefixed, to the end.
//  Both: rest holds #clients, per client #structs, [client], first clock, Skip lengths,
//      any/buffer payloads, and the delete set.
#pragma once
#include <vector>

#include "yjs/internal.hpp"

namespace tp::yjs::detail {

enum class Kind : std::uint8_t { gc, skip, item };

struct Id {
  std::uint64_t client = 0;
  std::uint64_t clock = 0;
};

// An embed or format value: JSON text in V1, a lib0 any in V2.
struct Value {
  bool json = false;
  Str text;
  ByteView any;
};

// Content refs (Item info & 31).
enum : std::uint8_t {
  kDeleted = 1, kJSON = 2, kBinary = 3, kString = 4, kEmbed = 5,
  kFormat = 6, kType = 7, kAny = 8, kDoc = 9,
};

struct Content {
  std::uint8_t ref = 0;
  std::uint8_t type_ref = 0;               // kType
  Str str;                                 // kString text, kFormat key, kType name, kDoc guid
  ByteView raw;                            // kBinary bytes, kAny values, kDoc opts
  Value value;                             // kEmbed, kFormat
  const std::vector<Str>* json = nullptr;  // kJSON entries (owned by the arena)
  std::size_t json_off = 0;
};

struct Struct {
  Kind kind = Kind::gc;
  bool has_origin = false, has_right = false, has_sub = false;
  std::uint8_t parent = 0;  // 0 none (copied from origin), 1 root key, 2 parent item id
  std::uint64_t client = 0, clock = 0, len = 0;
  Id origin, right, parent_id;
  Str parent_key, parent_sub;
  Content c;
  std::uint64_t end() const { return clock + len; }
};

struct Ctx {
  Status st;
  Arena arena;
  std::deque<std::vector<Str>> lists;
  std::uint64_t budget = 0;  // structs left before "too_many_structs"
};

// ---- V2 column decoders ----------------------------------------------------------------------
struct UintOptRleDec {
  Reader r;
  std::uint64_t s = 0, count = 0;
  std::uint64_t read() {
    if (count == 0) refill();
    if (count > 0) --count;
    return s;
  }
  void refill() {
    if (r.empty()) {
      r.stop(Code::column_exhausted);
      s = 0;
      return;
    }
    bool neg;
    s = r.vi(neg);
    count = neg ? r.vu() + 2 : 1;
  }
  // Consumes k values without returning them (stops at the first error).
  void skip(std::uint64_t k) {
    while (k > 0) {
      if (count == 0) {
        refill();
        if (count == 0) return;
      }
      std::uint64_t take = k < count ? k : count;
      count -= take;
      k -= take;
    }
  }
  bool done() const { return count == 0 && r.empty(); }
};

struct IntDiffOptRleDec {
  Reader r;
  std::int64_t s = 0, diff = 0;
  std::uint64_t count = 0;
  std::uint64_t read() {
    if (count == 0) refill();
    if (count > 0) --count;
    s += diff;
    if (static_cast<std::uint64_t>(s) > kMaxSafe) return bad();  // also catches s < 0
    return static_cast<std::uint64_t>(s);
  }
  void refill() {
    if (r.empty()) {
      r.stop(Code::column_exhausted);
      diff = -s;  // reads return 0 from here on
      return;
    }
    bool neg;
    std::uint64_t m = r.vi(neg);
    // floor(v / 2) of the signed value v = (neg ? -m : m); bit 0 says whether a run length follows
    diff = neg ? -static_cast<std::int64_t>((m + 1) >> 1) : static_cast<std::int64_t>(m >> 1);
    count = (m & 1) ? r.vu() + 2 : 1;
  }
  // Consumes k values without returning them, with the same range check on each (a run is
  // monotonic: its last value is in range iff all are); stops at the first error.
  void skip(std::uint64_t k) {
    while (k > 0) {
      if (count == 0) {
        refill();
        if (count == 0) return;
      }
      std::uint64_t take = k < count ? k : count;
      if (take == 1) {
        s += diff;
      } else {
        std::uint64_t mag = diff < 0 ? 0 - static_cast<std::uint64_t>(diff) : static_cast<std::uint64_t>(diff);
        if (mag != 0 && take > kMaxSafe / mag) {  // |take * diff| > 2^53: out of range
          bad();
          return;
        }
        s += static_cast<std::int64_t>(take) * diff;
      }
      if (static_cast<std::uint64_t>(s) > kMaxSafe) {
        bad();
        return;
      }
      count -= take;
      k -= take;
    }
  }
  std::uint64_t bad() {
    r.stop(Code::integer_out_of_range, "column value");
    s = 0;
    diff = 0;
    count = 0;
    return 0;
  }
  bool done() const { return count == 0 && r.empty(); }
};

struct RleU8Dec {
  Reader r;
  std::uint8_t s = 0;
  std::int64_t count = 0;  // -1: the last run repeats forever
  std::uint8_t read() {
    if (count == 0) {
      if (r.empty()) {
        r.stop(Code::column_exhausted);
        return 0;
      }
      s = r.u8();
      count = r.empty() ? -1 : static_cast<std::int64_t>(r.vu()) + 1;
    }
    if (count > 0) --count;
    return s;
  }
  bool done() const { return count <= 0 && r.empty(); }
};

struct StringDec {
  const std::uint8_t* p = nullptr;
  std::size_t n = 0, total = 0, used = 0;
  bool ascii = true;
  U16Cursor cur;
  UintOptRleDec lens;
  void init(ByteView col, Status* st) {
    lens.r = Reader(ByteView{}, st);
    Reader r(col, st);
    ByteView s = r.vbytes();
    if (!st->ok()) return;
    if (!utf8_scan(s.data, s.size, &total, &ascii)) return st->fail(Code::invalid_utf8, "string column");
    p = s.data;
    n = s.size;
    lens.r = r;
  }
  std::size_t pending = 0;  // UTF-16 units skipped but not yet walked over (non-ASCII text)
  // Consumes the next string without looking at it (the column was validated by init); returns
  // its UTF-16 length.
  std::uint64_t skip() {
    std::uint64_t k = lens.read();
    if (k > total - used) {
      lens.r.stop(Code::length_out_of_range, "string column");
      return 0;
    }
    used += k;
    if (ascii) cur.byte += k; else pending += k;
    return k;
  }
  Str read(Arena& arena) {
    std::uint64_t k = lens.read();
    if (k > total - used) {
      lens.r.stop(Code::length_out_of_range, "string column");
      return {};
    }
    used += k;
    if (pending) {
      u16_advance(p, n, cur, pending);
      pending = 0;
    }
    if (ascii) {
      Str s{p + cur.byte, static_cast<std::size_t>(k), static_cast<std::size_t>(k), false};
      cur.byte += k;
      return s;
    }
    U16Cursor a = cur;
    u16_advance(p, n, cur, k);
    return u16_substr(p, a, cur, k, arena);
  }
  bool done() const { return used == total && lens.done(); }
};

// ---- decoders --------------------------------------------------------------------------------
struct DecV1 {
  Ctx* cx;
  Reader rest;
  explicit DecV1(Ctx* c) : cx(c) {}
  void init(ByteView b) { rest = Reader(b, &cx->st); }
  std::uint64_t client() { return rest.vu(); }
  std::uint8_t info() { return rest.u8(); }
  Id left_id() {
    Id i;
    i.client = rest.vu();
    i.clock = rest.vu();
    return i;
  }
  Id right_id() { return left_id(); }
  bool parent_info() {
    std::uint64_t v = rest.vu();
    if (v > 1) rest.stop(Code::invalid_parent_info);
    return v == 1;
  }
  Str string() {
    ByteView b = rest.vbytes();
    Str s{b.data, b.size, 0, false};
    if (!utf8_scan(b.data, b.size, &s.u16)) rest.stop(Code::invalid_utf8);
    return s;
  }
  std::uint64_t type_ref() { return rest.vu(); }
  std::uint64_t len() { return rest.vu(); }
  ByteView any() {
    const std::uint8_t* s = rest.p;
    skip_any(rest);
    return {s, static_cast<std::size_t>(rest.p - s)};
  }
  ByteView buf() { return rest.vbytes(); }
  Value json() {
    Value v;
    v.json = true;
    v.text = string();
    if (cx->st.ok() && !json_valid(v.text)) rest.stop(Code::invalid_json);
    return v;
  }
  Str key() { return string(); }
  // Skimming (state vectors, validation): the same reads and checks, nothing kept.
  std::uint64_t skip_string() { return string().u16; }
  void skip_key() { string(); }
  void skip_json() { json(); }
  std::uint64_t skim_client() { return client(); }
  void skim_left_id() { left_id(); }
  void skim_right_id() { left_id(); }
  void skim_flush() {}
  static constexpr bool kSkimDefers = false;
  void reset_ds() {}
  std::uint64_t ds_clock() { return rest.vu(); }
  std::uint64_t ds_len() { return rest.vu(); }
  void finish() {
    if (!rest.empty()) cx->st.fail(Code::trailing_bytes, std::to_string(rest.left()) + " bytes");
  }
};

struct DecV2 {
  Ctx* cx;
  Reader rest;
  IntDiffOptRleDec key_clock, left_clock, right_clock;
  UintOptRleDec client_col, type_ref_col, len_col;
  RleU8Dec info_col, parent_info_col;
  StringDec strings;
  std::vector<Str> keys;
  std::uint64_t ds_cur = 0;

  explicit DecV2(Ctx* c) : cx(c) {}
  void init(ByteView b) {
    Status* st = &cx->st;
    Reader h(b, st);
    std::uint64_t flag = h.vu();
    if (st->ok() && flag != 0) st->fail(Code::unsupported_feature_flag, std::to_string(flag));
    key_clock.r = Reader(h.vbytes(), st);
    client_col.r = Reader(h.vbytes(), st);
    left_clock.r = Reader(h.vbytes(), st);
    right_clock.r = Reader(h.vbytes(), st);
    info_col.r = Reader(h.vbytes(), st);
    ByteView str_col = h.vbytes();
    parent_info_col.r = Reader(h.vbytes(), st);
    type_ref_col.r = Reader(h.vbytes(), st);
    len_col.r = Reader(h.vbytes(), st);
    if (!st->ok()) {
      rest = Reader(ByteView{}, st);
      return;
    }
    strings.init(str_col, st);
    rest = h;
  }
  std::uint64_t client() { return client_col.read(); }
  std::uint8_t info() { return info_col.read(); }
  Id left_id() {
    Id i;
    i.client = client_col.read();
    i.clock = left_clock.read();
    return i;
  }
  Id right_id() {
    Id i;
    i.client = client_col.read();
    i.clock = right_clock.read();
    return i;
  }
  bool parent_info() {
    std::uint8_t v = parent_info_col.read();
    if (v > 1) parent_info_col.r.stop(Code::invalid_parent_info);
    return v == 1;
  }
  Str string() { return strings.read(cx->arena); }
  std::uint64_t type_ref() { return type_ref_col.read(); }
  std::uint64_t len() { return len_col.read(); }
  ByteView any() {
    const std::uint8_t* s = rest.p;
    skip_any(rest);
    return {s, static_cast<std::size_t>(rest.p - s)};
  }
  ByteView buf() { return rest.vbytes(); }
  Value json() {
    Value v;
    v.any = any();
    return v;
  }
  Str key() {
    std::uint64_t k = key_clock.read();
    if (k < keys.size()) return keys[static_cast<std::size_t>(k)];
    Str s = string();
    keys.push_back(s);
    return s;
  }
  // Skimming (state vectors, validation): the same reads and checks, nothing kept.
  std::uint64_t skip_string() { return strings.skip(); }
  void skip_key() {
    std::uint64_t k = key_clock.read();
    if (k < keys.size() + skipped_keys) return;
    strings.skip();
    ++skipped_keys;
  }
  void skip_json() { skip_any(rest); }
  std::size_t skipped_keys = 0;
  // Ids are only counted while skimming and their column values consumed in bulk (skim_flush,
  // and before every block's client): the same values are read and range-checked, but an error
  // may surface at another struct than with the exact reader (callers then re-run exactly).
  std::uint64_t defer_client = 0, defer_left = 0, defer_right = 0;
  static constexpr bool kSkimDefers = true;
  std::uint64_t skim_client() {
    client_col.skip(defer_client);
    defer_client = 0;
    return client_col.read();
  }
  void skim_left_id() { ++defer_client, ++defer_left; }
  void skim_right_id() { ++defer_client, ++defer_right; }
  void skim_flush() {
    client_col.skip(defer_client);
    left_clock.skip(defer_left);
    right_clock.skip(defer_right);
    defer_client = defer_left = defer_right = 0;
  }
  void reset_ds() { ds_cur = 0; }
  std::uint64_t ds_clock() {
    ds_cur += rest.vu();
    if (ds_cur > kMaxSafe) rest.stop(Code::clock_overflow, "delete set");
    return ds_cur;
  }
  std::uint64_t ds_len() {
    std::uint64_t d = rest.vu() + 1;
    ds_cur += d;
    if (ds_cur > kMaxSafe) rest.stop(Code::clock_overflow, "delete set");
    return d;
  }
  void finish() {
    Status& st = cx->st;
    if (!st.ok()) return;
    if (!rest.empty()) return st.fail(Code::trailing_bytes, std::to_string(rest.left()) + " bytes");
    const char* bad = !key_clock.done() ? "keyClock" : !client_col.done() ? "client"
                    : !left_clock.done() ? "leftClock" : !right_clock.done() ? "rightClock"
                    : !info_col.done() ? "info" : !strings.done() ? "string"
                    : !parent_info_col.done() ? "parentInfo" : !type_ref_col.done() ? "typeRef"
                    : !len_col.done() ? "len" : nullptr;
    if (bad) st.fail(Code::column_trailing_data, std::string(bad) + " column");
  }
};

// ---- V2 column encoders ----------------------------------------------------------------------
struct UintOptRleEnc {
  Out o;
  std::uint64_t s = 0, count = 0;
  TP_YJS_INLINE void write(std::uint64_t v) {
    if (s == v) {
      ++count;
    } else {
      flush();
      count = 1;
      s = v;
    }
  }
  void flush() {
    if (count > 0) {
      o.vi(s, count > 1);  // a negative value (even -0) announces a run length
      if (count > 1) o.vu(count - 2);
    }
  }
  Out& finish() {
    flush();
    count = 0;
    return o;
  }
};

struct IntDiffOptRleEnc {
  Out o;
  std::int64_t s = 0, diff = 0;
  std::uint64_t count = 0;
  TP_YJS_INLINE void write(std::uint64_t uv) {
    auto v = static_cast<std::int64_t>(uv);
    if (diff == v - s) {
      s = v;
      ++count;
    } else {
      flush();
      count = 1;
      diff = v - s;
      s = v;
    }
  }
  bool overflow = false;  // |2 * diff| beyond 2^53: yjs would write a value no decoder reads
  void flush() {
    if (count > 0) {
      std::int64_t enc = diff * 2 + (count == 1 ? 0 : 1);
      if (enc > static_cast<std::int64_t>(kMaxSafe) || enc < -static_cast<std::int64_t>(kMaxSafe)) overflow = true;
      o.vi_signed(enc);
      if (count > 1) o.vu(count - 2);
    }
  }
  Out& finish() {
    flush();
    count = 0;
    return o;
  }
};

struct RleU8Enc {
  Out o;
  bool has = false;
  std::uint8_t s = 0;
  std::uint64_t count = 0;
  TP_YJS_INLINE void write(std::uint8_t v) {
    if (has && s == v) {
      ++count;
    } else {
      if (count > 0) o.vu(count - 1);
      count = 1;
      o.u8(v);
      s = v;
      has = true;
    }
  }
};

struct StringEnc {
  Out text;
  bool wtf = false;
  UintOptRleEnc lens;
  void write(const Str& s) {
    text.raw(s.p, s.n);
    wtf = wtf || s.wtf;
    lens.write(s.u16);
  }
  void finish(Out& o) {
    if (wtf) {
      Out t;
      append_utf8(t, text.data(), text.size());
      o.vu(t.size());
      o.raw(t.data(), t.size());
    } else {
      o.vu(text.size());
      o.raw(text.data(), text.size());
    }
    Out& l = lens.finish();
    o.raw(l.data(), l.size());
  }
};

// ---- encoders --------------------------------------------------------------------------------
struct EncV1 {
  Ctx* cx;
  Out rest;
  explicit EncV1(Ctx* c) : cx(c) {}
  void write_client(std::uint64_t c) { rest.vu(c); }
  void info(std::uint8_t i) { rest.u8(i); }
  void left_id(const Id& id) {
    rest.vu(id.client);
    rest.vu(id.clock);
  }
  void right_id(const Id& id) { left_id(id); }
  void parent_info(bool key) { rest.u8(key ? 1 : 0); }
  void string(const Str& s) {
    if (s.wtf) {
      Out t;
      append_utf8(t, s.p, s.n);
      rest.vu(t.size());
      rest.raw(t.data(), t.size());
    } else {
      rest.vu(s.n);
      rest.raw(s.p, s.n);
    }
  }
  void type_ref(std::uint64_t v) { rest.vu(v); }
  void len(std::uint64_t v) { rest.vu(v); }
  void any(ByteView raw) { rest.raw(raw); }
  void buf(ByteView b) {
    rest.vu(b.size);
    rest.raw(b);
  }
  void json(const Value& v) {
    Out t;
    if (v.json) {
      json_canonical(v.text, t, cx->st);
    } else {
      Reader r(v.any, &cx->st);
      any_to_json(r, t, cx->st);
    }
    rest.vu(t.size());
    rest.raw(t.data(), t.size());
  }
  void key(const Str& k) { string(k); }
  void reset_ds() {}
  void ds_clock(std::uint64_t c) { rest.vu(c); }
  void ds_len(std::uint64_t l) { rest.vu(l); }
  Bytes finish() { return rest.take(); }
};

struct EncV2 {
  Ctx* cx;
  Out rest;
  IntDiffOptRleEnc key_clock, left_clock, right_clock;
  UintOptRleEnc client_col, type_ref_col, len_col;
  RleU8Enc info_col, parent_info_col;
  StringEnc strings;
  std::uint64_t key_counter = 0, ds_cur = 0;

  explicit EncV2(Ctx* c) : cx(c) {}
  void write_client(std::uint64_t c) { client_col.write(c); }
  void info(std::uint8_t i) { info_col.write(i); }
  TP_YJS_INLINE void left_id(const Id& id) {
    client_col.write(id.client);
    left_clock.write(id.clock);
  }
  TP_YJS_INLINE void right_id(const Id& id) {
    client_col.write(id.client);
    right_clock.write(id.clock);
  }
  void parent_info(bool key) { parent_info_col.write(key ? 1 : 0); }
  void string(const Str& s) { strings.write(s); }
  void type_ref(std::uint64_t v) { type_ref_col.write(v); }
  void len(std::uint64_t v) { len_col.write(v); }
  void any(ByteView raw) { rest.raw(raw); }
  void buf(ByteView b) {
    rest.vu(b.size);
    rest.raw(b);
  }
  void json(const Value& v) {
    if (v.json) json_to_any(v.text, rest, cx->st); else rest.raw(v.any);
  }
  // yjs never fills its key cache (see UpdateEncoderV2.writeKey): every key is new.
  void key(const Str& k) {
    key_clock.write(key_counter++);
    strings.write(k);
  }
  void reset_ds() { ds_cur = 0; }
  void ds_clock(std::uint64_t c) {
    if (c < ds_cur) cx->st.fail(Code::invalid_delete_set, "unsorted ranges cannot be written as V2");
    rest.vu(c - ds_cur);
    ds_cur = c;
  }
  void ds_len(std::uint64_t l) {
    if (l == 0) cx->st.fail(Code::invalid_delete_set, "empty range cannot be written as V2");
    rest.vu(l - 1);
    ds_cur += l;
  }
  static void col(Out& o, const Out& c) {
    o.vu(c.size());
    o.raw(c.data(), c.size());
  }
  Bytes finish() {
    Out s;
    strings.finish(s);
    Out* cols[9] = {&key_clock.finish(), &client_col.finish(), &left_clock.finish(),
                    &right_clock.finish(), &info_col.o, &s, &parent_info_col.o,
                    &type_ref_col.finish(), &len_col.finish()};
    std::size_t total = 1 + rest.size();
    for (const Out* c : cols) total += c->size() + 10;
    // written straight into the result (one copy of each column)
    Bytes out(total);
    std::uint8_t* q = out.data();
    *q++ = 0;
    auto put = [&q](const std::uint8_t* p, std::size_t n) {
      if (n) std::memcpy(q, p, n);
      q += n;
    };
    for (const Out* c : cols) {
      std::uint64_t v = c->size();
      while (v > 0x7f) {
        *q++ = static_cast<std::uint8_t>(0x80 | (v & 0x7f));
        v >>= 7;
      }
      *q++ = static_cast<std::uint8_t>(v);
      put(c->data(), c->size());
    }
    put(rest.data(), rest.size());
    out.resize(static_cast<std::size_t>(q - out.data()));
    if (key_clock.overflow || left_clock.overflow || right_clock.overflow)
      cx->st.fail(Code::unencodable_value, "clock difference too large for a V2 column");
    return out;
  }
};

}  // namespace tp::yjs::detail
