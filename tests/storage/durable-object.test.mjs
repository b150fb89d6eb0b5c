// The Durable Object SQLite storage in real workerd (miniflare): the contract run inside an object,
// workerd's 2 MB value limit and the parts that avoid it, one document read per load, data kept
// across a workerd restart, an object made before milestones, and bundles of teleportal/storage
// that hold no Node or Bun module.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";
import { bundleWorker } from "../hosts/workerd-host.mjs";
import { defineRemoteContract, fixture } from "./harness.mjs";

const dir = mkdtempSync(join(tmpdir(), "tp-do-storage-"));
/** @type {string} */
let script;
/** @type {Miniflare} */
let mf;
/** @type {URL} */
let base;

/** @param {string} scriptPath @param {object} [extra] */
function worker(scriptPath, extra = {}) {
  return new Miniflare({
    modulesRoot: dirname(scriptPath),
    modules: [{ type: "ESModule", path: scriptPath }],
    compatibilityDate: "2026-04-01",
    durableObjects: { STORE: { className: "StorageObject", useSQLite: true } },
    host: "127.0.0.1",
    port: 0,
    ...extra,
  });
}
const get = async (/** @type {URL} */ at, /** @type {string} */ path, /** @type {RequestInit} */ init = {}) => {
  const res = await fetch(new URL(path, at), { ...init, signal: AbortSignal.timeout(60_000) });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
};

before(async () => {
  script = await bundleWorker(fixture("do-worker.js"), join(dir, "do"), { wasm: false });
  mf = worker(script);
  base = await mf.ready;
});
after(async () => {
  await mf?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

defineRemoteContract("Durable Object SQLite storage (workerd)", () => get(base, "/contract"));

test("durable object: workerd refuses a 3 MB value; stored parts are at most 1 MiB", async () => {
  const limits = await get(base, "/limits");
  assert.match(limits.refused ?? "no error", /too big|TOOBIG|SQLITE_TOOBIG|string or blob/i);
  assert.ok(limits.rows > 0, "the contract left entries behind");
  assert.ok(limits.largestPart <= 1 << 20, `a part of ${limits.largestPart} bytes`);
  assert.ok(limits.snapshotRows > 0, "the contract left milestone snapshots behind");
  assert.ok(limits.largestSnapshotPart <= 1 << 20, `a snapshot part of ${limits.largestSnapshotPart} bytes`);
});

test("durable object: opening the storage reads nothing; a load reads one document", async () => {
  const { opened, load, loaded } = await get(base, "/queries?object=queries&key=room%2Fdoc");
  assert.deepEqual(opened.map((/** @type {unknown[]} */ q) => q[0]), ["CREATE TABLE"]);
  assert.deepEqual(load, [["SELECT seq,", "room/doc"]]);
  assert.equal(loaded, 0);
});

test("durable object: entries (one of 3 MB, in parts) survive a workerd restart", async () => {
  const persist = join(dir, "persist");
  const entry = new Uint8Array(3_000_000).map((_, i) => (i * 7) & 255);
  const expected = [{ bytes: entry.length, sum: entry.reduce((a, b) => (a * 31 + b) >>> 0, 7) }, { bytes: 1, sum: 7 * 31 + 5 }];
  let first = worker(script, { durableObjectsPersist: persist });
  try {
    const at = await first.ready;
    await get(at, "/put?object=persist&key=room%2Fdoc", { method: "POST", body: entry });
    await get(at, "/put?object=persist&key=room%2Fdoc", { method: "POST", body: Uint8Array.of(5) });
    assert.deepEqual(await get(at, "/get?object=persist&key=room%2Fdoc"), expected);
  } finally {
    await first.dispose();
  }
  const second = worker(script, { durableObjectsPersist: persist });
  try {
    assert.deepEqual(await get(await second.ready, "/get?object=persist&key=room%2Fdoc"), expected);
  } finally {
    await second.dispose();
  }
});

test("durable object: milestones (a snapshot of 3 MB, in parts) survive a workerd restart", async () => {
  const persist = join(dir, "persist-milestones");
  const snapshot = new Uint8Array(3_000_000).map((_, i) => (i * 13) & 255);
  const expected = [
    { id: "m1", meta: "meta of m1", snapshot: { bytes: snapshot.length, sum: snapshot.reduce((a, b) => (a * 31 + b) >>> 0, 7) } },
    { id: "m0", meta: "meta of m0", snapshot: { bytes: 0, sum: 7 } },
  ];
  const first = worker(script, { durableObjectsPersist: persist });
  try {
    const at = await first.ready;
    await get(at, "/put-milestone?object=persist&key=room%2Fdoc&id=m1", { method: "POST", body: snapshot });
    await get(at, "/put-milestone?object=persist&key=room%2Fdoc&id=m0", { method: "POST", body: new Uint8Array() });
    assert.deepEqual(await get(at, "/milestones?object=persist&key=room%2Fdoc"), expected);
  } finally {
    await first.dispose();
  }
  const second = worker(script, { durableObjectsPersist: persist });
  try {
    assert.deepEqual(await get(await second.ready, "/milestones?object=persist&key=room%2Fdoc"), expected);
  } finally {
    await second.dispose();
  }
});

test("durable object: an object whose table was made before milestones keeps its entries and stores milestones", async () => {
  assert.deepEqual(await get(base, "/legacy?object=legacy&key=room%2Fdoc"), { entries: [[1, 2, 3]], milestones: [["m", [4]]], snapshot: [5, 6] });
});

test("durable object: the bundle holds createDurableObjectStorage and nothing of the Node, Bun or PostgreSQL backends", () => {
  const bundle = readFileSync(script, "utf8");
  assert.match(bundle, /transactionSync/);
  for (const absent of ["bun:sqlite", "better-sqlite3", "node:sqlite", "node:fs", "openPostgresStorage", "openSqliteStorage", "MemoryDocumentStorage"]) {
    assert.ok(!bundle.includes(absent), `the bundle mentions ${absent}`);
  }
});

test("durable object: all of teleportal/storage loads in workerd; the Bun/Node backends refuse with a clear error", async () => {
  const entry = await bundleWorker(fixture("entry-worker.js"), join(dir, "entry"), { wasm: false });
  const bundle = readFileSync(entry, "utf8");
  assert.doesNotMatch(bundle, /^import\s/m, "no static import is left in the bundle");
  const other = new Miniflare({ modulesRoot: dirname(entry), modules: [{ type: "ESModule", path: entry }], compatibilityDate: "2026-04-01", host: "127.0.0.1", port: 0 });
  try {
    const result = await get(await other.ready, "/");
    assert.deepEqual(result.exports, ["MemoryDocumentStorage", "createDurableObjectStorage", "openPostgresStorage", "openSqliteStorage"]);
    assert.equal(result.memory, 1);
    assert.match(result.sqlite, /openSqliteStorage runs on Bun and Node; in a Durable Object use createDurableObjectStorage/);
    assert.match(result.postgres, /openPostgresStorage runs on Bun and Node/);
  } finally {
    await other.dispose();
  }
});
