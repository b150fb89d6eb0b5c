// One SQLite schema and one implementation for every SQLite: database files (bun:sqlite,
// better-sqlite3, node:sqlite) and Durable Objects. An entry is stored as parts of at most 1 MiB
// (rows of one (key, seq)), because a SQLite-backed Durable Object refuses a value over 2 MiB; so
// is a milestone's snapshot (rows of one (key, id)), apart from its meta record so that listing the
// milestones reads no snapshot.
import { asBytes, entryBytes, checkMilestone, ownBytes } from "./common.js";

/** @typedef {import("../../types/storage.js").DocumentStorage} DocumentStorage */
/** @typedef {import("../../types/storage.js").MilestoneStorage} MilestoneStorage */
/** @typedef {import("../../types/storage.js").StorageWrite} StorageWrite */
/** @typedef {string | number | Uint8Array | null} SqlValue */
/**
 * A synchronous SQLite handle.
 * @typedef {object} SqliteHandle
 * @property {(sql: string) => { all(...params: SqlValue[]): any[], run(...params: SqlValue[]): unknown }} prepare
 * @property {<T>(body: () => T) => T} transaction runs `body` as one write transaction (taken
 *   before the first read, so no other writer interleaves); a throw rolls it back
 * @property {() => void} [close]
 */

export const PART_BYTES = 1 << 20;

export const SCHEMA = `CREATE TABLE IF NOT EXISTS teleportal_entries (
  key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  part INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (key, seq, part)
);
CREATE TABLE IF NOT EXISTS teleportal_milestones (
  key TEXT NOT NULL,
  id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  meta BLOB NOT NULL,
  PRIMARY KEY (key, id)
);
CREATE TABLE IF NOT EXISTS teleportal_milestone_parts (
  key TEXT NOT NULL,
  id TEXT NOT NULL,
  part INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (key, id, part)
)`;
const LOAD = "SELECT seq, data FROM teleportal_entries WHERE key = ? ORDER BY seq, part";
const LAST = "SELECT coalesce(max(seq), 0) AS seq FROM teleportal_entries WHERE key = ?";
const INSERT = "INSERT INTO teleportal_entries (key, seq, part, data) VALUES (?, ?, ?, ?)";
const DELETE = "DELETE FROM teleportal_entries WHERE key = ?";
const MILESTONES = "SELECT id, meta FROM teleportal_milestones WHERE key = ? ORDER BY seq";
// A new id goes after the document's last milestone; a known one keeps its place (seq).
const PUT_MILESTONE = `INSERT INTO teleportal_milestones (key, id, seq, meta)
  SELECT ?, ?, coalesce(max(seq), 0) + 1, ? FROM teleportal_milestones WHERE key = ?
  ON CONFLICT (key, id) DO UPDATE SET meta = excluded.meta`;
const DELETE_MILESTONE = "DELETE FROM teleportal_milestones WHERE key = ? AND id = ?";
const DELETE_MILESTONES = "DELETE FROM teleportal_milestones WHERE key = ?";
const SNAPSHOT = "SELECT data FROM teleportal_milestone_parts WHERE key = ? AND id = ? ORDER BY part";
const INSERT_SNAPSHOT = "INSERT INTO teleportal_milestone_parts (key, id, part, data) VALUES (?, ?, ?, ?)";
const DELETE_SNAPSHOT = "DELETE FROM teleportal_milestone_parts WHERE key = ? AND id = ?";
const DELETE_SNAPSHOTS = "DELETE FROM teleportal_milestone_parts WHERE key = ?";

/**
 * The storage over an open handle whose schema exists. Every method is synchronous.
 * @param {SqliteHandle} db
 * @returns {DocumentStorage & MilestoneStorage}
 */
export function sqliteStorage(db) {
  /** @type {Map<string, ReturnType<SqliteHandle["prepare"]>>} */
  const statements = new Map();
  const statement = (/** @type {string} */ sql) => {
    let s = statements.get(sql);
    if (!s) statements.set(sql, (s = db.prepare(sql)));
    return s;
  };
  /** Writes `bytes` as rows (key, at, part, data) of `sql`; at least one, so that [] stays apart from none. */
  const insertParts = (/** @type {string} */ sql, /** @type {string} */ key, /** @type {number | string} */ at, /** @type {Uint8Array} */ bytes) => {
    const parts = Math.max(1, Math.ceil(bytes.length / PART_BYTES));
    for (let part = 0; part < parts; part++) {
      statement(sql).run(key, at, part, bytes.subarray(part * PART_BYTES, (part + 1) * PART_BYTES));
    }
  };
  const insert = (/** @type {string} */ key, /** @type {number} */ seq, /** @type {Uint8Array} */ bytes) => insertParts(INSERT, key, seq, bytes);
  /** @returns {{ seq: number, entries: Uint8Array[] }} the entries of `key` and the last seq */
  const read = (/** @type {string} */ key) => {
    /** @type {Uint8Array[][]} */
    const entries = [];
    let last = 0;
    for (const { seq, data } of statement(LOAD).all(key)) {
      if (seq === last) entries[entries.length - 1].push(asBytes(data));
      else entries.push([asBytes(data)]);
      last = seq;
    }
    return { seq: last, entries: entries.map(join) };
  };

  return {
    load: (key) => read(key).entries,
    commit(writes) {
      if (writes.length === 0) return;
      db.transaction(() => {
        /** @type {Map<string, number>} */
        const last = new Map();
        for (const { key, entry } of writes) {
          const bytes = entryBytes(key, entry);
          const seq = (last.get(key) ?? statement(LAST).all(key)[0].seq) + 1;
          last.set(key, seq);
          insert(key, seq, bytes);
        }
      });
    },
    compact(key, merge) {
      db.transaction(() => {
        const { seq, entries } = read(key);
        if (entries.length === 0) return;
        const merged = entryBytes(key, merge(entries));
        statement(DELETE).run(key);
        insert(key, seq, merged);
      });
    },
    delete(key) {
      db.transaction(() => {
        statement(DELETE).run(key);
        statement(DELETE_MILESTONES).run(key);
        statement(DELETE_SNAPSHOTS).run(key);
      });
    },
    loadMilestones: (key) => statement(MILESTONES).all(key).map(({ id, meta }) => ({ id, meta: ownBytes(meta) })),
    putMilestone(key, id, meta, snapshot) {
      checkMilestone(key, id, meta, snapshot);
      db.transaction(() => {
        statement(PUT_MILESTONE).run(key, id, meta, key);
        if (snapshot === undefined) return;
        statement(DELETE_SNAPSHOT).run(key, id);
        insertParts(INSERT_SNAPSHOT, key, id, snapshot);
      });
    },
    deleteMilestone(key, id) {
      db.transaction(() => {
        statement(DELETE_MILESTONE).run(key, id);
        statement(DELETE_SNAPSHOT).run(key, id);
      });
    },
    loadMilestoneSnapshot(key, id) {
      const parts = statement(SNAPSHOT).all(key, id).map(({ data }) => asBytes(data));
      if (parts.length === 0) return undefined;
      return parts.length === 1 ? ownBytes(parts[0]) : join(parts);
    },
    ping() {
      statement("SELECT 1 AS one").all();
    },
    ...(db.close && {
      close() {
        statements.clear();
        db.close?.();
      },
    }),
  };
}

/** @param {Uint8Array[]} parts */
function join(parts) {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}
