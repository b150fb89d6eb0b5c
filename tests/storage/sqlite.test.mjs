// SQLite database files: the contract on Node (better-sqlite3), on Bun (bun:sqlite, in a Bun
// process) and through the node:sqlite API; two processes (Bun writing, Node compacting) on one file;
// a file made before milestones were stored.
import { test, after } from "node:test";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { openSqliteStorage } from "teleportal/storage";
import { bun, defineContract, defineRemoteContract, fixture, runFixture } from "./harness.mjs";

const dir = mkdtempSync(join(tmpdir(), "tp-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));

defineContract("SQLite file, Node (better-sqlite3)", async () => {
  const path = join(dir, "node", "contract.db");
  return { open: () => openSqliteStorage({ path }) };
});

defineRemoteContract("SQLite file, Bun (bun:sqlite)", () => runFixture(bun, [fixture("run-contract.mjs"), "sqlite", join(dir, "bun", "contract.db")]));

// Node 20 has no node:sqlite; Bun implements the same API, which is what this run checks.
defineRemoteContract("SQLite file through the node:sqlite API (Bun's implementation of it)", () => {
  mkdirSync(join(dir, "node-sqlite"));
  return runFixture(bun, [fixture("run-contract.mjs"), "node:sqlite", join(dir, "node-sqlite", "contract.db")]);
});

test("sqlite: creates the directory, the file is in WAL mode; synchronous is NORMAL or FULL, nothing else", async () => {
  const path = join(dir, "new", "nested", "wal.db");
  const s = await openSqliteStorage({ path, synchronous: "FULL" });
  s.commit([{ key: "k", entry: Uint8Array.of(1) }]);
  // Header bytes 18 and 19 (file format write/read version) are 2 in WAL mode, 1 in rollback mode.
  const header = readFileSync(path).subarray(0, 20);
  assert.equal(header.subarray(0, 15).toString(), "SQLite format 3");
  assert.deepEqual([header[18], header[19]], [2, 2]);
  assert.ok(existsSync(`${path}-wal`), "a -wal file next to the database");
  await s.close();
  await assert.rejects(openSqliteStorage({ path, synchronous: /** @type {any} */ ("OFF") }), /NORMAL" or "FULL"/);
  await assert.rejects(openSqliteStorage(/** @type {any} */ ({})), /path/);
});

test("sqlite: a Bun process commits while this Node process compacts the same file; every acknowledged write is kept", async (t) => {
  const path = join(dir, "shared", "two-processes.db");
  const key = "room/doc";
  const s = await openSqliteStorage({ path });
  const writer = runFixture(bun, [fixture("writer.mjs"), "sqlite", path, key, "800"]);
  let done = false;
  writer.finally(() => (done = true)).catch(() => {});
  let compactions = 0;
  const spin = (/** @type {number} */ ms) => { for (const end = Date.now() + ms; Date.now() < end;); };
  while (!done) {
    // The merge holds the write lock for 2 ms: the writer has to wait for it (busy_timeout), not fail.
    // (SQLite's lock is not fair: a loop that takes it again at once would starve the other process.)
    s.compact(key, (entries) => (compactions++, spin(2), Buffer.from(entries.map((e) => Buffer.from(e).toString()).join(","))));
    await sleep(3);
  }
  const { acked, slowest } = await writer;
  assert.ok(slowest >= 1, `no commit waited for the other process's lock (slowest took ${slowest} ms)`);
  const entries = s.load(key).flatMap((e) => Buffer.from(e).toString().split(","));
  assert.deepEqual(entries, Array.from({ length: acked }, (_, i) => `w${i}`));
  t.diagnostic(`${acked} commits, ${compactions} compactions; the slowest commit waited ${slowest.toFixed(1)} ms`);
  assert.ok(compactions >= 10, `only ${compactions} compactions overlapped the writer`);
  await s.close();
});

test("sqlite: a file made before milestones were stored opens with its entries and gains the milestone tables", async () => {
  const path = join(dir, "legacy", "old.db");
  mkdirSync(join(dir, "legacy"));
  // What the previous version created: one table, in WAL mode (better-sqlite3, the driver the package resolves).
  const Database = createRequire(new URL("../../wasm/package.json", import.meta.url))("better-sqlite3");
  const old = new Database(path);
  old.exec("PRAGMA journal_mode = WAL");
  old.exec("CREATE TABLE IF NOT EXISTS teleportal_entries (key TEXT NOT NULL, seq INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (key, seq, part))");
  old.prepare("INSERT INTO teleportal_entries (key, seq, part, data) VALUES (?, 1, 0, ?)").run("room/doc", Buffer.of(1, 2, 3));
  old.close();
  const s = await openSqliteStorage({ path });
  assert.deepEqual(s.load("room/doc"), [Uint8Array.of(1, 2, 3)]);
  await s.putMilestone("room/doc", "m", Uint8Array.of(4), Uint8Array.of(5, 6));
  assert.deepEqual(await s.loadMilestones("room/doc"), [{ id: "m", meta: Uint8Array.of(4) }]);
  await s.close();
  const again = new Database(path, { readonly: true });
  const tables = again.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((/** @type {any} */ r) => r.name);
  again.close();
  assert.deepEqual(tables, ["teleportal_entries", "teleportal_milestone_parts", "teleportal_milestones"]);
});
