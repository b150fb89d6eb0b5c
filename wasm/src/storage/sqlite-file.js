// openSqliteStorage: a SQLite database file through the runtime's own driver (bun:sqlite on Bun;
// better-sqlite3 12, else node:sqlite, on Node), WAL mode, the schema of ./sqlite.js.
import { requireBunOrNode, runtimeImport } from "./common.js";
import { SCHEMA, sqliteStorage } from "./sqlite.js";

/** @typedef {import("../../types/storage.js").SqliteStorageOptions} SqliteStorageOptions */
/**
 * What bun:sqlite's Database, better-sqlite3's Database and node:sqlite's DatabaseSync share.
 * @typedef {{ exec(sql: string): unknown, prepare(sql: string): any, close(): void }} Database
 */

/** How long a writer waits for another process's write transaction before failing. */
const BUSY_TIMEOUT_MS = 5000;

/** @param {SqliteStorageOptions} options */
export async function openSqliteStorage({ path, synchronous = "NORMAL" }) {
  requireBunOrNode("openSqliteStorage");
  if (typeof path !== "string" || path === "") throw new TypeError("openSqliteStorage: `path` must be a file path or \":memory:\"");
  if (synchronous !== "NORMAL" && synchronous !== "FULL") throw new TypeError(`openSqliteStorage: synchronous must be "NORMAL" or "FULL", got ${JSON.stringify(synchronous)}`);
  if (path !== ":memory:") {
    const [{ mkdirSync }, { dirname }] = await Promise.all([runtimeImport("node:fs"), runtimeImport("node:path")]);
    mkdirSync(dirname(path), { recursive: true });
  }
  const storage = sqliteFileStorage(await openDatabase(path), synchronous);
  if (path !== ":memory:") {
    // A file removed under the running server would take every later write with it (they go to
    // an unlinked file): ping says so (GET /health).
    const { statSync } = await runtimeImport("node:fs");
    const query = storage.ping;
    storage.ping = () => {
      query?.();
      try {
        statSync(path);
      } catch (err) {
        throw new Error(`the database file ${path} is gone (${err instanceof Error && "code" in err ? err.code : String(err)})`);
      }
    };
  }
  return storage;
}

/**
 * The storage over an open database file (exported for tests that bring their own driver).
 * @param {Database} db @param {"NORMAL" | "FULL"} [synchronous]
 */
export function sqliteFileStorage(db, synchronous = "NORMAL") {
  try {
    // busy_timeout first: switching to WAL already needs the lock another process may hold.
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(synchronous === "FULL" ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    db.exec(SCHEMA);
  } catch (err) {
    db.close();
    throw err;
  }
  return sqliteStorage({
    prepare: (sql) => db.prepare(sql),
    transaction(body) {
      db.exec("BEGIN IMMEDIATE");
      try {
        const result = body();
        db.exec("COMMIT");
        return result;
      } catch (err) {
        try {
          db.exec("ROLLBACK");
        } catch {
          // SQLite already rolled back (e.g. a failed COMMIT); the first error is the one to report
        }
        throw err;
      }
    },
    close: () => db.close(),
  });
}

/** @param {string} path @returns {Promise<Database>} */
async function openDatabase(path) {
  if ("Bun" in globalThis) {
    const { Database } = await runtimeImport("bun:sqlite");
    return new Database(path, { create: true });
  }
  const better = await optionalImport("better-sqlite3");
  if (better) return new better.default(path);
  const builtin = await optionalImport("node:sqlite");
  if (builtin) return new builtin.DatabaseSync(path);
  throw new Error(
    `openSqliteStorage: no SQLite driver in Node ${process.version}. Install better-sqlite3 12 ` +
      "(npm install better-sqlite3@12), or run Node 22.13 or later (built-in node:sqlite).",
  );
}

/** The module, or undefined when it is not installed (any other failure to load is thrown). @param {string} specifier */
async function optionalImport(specifier) {
  try {
    return await runtimeImport(specifier);
  } catch (err) {
    const code = /** @type {{ code?: string }} */ (err).code;
    if (code === "ERR_UNKNOWN_BUILTIN_MODULE" || (code === "ERR_MODULE_NOT_FOUND" && String(err).includes(`'${specifier}'`))) return undefined;
    throw err;
  }
}
