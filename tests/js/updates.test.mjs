// teleportal/updates through wasm: sync.json vectors, differential tests against the real yjs
// package on seeded random edit histories, and mutation tests.
//
// UPDATES_SEED=<n>   base seed (default 1); UPDATES_CASES=<n> number of random histories
// (default 1500). A failing history prints its seed; rerun with UPDATES_SEED=<seed> UPDATES_CASES=1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as Y from "yjs";
import * as U from "teleportal/updates";

const vectors = JSON.parse(readFileSync(new URL("../vectors/sync.json", import.meta.url), "utf8"));
const hex = (s) => new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
const toHex = (b) => Buffer.from(b).toString("hex");
const BASE_SEED = Number(process.env.UPDATES_SEED ?? 1);
const CASES = Number(process.env.UPDATES_CASES ?? 1500);

// ---- sync.json ---------------------------------------------------------------------------------
test("sync.json facts", () => {
  const f = vectors.facts;
  assert.equal(toHex(U.mergeUpdates([])), f.mergeUpdatesEmptyList);
  assert.equal(toHex(U.mergeUpdatesV2([])), f.mergeUpdatesV2EmptyList);
  const hello = hex(vectors.cases[0].updatesV2[0]);
  assert.equal(toHex(U.mergeUpdatesV2([hex(f.emptyDocUpdateV2), hello])), f.mergeUpdatesV2WithEmptyUpdate);
  assert.equal(toHex(U.mergeUpdatesV2([new Uint8Array(0)])), f.mergeUpdatesV2ZeroLengthInput);
  assert.equal(U.mergeUpdatesV2([hello]), hello, "a single update is returned as is");
  const expectThrow = (fn, fact) =>
    assert.throws(fn, (e) => e instanceof Error && e.code === "truncated" && e.message.startsWith(fact.error[0]));
  expectThrow(() => U.mergeUpdatesV2([hello, new Uint8Array(0)]), f.mergeUpdatesV2TwoInputsOneZeroLength);
  expectThrow(() => U.diffUpdateV2(hello, new Uint8Array(0)), f.diffUpdateV2WithEmptySVBytes);
  expectThrow(() => U.encodeStateVectorFromUpdateV2(new Uint8Array(0)), f.encodeStateVectorFromUpdateV2ZeroLength);
});

test("sync.json cases through wasm", () => {
  for (const c of vectors.cases) {
    const v1 = c.updatesV1.map(hex);
    const v2 = c.updatesV2.map(hex);
    c.perUpdate.forEach((p, i) => {
      const m = `${c.name} update ${i}`;
      assert.equal(toHex(U.encodeStateVectorFromUpdate(v1[i])), p.stateVectorFromV1, m);
      assert.equal(toHex(U.encodeStateVectorFromUpdateV2(v2[i])), p.stateVectorFromV2, m);
      assert.equal(toHex(U.convertUpdateFormatV1ToV2(v1[i])), p.v1ToV2, m);
      assert.equal(toHex(U.convertUpdateFormatV2ToV1(v2[i])), p.v2ToV1, m);
      assert.ok(U.validateUpdate(v1[i]).structs >= 0);
      assert.ok(U.validateUpdateV2(v2[i]).structs >= 0);
    });
    assert.equal(toHex(U.mergeUpdates(v1)), c.mergeUpdates, c.name);
    assert.equal(toHex(U.mergeUpdatesV2(v2)), c.mergeUpdatesV2, c.name);
    assert.equal(toHex(U.mergeUpdates([...v1].reverse())), c.mergeUpdatesReversedOrder, c.name);
    assert.equal(toHex(U.mergeUpdatesV2([...v2].reverse())), c.mergeUpdatesV2ReversedOrder, c.name);
    const m1 = hex(c.mergeUpdates);
    const m2 = hex(c.mergeUpdatesV2);
    assert.equal(toHex(U.encodeStateVectorFromUpdate(m1)), c.stateVectorFromMergedV1);
    assert.equal(toHex(U.encodeStateVectorFromUpdateV2(m2)), c.stateVectorFromMergedV2);
    assert.equal(toHex(U.convertUpdateFormatV1ToV2(m1)), c.mergedV1ToV2);
    assert.equal(toHex(U.convertUpdateFormatV2ToV1(m2)), c.mergedV2ToV1);
    for (const d of c.diffs) {
      assert.equal(toHex(U.diffUpdate(m1, hex(d.stateVector))), d.diffUpdate, `${c.name} ${d.stateVectorLabel}`);
      assert.equal(toHex(U.diffUpdateV2(m2, hex(d.stateVector))), d.diffUpdateV2, `${c.name} ${d.stateVectorLabel}`);
    }
  }
});

