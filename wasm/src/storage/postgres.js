// openPostgresStorage: the entries in PostgreSQL, through Bun.sql on Bun and the `postgres` package
// on Node (both: tagged templates whose values are sent as parameters, prepared statements).
// Writers of one key serialize on a transaction-scoped advisory lock on the key's hash: commit,
// compact and delete take it, so entries get their seq in commit order and a compaction's merge
// sees every entry it deletes, even across nodes sharing the database. putMilestone takes it too,
// so a new milestone's seq comes after every other of its document.
import { asBytes, entryBytes, checkMilestone, ownBytes, requireBunOrNode, runtimeImport } from "./common.js";

/** @typedef {import("../../types/storage.js").DocumentStorage} DocumentStorage */
/** @typedef {import("../../types/storage.js").MilestoneStorage} MilestoneStorage */
/**
 * What Bun.SQL and postgres() share.
 * @typedef {((strings: TemplateStringsArray, ...values: unknown[]) => Promise<any[]>) & {
 *   begin<T>(body: (tx: Sql) => Promise<T>): Promise<T>, end(): Promise<void> }} Sql
 */

/** @param {string} url `postgres://user@host:port/database` @returns {Promise<DocumentStorage & MilestoneStorage>} */
export async function openPostgresStorage(url) {
  const sql = await connect(url);
  try {
    // Two nodes starting at once would race on CREATE TABLE IF NOT EXISTS: one lock for both.
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtextextended('teleportal_entries schema', 0))`;
      await tx`CREATE TABLE IF NOT EXISTS teleportal_entries (
        key text NOT NULL,
        seq bigint NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (key, seq)
      )`;
      // The snapshot (NULL: none) is TOASTed out of line: listing the milestones does not read it.
      await tx`CREATE TABLE IF NOT EXISTS teleportal_milestones (
        key text NOT NULL,
        id text NOT NULL,
        seq bigint NOT NULL,
        meta bytea NOT NULL,
        snapshot bytea,
        PRIMARY KEY (key, id)
      )`;
    });
  } catch (err) {
    await sql.end();
    throw err;
  }
  /** @param {Sql} tx @param {string} key */
  const lock = (tx, key) => tx`SELECT pg_advisory_xact_lock(hashtextextended(${key}, 0))`;

  return {
    async load(key) {
      const rows = await sql`SELECT data FROM teleportal_entries WHERE key = ${key} ORDER BY seq`;
      return rows.map((row) => asBytes(row.data));
    },
    async commit(writes) {
      if (writes.length === 0) return;
      /** @type {Map<string, Uint8Array[]>} */
      const byKey = new Map();
      for (const { key, entry } of writes) (byKey.get(key) ?? byKey.set(key, []).get(key))?.push(entryBytes(key, entry));
      // Key by key in one order everywhere (locks never deadlock), each key's entries in batch
      // order; every statement is sent without waiting for the one before (pipelined).
      await sql.begin((tx) =>
        Promise.all([...byKey.keys()].sort().flatMap((key) => [
          lock(tx, key),
          .../** @type {Uint8Array[]} */ (byKey.get(key)).map((entry) => tx`
            INSERT INTO teleportal_entries (key, seq, data)
            SELECT ${key}, coalesce(max(seq), 0) + 1, ${entry} FROM teleportal_entries WHERE key = ${key}`),
        ])));
    },
    async compact(key, merge) {
      await sql.begin(async (tx) => {
        await lock(tx, key);
        const rows = await tx`SELECT seq, data FROM teleportal_entries WHERE key = ${key} ORDER BY seq`;
        if (rows.length === 0) return;
        const merged = entryBytes(key, merge(rows.map((row) => asBytes(row.data))));
        await tx`DELETE FROM teleportal_entries WHERE key = ${key}`;
        await tx`INSERT INTO teleportal_entries (key, seq, data) VALUES (${key}, ${Number(rows[rows.length - 1].seq)}, ${merged})`;
      });
    },
    async delete(key) {
      await sql.begin(async (tx) => {
        await lock(tx, key);
        await tx`DELETE FROM teleportal_entries WHERE key = ${key}`;
        await tx`DELETE FROM teleportal_milestones WHERE key = ${key}`;
      });
    },
    async loadMilestones(key) {
      const rows = await sql`SELECT id, meta FROM teleportal_milestones WHERE key = ${key} ORDER BY seq`;
      return rows.map((row) => ({ id: row.id, meta: ownBytes(row.meta) }));
    },
    async putMilestone(key, id, meta, snapshot) {
      checkMilestone(key, id, meta, snapshot);
      await sql.begin(async (tx) => {
        await lock(tx, key);
        // A known id keeps its seq (its place) and, when no snapshot is given, its snapshot.
        await tx`
          INSERT INTO teleportal_milestones (key, id, seq, meta, snapshot)
          SELECT ${key}, ${id}, coalesce(max(seq), 0) + 1, ${meta}, ${snapshot ?? null}::bytea FROM teleportal_milestones WHERE key = ${key}
          ON CONFLICT (key, id) DO UPDATE SET meta = excluded.meta, snapshot = coalesce(excluded.snapshot, teleportal_milestones.snapshot)`;
      });
    },
    async deleteMilestone(key, id) {
      await sql`DELETE FROM teleportal_milestones WHERE key = ${key} AND id = ${id}`;
    },
    async loadMilestoneSnapshot(key, id) {
      const [row] = await sql`SELECT snapshot FROM teleportal_milestones WHERE key = ${key} AND id = ${id}`;
      return row?.snapshot == null ? undefined : ownBytes(row.snapshot);
    },
    async ping() {
      await sql`SELECT 1`;
    },
    close: () => sql.end(),
  };
}

/** @param {string} url @returns {Promise<Sql>} */
async function connect(url) {
  requireBunOrNode("openPostgresStorage");
  const { Bun } = /** @type {any} */ (globalThis);
  if (Bun) return new Bun.SQL(url);
  let postgres;
  try {
    postgres = (await runtimeImport("postgres")).default;
  } catch (err) {
    if (/** @type {{ code?: string }} */ (err).code !== "ERR_MODULE_NOT_FOUND") throw err;
    throw new Error("openPostgresStorage on Node needs the `postgres` package: npm install postgres@3", { cause: err });
  }
  // onnotice: CREATE TABLE IF NOT EXISTS reports "already exists" as a notice; not worth a log line.
  return postgres(url, { onnotice: () => {} });
}
