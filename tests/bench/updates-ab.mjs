// A/B benchmark of two (or more) builds of the wasm core in one process: the same operations
// on the same inputs through the raw bindings, calls interleaved so machine noise hits every
// build alike. For comparing a change against its parent on a noisy machine.
//
//   node tests/bench/updates-ab.mjs <inputs dir> <build dir A> <build dir B> [...]
//
// <inputs dir>: a directory written by tests/bench/updates.mjs (its temp dir: state.bin,
// stalesv.bin); each build dir holds teleportal_core.mjs + teleportal_core.wasm. N=runs (60).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const [inputs, ...dirs] = process.argv.slice(2);
if (!inputs || dirs.length === 0) {
  console.error("usage: updates-ab.mjs <inputs dir> <build dir>...");
  process.exit(2);
}
const first = (f) => {
  const b = readFileSync(resolve(inputs, f));
  return new Uint8Array(b.subarray(4, 4 + b.readUInt32LE(0)));
};
const state = first("state.bin"), staleSv = first("stalesv.bin"), emptySv = new Uint8Array([0]);

async function instantiate(dir) {
  const { default: createCore } = await import(resolve(dir, "teleportal_core.mjs"));
  const module = await WebAssembly.compile(readFileSync(resolve(dir, "teleportal_core.wasm")));
  return createCore({
    getRandomValue: () => 4,
    locateFile: (p) => p,
    instantiateWasm(imports, done) {
      WebAssembly.instantiate(module, imports).then((i) => done(i, module));
      return {};
    },
  });
}
const cores = await Promise.all(dirs.map(instantiate));

// copies the arrays into one malloc'd block, calls fn(addresses), frees
function call(core, arrays, fn) {
  const base = core._malloc(arrays.reduce((n, a) => n + a.length, 0) || 1);
  const at = [];
  let pos = base;
  for (const a of arrays) {
    core.HEAPU8.set(a, pos);
    at.push(pos);
    pos += a.length;
  }
  try {
    return fn(...at);
  } finally {
    core._free(base);
  }
}
const ops = {
  "diff stale SV": (c) => call(c, [state, staleSv], (u, s) => c.yjsDiff(u, state.length, s, staleSv.length, 2)),
  "diff empty SV": (c) => call(c, [state, emptySv], (u, s) => c.yjsDiff(u, state.length, s, 1, 2)),
  "state vector": (c) => call(c, [state], (u) => c.yjsStateVector(u, state.length, 2)),
  "V2 -> V1": (c) => call(c, [state], (u) => c.yjsConvert(u, state.length, 2)),
  validate: (c) => call(c, [state], (u) => c.yjsValidate(u, state.length, 2)),
};

const N = Number(process.env.N || 60);
const pct = (xs, f) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length * f)].toFixed(2);
console.log(`| operation | ${dirs.map((d, i) => `${String.fromCharCode(65 + i)} p10 / p50 ms`).join(" | ")} |`);
console.log(`|---|${dirs.map(() => "---:").join("|")}|`);
for (const [name, op] of Object.entries(ops)) {
  const outs = cores.map((c) => op(c));
  const same = outs.every((o) => (typeof o === "string" ? o === outs[0] : o.length === outs[0].length && o.every((x, j) => x === outs[0][j])));
  const samples = cores.map(() => []);
  for (let i = 0; i < N; i++) {
    cores.forEach((c, k) => {
      const t = performance.now();
      op(c);
      samples[k].push(performance.now() - t);
    });
  }
  console.log(`| ${name}${same ? "" : " (OUTPUTS DIFFER)"} | ${samples.map((s) => `${pct(s, 0.1)} / ${pct(s, 0.5)}`).join(" | ")} |`);
}
for (const d of dirs) console.log(`# ${String.fromCharCode(65 + dirs.indexOf(d))}: ${d}`);