test("sync.json teleportalStorage: materialized state and sync-step-1 diffs", () => {
  const t = vectors.teleportalStorage;
  const pending = t.pendingLog.map(hex);
  const state = U.mergeUpdatesV2(pending);
  assert.equal(toHex(state), t.materializedStateV2);
  for (const s of t.syncStep1) {
    if (s.note) continue;
    const diff = U.diffUpdateV2(state, hex(s.clientStateVector));
    assert.ok(s.replyUpdateEnvelope.includes(toHex(diff)));
    assert.equal(toHex(U.encodeStateVectorFromUpdateV2(state)), s.replyStateVector);
  }
});

test("optional state vector and argument errors", () => {
  const hello = hex(vectors.cases[0].updatesV2[0]);
  assert.deepEqual(U.diffUpdateV2(hello), Y.diffUpdateV2(hello, new Uint8Array([0])));
  assert.throws(() => U.mergeUpdatesV2("nope"), TypeError);
  assert.throws(() => U.diffUpdateV2(42), TypeError);
  const r = U.checkUpdate(new Uint8Array([1, 2, 3]));
  assert.equal(r.valid, false);
  assert.equal(typeof r.code, "string");
});

// ---- random edit histories ---------------------------------------------------------------------
function rng(seed) {
  let a = seed >>> 0 || 1;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (arr) => arr[int(arr.length)];
  return { next, int, pick, bool: (p = 0.5) => next() < p };
}

const WORDS = ["a", "hi", "yjs", "héllo", "日本", "😀", "x😀y", "\u00e9\u0301", "  ", "\n", "z".repeat(30)];

function randomValue(r, depth = 0) {
  switch (r.int(depth > 1 ? 7 : 9)) {
    case 0: return r.int(1000) - 500;
    case 1: return r.pick([0.5, -1.25, 1e21, 2 ** 31, -(2 ** 40), 3.141592653589793, 1e-7]);
    case 2: return r.pick(WORDS);
    case 3: return r.bool();
    case 4: return null;
    case 5: return new Uint8Array([r.int(256), r.int(256)]);
    case 6: return r.pick(["", "k", "0"]);
    case 7: return { a: randomValue(r, depth + 1), 2: r.int(9), b: [randomValue(r, depth + 1)] };
    default: return [randomValue(r, depth + 1), randomValue(r, depth + 1)];
  }
}

function randomAttrs(r) {
  const k = r.int(4);
  if (k === 0) return undefined;
  if (k === 1) return { bold: true };
  if (k === 2) return { italic: r.bool() ? true : null, size: r.pick([12, 1.5, "big"]) };
  return { link: { href: r.pick(WORDS), n: r.int(5) } };
}

