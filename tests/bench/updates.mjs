// Benchmark: teleportal/updates (C++ core in wasm) vs yjs, side by side in one process, plus the
// native build (bench_yjs) on the same inputs when it has been built.
//
//   node tests/bench/updates.mjs            (from the repo root; or with bun)
//   BENCH_NATIVE=build/native/bench_yjs     path of the native bench (default: first found)
//   BENCH_QUICK=1                           smaller inputs
//
// Inputs are synthesized with real Y.Docs (seeded): many small updates from many clients, and an
// editing trace of 100k+ operations on one Y.Text. They are also written to a temp directory so
// the native bench reads exactly the same bytes.
import { createRequire } from "node:module";
import { mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const require = createRequire(new URL("../package.json", import.meta.url));
const Y = await import(require.resolve("yjs").replace(/\.cjs$/, ".mjs"));
const U = await import(new URL("../../wasm/src/updates.js", import.meta.url));

const QUICK = !!process.env.BENCH_QUICK;
const runtime = typeof Bun !== "undefined" ? `bun ${Bun.version}` : `node ${process.version}`;

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// n small updates: `clients` docs take turns typing into a shared text; each applies what the
// others wrote every few turns, so edits are partly concurrent.
function smallUpdates(n, clients, seed) {
  const r = rng(seed);
  const docs = Array.from({ length: clients }, (_, i) => {
    const d = new Y.Doc();
    d.clientID = 10 + i * 13;
    return d;
  });
  const inbox = docs.map(() => []);
  const out = [];
  for (let i = 0; i < n; i++) {
    const k = i % clients;
    const d = docs[k];
    if (inbox[k].length > 4 * clients) {
      Y.applyUpdateV2(d, Y.mergeUpdatesV2(inbox[k]));
      inbox[k] = [];
    }
    let u;
    d.once("updateV2", (x) => (u = x));
    const t = d.getText("t");
    if (t.length > 10 && r() < 0.2) t.delete(Math.floor(r() * (t.length - 2)), 2);
    else t.insert(Math.floor(r() * (t.length + 1)), "ab");
    out.push(u);
    inbox.forEach((q, j) => j !== k && q.push(u));
  }
  return out;
}

// One update per client (yjs issue 710 shape): independent docs, no shared history.
function distinctClientUpdates(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const d = new Y.Doc();
    d.clientID = 1 + i;
    d.on("updateV2", (u) => out.push(u));
    d.getMap("m").set("k" + (i % 50), i);
  }
  return out;
}

// An editing trace on one Y.Text: inserts and deletes at random positions, ops per transaction 1.
function editingTrace(ops, seed) {
  const r = rng(seed);
  const d = new Y.Doc();
  d.clientID = 7;
  const t = d.getText("t");
  const updates = [];
  let svAt = null;
  d.on("updateV2", (u) => updates.push(u));
  for (let i = 0; i < ops; i++) {
    if (i === Math.floor(ops * 0.9)) svAt = Y.encodeStateVector(d);
    const len = t.length;
    if (len > 20 && r() < 0.3) t.delete(Math.floor(r() * (len - 3)), 1 + Math.floor(r() * 3));
    else t.insert(Math.floor(r() * (len + 1)), String.fromCharCode(97 + Math.floor(r() * 26)));
  }
  return { state: Y.encodeStateAsUpdateV2(d), updates, staleSv: svAt };
}

