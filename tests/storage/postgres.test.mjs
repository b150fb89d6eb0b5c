// PostgreSQL 15 (a real server from tests/support/services.mjs): the contract on Node (`postgres`)
// and on Bun (Bun.sql, in a Bun process); two nodes (a Bun writer, this Node compacting) on one
// database; a batch the server itself refuses midway; schema creation by nodes starting at once; a
// database made before milestones were stored.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { openPostgresStorage } from "teleportal/storage";
import { startPostgres, freePort } from "../support/services.mjs";
import { bun, defineContract, defineRemoteContract, fixture, runFixture } from "./harness.mjs";

/** @type {Awaited<ReturnType<typeof startPostgres>>} */
let pg;
before(async () => (pg = await startPostgres()));
after(() => pg?.stop());

const psql = (/** @type {string} */ url, /** @type {string} */ command) => execFileSync("psql", [url, "-v", "ON_ERROR_STOP=1", "-qtAc", command], { encoding: "utf8" }).trim();
/** A new empty database on the same server. */
function database(/** @type {string} */ name) {
  psql(pg.url, `CREATE DATABASE ${name}`);
  return pg.url.replace(/\/[^/]*$/, `/${name}`);
}

defineContract("PostgreSQL, Node (postgres)", async () => ({ open: () => openPostgresStorage(pg.url) }));

defineRemoteContract("PostgreSQL, Bun (Bun.sql)", () => runFixture(bun, [fixture("run-contract.mjs"), "postgres", pg.url]));

test("postgres: the entries table is keyed by (key, seq) with bytea data", async () => {
  const s = await openPostgresStorage(pg.url);
  await s.close?.();
  const columns = psql(pg.url, "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'teleportal_entries'");
  assert.equal(columns, "key text, seq bigint, data bytea");
  const key = psql(pg.url, "SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey, a.attnum)) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'teleportal_entries'::regclass AND i.indisprimary");
  assert.equal(key, "key,seq");
});

test("postgres: a database made before milestones were stored opens with its entries and gains the milestone table", async () => {
  const url = database(`legacy_${process.pid}`);
  psql(url, "CREATE TABLE teleportal_entries (key text NOT NULL, seq bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (key, seq))");
  psql(url, "INSERT INTO teleportal_entries VALUES ('room/doc', 1, '\\x010203')");
  const s = await openPostgresStorage(url);
  assert.deepEqual(await s.load("room/doc"), [Uint8Array.of(1, 2, 3)]);
  await s.putMilestone("room/doc", "m", Uint8Array.of(4), Uint8Array.of(5, 6));
  assert.deepEqual(await s.loadMilestones("room/doc"), [{ id: "m", meta: Uint8Array.of(4) }]);
  await s.close?.();
  const columns = psql(url, "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'teleportal_milestones'");
  assert.equal(columns, "key text, id text, seq bigint, meta bytea, snapshot bytea");
});

test("postgres: a Bun node commits while this Node node compacts the same key; every acknowledged write is kept", async (t) => {
  const key = `two-nodes/${Date.now()}`;
  const s = await openPostgresStorage(pg.url);
  const writer = runFixture(bun, [fixture("writer.mjs"), "postgres", pg.url, key, "1000"]);
  let done = false;
  writer.finally(() => (done = true)).catch(() => {});
  let compactions = 0;
  const text = (/** @type {Uint8Array} */ e) => Buffer.from(e).toString();
  while (!done) await s.compact(key, (entries) => (compactions++, Buffer.from(entries.map(text).join(","))));
  const { acked, slowest } = await writer;
  t.diagnostic(`${acked} commits, ${compactions} compactions; the slowest commit took ${slowest.toFixed(1)} ms`);
  assert.deepEqual((await s.load(key)).flatMap((e) => text(e).split(",")), Array.from({ length: acked }, (_, i) => `w${i}`));
  assert.ok(compactions >= 20, `only ${compactions} compactions overlapped the writer`);
  await s.close?.();
});

test("postgres: a batch the server refuses after some rows were inserted (NUL in a key) stores nothing", async () => {
  const s = await openPostgresStorage(pg.url);
  const key = `refused/${Date.now()}`;
  await s.commit([{ key, entry: Uint8Array.of(1) }]);
  const batch = [{ key, entry: Uint8Array.of(2) }, { key: `${key}/b`, entry: Uint8Array.of(3) }, { key: `${key}\u0000`, entry: Uint8Array.of(4) }];
  await assert.rejects(() => s.commit(batch), /0x00|invalid byte sequence/);
  assert.deepEqual(await s.load(key), [Uint8Array.of(1)]);
  assert.deepEqual(await s.load(`${key}/b`), []);
  await s.close?.();
});

test("postgres: four nodes opening a new database at once all succeed (schema creation does not race)", async () => {
  const url = database(`race_${process.pid}`);
  const handles = await Promise.all([1, 2, 3, 4].map(() => openPostgresStorage(url)));
  await Promise.all(handles.map((h, i) => h.commit([{ key: "k", entry: Uint8Array.of(i) }])));
  assert.equal((await handles[0].load("k")).length, 4);
  await Promise.all(handles.map((h) => h.close?.()));
});

test("postgres: unreachable server: open rejects, and ping rejects once the server is gone", async () => {
  await assert.rejects(openPostgresStorage(`postgres://postgres@127.0.0.1:${await freePort()}/teleportal`), /ECONNREFUSED|connect/i);
  const own = await startPostgres();
  try {
    const s = await openPostgresStorage(own.url);
    await s.ping?.();
    await own.stop();
    await assert.rejects(async () => s.ping?.(), /ECONNREFUSED|closed|terminat|connect/i);
    await s.close?.();
  } finally {
    await own.stop();
  }
});