function randomOp(r, doc, ctx) {
  const t = doc.getText("t");
  const a = doc.getArray("a");
  const m = doc.getMap("m");
  const x = doc.getXmlFragment("x");
  const op = r.int(16);
  if (op <= 3) {
    t.insert(r.int(t.length + 1), r.pick(WORDS), randomAttrs(r));
  } else if (op === 4 && t.length > 0) {
    const i = r.int(t.length);
    t.delete(i, 1 + r.int(Math.min(5, t.length - i)));
  } else if (op === 5 && t.length > 0) {
    const i = r.int(t.length);
    t.format(i, 1 + r.int(t.length - i), randomAttrs(r) ?? { bold: null });
  } else if (op === 6) {
    t.insertEmbed(r.int(t.length + 1), r.bool() ? { image: r.pick(WORDS) } : { n: r.int(9), list: [1, "a"] }, randomAttrs(r));
  } else if (op === 7) {
    const vals = Array.from({ length: 1 + r.int(4) }, () => randomValue(r));
    a.insert(r.int(a.length + 1), vals);
  } else if (op === 8) {
    const child = r.bool() ? new Y.Map() : new Y.Array();
    a.insert(r.int(a.length + 1), [child]);
    if (child instanceof Y.Map) child.set(r.pick(["p", "q"]), randomValue(r));
    else child.push([randomValue(r), new Y.Text(r.pick(WORDS))]);
  } else if (op === 9 && a.length > 0) {
    const i = r.int(a.length);
    a.delete(i, 1 + r.int(Math.min(3, a.length - i)));
  } else if (op === 10) {
    m.set(r.pick(["k", "l", "m", "ñ", ""]), randomValue(r));
  } else if (op === 11) {
    const keys = [...m.keys()];
    if (keys.length) m.delete(r.pick(keys));
    else m.set("nested", new Y.Map());
  } else if (op === 12) {
    const el = new Y.XmlElement(r.pick(["p", "h1", "li"]));
    x.insert(r.int(x.length + 1), [el]);
    el.setAttribute("class", r.pick(WORDS));
    el.insert(0, [new Y.XmlText(r.pick(WORDS))]);
  } else if (op === 13 && x.length > 0) {
    x.delete(r.int(x.length), 1);
  } else if (op === 14 && ctx.subdocs) {
    m.set("sub" + r.int(3), new Y.Doc({ guid: "g" + r.int(1e6) }));
  } else if (op === 15) {
    x.insert(0, [new Y.XmlHook(r.pick(["hook", "embed"]))]);
  } else {
    t.insert(0, r.pick(WORDS));
  }
}

// Builds a concurrent history; returns every update (V1 and V2) in the order produced.
function history(seed) {
  const r = rng(seed);
  const n = 2 + r.int(4);
  const gc = r.bool(0.7);
  const docs = Array.from({ length: n }, (_, i) => {
    const d = new Y.Doc({ gc });
    d.clientID = r.bool(0.15) ? 3000000000 + i : 1 + r.int(2 ** 20) * 8 + i;
    return d;
  });
  const v1 = [];
  const v2 = [];
  docs.forEach((d, i) => {
    d.on("update", (u, origin) => {
      if (origin !== "sync") v1.push(u);
    });
    d.on("updateV2", (u, origin) => {
      if (origin !== "sync") v2.push(u);
    });
  });
  const rounds = 1 + r.int(4);
  const ctx = { subdocs: r.bool(0.2) };
  for (let round = 0; round < rounds; round++) {
    for (const d of docs) {
      const ops = 1 + r.int(6);
      for (let k = 0; k < ops; k++) {
        if (r.bool(0.3)) d.transact(() => { randomOp(r, d, ctx); randomOp(r, d, ctx); });
        else randomOp(r, d, ctx);
      }
    }
    // partial sync: some pairs exchange state
    for (let k = 0; k < n; k++) {
      if (r.bool(0.6)) {
        const a = r.pick(docs);
        const b = r.pick(docs);
        if (a !== b) Y.applyUpdateV2(b, Y.encodeStateAsUpdateV2(a, Y.encodeStateVector(b)), "sync");
      }
    }
  }
  return { r, docs, v1, v2 };
}