function time(fn, minMs = 300, maxRuns = 50) {
  const first = performance.now();
  fn(); // warm-up; a slow operation is measured once
  const once = performance.now() - first;
  if (once > 400) return once;
  const samples = [];
  const start = performance.now();
  while (samples.length < 3 || (performance.now() - start < minMs && samples.length < maxRuns)) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

console.log(`# teleportal/updates vs yjs ${runtime}${QUICK ? " (quick)" : ""}`);
const N = QUICK ? 2000 : 10000;
const traceOps = QUICK ? 20000 : 120000;
const t0 = performance.now();
const small = smallUpdates(N, 40, 1);
const distinct = distinctClientUpdates(N);
const trace = editingTrace(traceOps, 2);
const traceMerged = Y.mergeUpdatesV2(trace.updates.slice(0, 20000));
console.log(`# inputs built in ${(performance.now() - t0).toFixed(0)} ms: ${N} updates/40 clients, ${N} updates/${N} clients, ` +
  `trace ${traceOps} ops -> state ${trace.state.length} B`);

const cases = [
  ["merge " + N + " small updates, 40 clients", () => Y.mergeUpdatesV2(small), () => U.mergeUpdatesV2(small)],
  ["merge " + N + " updates, " + N + " clients", () => Y.mergeUpdatesV2(distinct), () => U.mergeUpdatesV2(distinct)],
  ["merge first 20k trace updates", () => Y.mergeUpdatesV2(trace.updates.slice(0, 20000)), () => U.mergeUpdatesV2(trace.updates.slice(0, 20000))],
  ["diff large doc vs stale SV (90%)", () => Y.diffUpdateV2(trace.state, trace.staleSv), () => U.diffUpdateV2(trace.state, trace.staleSv)],
  ["diff large doc vs empty SV", () => Y.diffUpdateV2(trace.state, new Uint8Array([0])), () => U.diffUpdateV2(trace.state, new Uint8Array([0]))],
  ["state vector of large doc", () => Y.encodeStateVectorFromUpdateV2(trace.state), () => U.encodeStateVectorFromUpdateV2(trace.state)],
  ["V2 -> V1 large doc", () => Y.convertUpdateFormatV2ToV1(trace.state), () => U.convertUpdateFormatV2ToV1(trace.state)],
  ["validate large doc (ours only)", null, () => U.validateUpdateV2(trace.state)],
];

// same bytes as yjs?
for (const [name, y, u] of cases) {
  if (y && !eq(y(), u())) console.log(`# WARNING: output differs from yjs for ${name}`);
}

// native numbers on the same inputs
const dir = mkdtempSync(join(tmpdir(), "tp-bench-"));
const writeBatch = (name, list) => {
  const parts = [];
  for (const u of list) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(u.length);
    parts.push(len, Buffer.from(u));
  }
  writeFileSync(join(dir, name), Buffer.concat(parts));
};
writeBatch("small.bin", small);
writeBatch("distinct.bin", distinct);
writeBatch("trace20k.bin", trace.updates.slice(0, 20000));
writeBatch("state.bin", [trace.state]);
writeBatch("stalesv.bin", [trace.staleSv]);
const nativeCandidates = [process.env.BENCH_NATIVE, "build/native/bench_yjs", "build/native-yjs/bench_yjs"]
  .filter(Boolean)
  .map((p) => new URL("../../" + p, import.meta.url).pathname);
const nativeBin = nativeCandidates.find((p) => existsSync(p));
const native = {};
if (nativeBin) {
  const r = spawnSync(nativeBin, [dir], { encoding: "utf8" });
  for (const line of r.stdout.split("\n")) {
    const m = line.match(/^(\d+)\t([\d.]+)/);
    if (m) native[Number(m[1])] = Number(m[2]);
  }
}

const rows = [];
cases.forEach(([name, y, u], i) => {
  const ty = y ? time(y) : NaN;
  const tu = time(u);
  rows.push([name, ty, tu, native[i]]);
});

const fmt = (x) => (x === undefined || Number.isNaN(x) ? "-" : x < 1 ? x.toFixed(3) : x.toFixed(1));
const header = ["operation", "yjs ms", "wasm ms", "wasm speedup", "native ms"];
const table = rows.map(([n, ty, tu, tn]) => [n, fmt(ty), fmt(tu), Number.isNaN(ty) ? "-" : (ty / tu).toFixed(1) + "x", fmt(tn)]);
const widths = header.map((h, c) => Math.max(h.length, ...table.map((r) => r[c].length)));
const line = (r) => "| " + r.map((x, c) => (c ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join(" | ") + " |";
console.log(line(header));
console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
for (const r of table) console.log(line(r));
if (!nativeBin) console.log("# native: build bench_yjs (cmake --build <dir> --target bench_yjs) to add the native column");

// scaling: yjs issue 710 (merging updates from many different clients)
console.log("\n# scaling of merge with the number of distinct clients (one update each)");
console.log("| clients | yjs ms | wasm ms |");
console.log("|--------:|-------:|--------:|");
for (const n of QUICK ? [1000, 2000, 4000] : [2500, 5000, 10000]) {
  const list = distinctClientUpdates(n);
  console.log(`| ${n} | ${fmt(time(() => Y.mergeUpdatesV2(list), 200, 5))} | ${fmt(time(() => U.mergeUpdatesV2(list), 200, 20))} |`);
}
