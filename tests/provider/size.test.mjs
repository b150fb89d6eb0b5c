// What teleportal/provider costs a browser, for both codec options, measured the way a page
// would ship it (esbuild, minified, gzip -9; yjs, y-protocols and lib0 left out: every Y.js page
// has them already). The README's size table must match these numbers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("../../", import.meta.url));
const PEERS = ["yjs", "y-protocols", "y-protocols/*", "lib0", "lib0/*"];
const kb = (bytes) => Math.round((gzipSync(bytes, { level: 9 }).length / 1024) * 10) / 10;

// The wasm option: the same provider with its codec module replaced by teleportal/protocol (the
// C++ codec) and a fetch-based loader for the wasm module, as a browser build would need.
const wasmCodec = `
import { decodeMessage, encodeMessage, getMessageId, encodeContentEncryptedPayload, decodeContentEncryptedPayload,
  encodePingMessage, encodePongMessage } from ${JSON.stringify(`${root}wasm/src/protocol.js`)};
export { decodeMessage, encodeMessage, getMessageId };
export const PING = encodePingMessage(), PONG = encodePongMessage();
export const startsWith = (b, p) => b.length >= p.length && p.every((x, i) => b[i] === x);
export const encodeEnvelope = (u) => encodeContentEncryptedPayload({ structureUpdate: u, encryptedSidecars: [] });
export const decodeEnvelope = (b) => decodeContentEncryptedPayload(b).structureUpdate;`;
const browserLoader = `
import createCore from ${JSON.stringify(`${root}wasm/dist/teleportal_core.mjs`)};
export async function instantiate(options) {
  const { module } = await WebAssembly.instantiateStreaming(fetch(new URL("teleportal_core.wasm", import.meta.url)));
  return createCore({ ...options, locateFile: (p) => p,
    instantiateWasm(imports, done) { WebAssembly.instantiate(module, imports).then((i) => done(i, module)); return {}; } });
}`;

async function bundle(entry, { swapCodec = false } = {}) {
  const virtual = {
    name: "wasm-codec",
    setup(b) {
      if (!swapCodec) return;
      b.onResolve({ filter: /provider-codec\.js$|^#core-loader$/ }, (args) => ({ path: args.path, namespace: "virtual" }));
      b.onLoad({ filter: /.*/, namespace: "virtual" }, (args) => ({
        contents: args.path === "#core-loader" ? browserLoader : wasmCodec,
        resolveDir: `${root}wasm/src`,
        loader: "js",
      }));
    },
  };
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    external: PEERS,
    plugins: [virtual],
    write: false,
    logLevel: "error",
  });
  return result.outputFiles[0].contents;
}

export async function measure() {
  const provider = `${root}wasm/src/provider.js`;
  const js = kb(await bundle(provider));
  const codec = kb(await bundle(`${root}wasm/src/provider-codec.js`));
  const wasmJs = kb(await bundle(provider, { swapCodec: true }));
  const wasmModule = kb(readFileSync(`${root}wasm/dist/teleportal_core.wasm`));
  return { js, codec, wasmJs, wasmModule, wasm: Math.round((wasmJs + wasmModule) * 10) / 10 };
}

test("provider size: the JS codec is the smaller option, and README-provider.md states the measured sizes", async () => {
  const m = await measure();
  assert.ok(m.js * 5 < m.wasm, `JS codec ${m.js} KB vs wasm codec ${m.wasm} KB`);
  const readme = readFileSync(`${root}wasm/src/README-provider.md`, "utf8");
  const stated = (label) => Number(readme.match(new RegExp(`\\| ${label} \\| ([\\d.]+) KB`))?.[1]);
  // The JS rows to 0.3 KB; the wasm row within 15 % (the core's module grows with every server feature).
  const rows = [["provider, JS codec \\(shipped\\)", m.js, 0.3], ["the JS codec alone", m.codec, 0.3], ["provider, wasm codec", m.wasm, m.wasm * 0.15]];
  for (const [label, value, tolerance] of rows) {
    const s = stated(label);
    assert.ok(Math.abs(s - value) <= tolerance, `README says ${s} KB for "${label}", measured ${value} KB (${JSON.stringify(m)})`);
  }
});