function shuffled(r, arr) {
  const out = [...arr];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function docState(update, v2) {
  const d = new Y.Doc();
  if (v2) Y.applyUpdateV2(d, update);
  else Y.applyUpdate(d, update);
  return {
    t: d.getText("t").toDelta(),
    a: d.getArray("a").toJSON(),
    m: d.getMap("m").toJSON(),
    x: d.getXmlFragment("x").toString(),
    sv: toHex(Y.encodeStateVector(d)),
    ds: toHex(Y.encodeStateAsUpdate(d)).length,
  };
}

const stats = { cases: 0, comparisons: 0, byteEqual: 0, semanticOnly: 0 };

// Byte equality where yjs is deterministic; when merge inputs overlap with GC'd copies of the same
// structs, yjs's sort comparator is inconsistent (engine-dependent), so fall back to comparing
// the documents both results produce.
function compare(ours, theirs, v2, seed, what, allowSemantic) {
  stats.comparisons++;
  if (toHex(ours) === toHex(theirs)) {
    stats.byteEqual++;
    return;
  }
  if (!allowSemantic) assert.fail(`seed ${seed}: ${what} differs from yjs\nours   ${toHex(ours)}\ntheirs ${toHex(theirs)}`);
  assert.deepEqual(docState(ours, v2), docState(theirs, v2), `seed ${seed}: ${what} not equivalent to yjs`);
  stats.semanticOnly++;
}

function checkHistory(seed) {
  const { r, docs, v1, v2 } = history(seed);
  stats.cases++;
  // every update yjs emitted validates, has the same state vector and converts the same way
  for (let i = 0; i < v2.length; i++) {
    U.validateUpdateV2(v2[i]);
    U.validateUpdate(v1[i]);
    compare(U.encodeStateVectorFromUpdateV2(v2[i]), Y.encodeStateVectorFromUpdateV2(v2[i]), true, seed, `sv(update ${i})`);
    compare(U.convertUpdateFormatV1ToV2(v1[i]), Y.convertUpdateFormatV1ToV2(v1[i]), true, seed, `v1->v2(update ${i})`);
    compare(U.convertUpdateFormatV2ToV1(v2[i]), Y.convertUpdateFormatV2ToV1(v2[i]), false, seed, `v2->v1(update ${i})`);
  }
  // merges of all incremental updates, in yjs order and shuffled
  const order = shuffled(r, v2.map((_, i) => i));
  const in2 = order.map((i) => v2[i]);
  const in1 = order.map((i) => v1[i]);
  const m2 = U.mergeUpdatesV2(in2);
  compare(m2, Y.mergeUpdatesV2(in2), true, seed, "mergeUpdatesV2");
  const m1 = U.mergeUpdates(in1);
  compare(m1, Y.mergeUpdates(in1), false, seed, "mergeUpdates");
  compare(U.encodeStateVectorFromUpdateV2(m2), Y.encodeStateVectorFromUpdateV2(m2), true, seed, "sv(merged)");
  compare(U.encodeStateVectorFromUpdate(m1), Y.encodeStateVectorFromUpdate(m1), false, seed, "sv(merged v1)");
  compare(U.convertUpdateFormatV2ToV1(m2), Y.convertUpdateFormatV2ToV1(m2), false, seed, "v2->v1(merged)");
  compare(U.convertUpdateFormatV1ToV2(m1), Y.convertUpdateFormatV1ToV2(m1), true, seed, "v1->v2(merged)");
  // partial merges (gaps -> Skip structs) and merges with full document states (overlaps, GC)
  const subset = in2.filter(() => r.bool(0.5));
  if (subset.length > 1) {
    const ms = U.mergeUpdatesV2(subset);
    compare(ms, Y.mergeUpdatesV2(subset), true, seed, "mergeUpdatesV2(subset)");
    compare(U.encodeStateVectorFromUpdateV2(ms), Y.encodeStateVectorFromUpdateV2(ms), true, seed, "sv(subset)");
    const sv = Y.encodeStateVector(r.pick(docs));
    compare(U.diffUpdateV2(ms, sv), Y.diffUpdateV2(ms, sv), true, seed, "diffUpdateV2(subset)");
  }
  const full = docs.map((d) => Y.encodeStateAsUpdateV2(d));
  const mixed = shuffled(r, [...full, ...in2.filter(() => r.bool(0.3))]);
  compare(U.mergeUpdatesV2(mixed), Y.mergeUpdatesV2(mixed), true, seed, "mergeUpdatesV2(full states)", true);
  // diffs against stale state vectors of each doc, and against a state vector with unknown clients
  for (const d of docs) {
    const sv = Y.encodeStateVector(d);
    compare(U.diffUpdateV2(m2, sv), Y.diffUpdateV2(m2, sv), true, seed, "diffUpdateV2");
    compare(U.diffUpdate(m1, sv), Y.diffUpdate(m1, sv), false, seed, "diffUpdate");
  }
  const odd = Y.encodeStateVector(docs[0]);
  compare(U.diffUpdateV2(m2, odd), Y.diffUpdateV2(m2, odd), true, seed, "diffUpdateV2(odd)");
  // the merged update, applied, gives the same document as the live docs after a full sync
  return { m2, m1 };
}

test(`differential: ${CASES} random histories vs yjs (seed ${BASE_SEED})`, () => {
  for (let i = 0; i < CASES; i++) checkHistory(BASE_SEED * 100003 + i);
  console.log(`# differential: ${JSON.stringify(stats)}`);
  assert.ok(stats.byteEqual > stats.comparisons * 0.99, "nearly every comparison is byte-equal");
});

// ---- many clients: merging updates of many different clients (yjs issue 710 shape) ------------
test("many-client merge equals yjs", () => {
  const updates = [];
  for (let c = 0; c < 300; c++) {
    const d = new Y.Doc();
    d.clientID = 1000 + c * 7;
    d.on("updateV2", (u) => updates.push(u));
    d.getArray("a").push([c]);
    d.getText("t").insert(0, "c" + c);
  }
  assert.equal(toHex(U.mergeUpdatesV2(updates)), toHex(Y.mergeUpdatesV2(updates)));
});

// ---- mutations: truncated and bit-flipped updates --------------------------------------------
test("mutated updates never crash; accepted ones stay consistent", () => {
  const r = rng(BASE_SEED + 7);
  let rejected = 0;
  let accepted = 0;
  for (let i = 0; i < 150; i++) {
    const { v2, v1 } = history(BASE_SEED * 7919 + i);
    const base = r.bool() ? Y.mergeUpdatesV2(v2) : r.pick(v2);
    const base1 = Y.convertUpdateFormatV2ToV1(base);
    for (let k = 0; k < 20; k++) {
      for (const [u, v2fmt] of [[base, true], [base1, false]]) {
        const m = new Uint8Array(u);
        let mutated;
        if (k % 3 === 0) mutated = m.slice(0, r.int(m.length));
        else {
          m[r.int(m.length)] ^= 1 << r.int(8);
          mutated = m;
        }
        let ok = true;
        try {
          if (v2fmt) U.validateUpdateV2(mutated);
          else U.validateUpdate(mutated);
        } catch (e) {
          ok = false;
          assert.equal(typeof e.code, "string", `seed ${i}: error without code`);
          assert.ok(e.message.length > 0);
        }
        if (!ok) {
          rejected++;
          // every operation rejects it the same way instead of crashing
          assert.throws(() => (v2fmt ? U.encodeStateVectorFromUpdateV2(mutated) : U.encodeStateVectorFromUpdate(mutated)));
          assert.throws(() => (v2fmt ? U.mergeUpdatesV2([mutated, base]) : U.mergeUpdates([mutated, base1])));
          continue;
        }
        accepted++;
        // valid after mutation: our operations agree with yjs's on it
        if (v2fmt) {
          assert.equal(toHex(U.encodeStateVectorFromUpdateV2(mutated)), toHex(Y.encodeStateVectorFromUpdateV2(mutated)), `mutation ${i}/${k}`);
          const ours = U.diffUpdateV2(mutated, new Uint8Array([0]));
          let theirs;
          try {
            theirs = Y.diffUpdateV2(mutated, new Uint8Array([0]));
          } catch {
            continue; // yjs cannot re-encode it (e.g. a float it re-classifies); nothing to compare
          }
          if (toHex(ours) !== toHex(theirs)) {
            // re-encoding may canonicalize values; the decoded structure must still agree
            assert.equal(toHex(U.encodeStateVectorFromUpdateV2(ours)), toHex(Y.encodeStateVectorFromUpdateV2(theirs)));
          }
        } else {
          assert.equal(toHex(U.encodeStateVectorFromUpdate(mutated)), toHex(Y.encodeStateVectorFromUpdate(mutated)), `mutation ${i}/${k}`);
        }
      }
    }
  }
  console.log(`# mutations: ${rejected} rejected, ${accepted} accepted`);
  assert.ok(rejected > 0 && rejected + accepted === 150 * 20 * 2);
});
