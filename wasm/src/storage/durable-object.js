// createDurableObjectStorage: the entries and milestones in a SQLite-backed Durable Object
// (`ctx.storage`, a `new_sqlite_classes` object), same schema as the database files. Nothing is
// read when the object starts: each load reads one document.
import { SCHEMA, sqliteStorage } from "./sqlite.js";

/**
 * The part of workerd's DurableObjectStorage used here.
 * @typedef {object} SqliteDurableObjectStorage
 * @property {{ exec(sql: string, ...params: unknown[]): { toArray(): any[] } }} sql
 * @property {<T>(body: () => T) => T} transactionSync
 */

/** @param {unknown} storage `ctx.storage` */
export function createDurableObjectStorage(storage) {
  const { sql } = /** @type {SqliteDurableObjectStorage} */ (storage ?? {});
  if (typeof sql?.exec !== "function") {
    throw new TypeError("createDurableObjectStorage needs ctx.storage of a SQLite-backed Durable Object (new_sqlite_classes in the migration)");
  }
  const objectStorage = /** @type {SqliteDurableObjectStorage} */ (storage);
  sql.exec(SCHEMA);
  return sqliteStorage({
    prepare: (query) => ({
      all: (...params) => sql.exec(query, ...params).toArray(),
      run: (...params) => sql.exec(query, ...params).toArray(),
    }),
    // A throw inside transactionSync rolls the transaction back; BEGIN is not allowed in sql.exec.
    transaction: (body) => objectStorage.transactionSync(body),
  });
}
