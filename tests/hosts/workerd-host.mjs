// Bundles the worker fixture like wrangler would (esbuild, condition "workerd", .wasm as a
// CompiledWasm module) and runs it in real workerd through miniflare.
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { copyFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Bundles `entry` into `outdir`/worker.js (+ the wasm file unless `wasm` is false: a worker that
 * does not load the core). nodePaths: where packages resolve from.
 */
export async function bundleWorker(entry, outdir, { nodePaths = [], wasm = true } = {}) {
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    nodePaths,
    outfile: `${outdir}/worker.js`,
    logLevel: "error",
    plugins: [{
      name: "wasm-module",
      setup(b) {
        b.onResolve({ filter: /\.wasm$/ }, () => ({ path: "./teleportal_core.wasm", external: true }));
      },
    }],
  });
  if (wasm) await copyFile(here("../../wasm/dist/teleportal_core.wasm"), `${outdir}/teleportal_core.wasm`);
  return `${outdir}/worker.js`;
}

/** Miniflare options that load a bundle made by bundleWorker. */
export function workerModules(scriptPath) {
  return {
    modulesRoot: dirname(scriptPath),
    modules: [
      { type: "ESModule", path: scriptPath },
      { type: "CompiledWasm", path: join(dirname(scriptPath), "teleportal_core.wasm") },
    ],
    compatibilityDate: "2026-04-01",
  };
}

export async function startWorkerdHost({ secret = "host-suite-secret" } = {}) {
  const scriptPath = await bundleWorker(here("./fixtures/worker.js"), here("../../build/hosts-worker"));
  const mf = new Miniflare({
    ...workerModules(scriptPath),
    durableObjects: { SEED: { className: "SeedRoom", useSQLite: true }, BUILTIN: { className: "BuiltinRoom", useSQLite: true } },
    bindings: { TELEPORTAL_SECRET: secret },
    host: "127.0.0.1",
    port: 0,
  });
  const base = await mf.ready;
  const hostPort = base.host;
  const prefix = { seed: "", builtin: "/builtin" };
  return {
    mf,
    url: (kind, query) => `ws://${hostPort}${prefix[kind]}/?${new URLSearchParams(query)}`,
    stats: async (kind, room) =>
      (await fetch(`http://${hostPort}${prefix[kind]}/stats?room=${encodeURIComponent(room ?? "room-1")}`)).json(),
    stop: () => mf.dispose(),
  };
}
