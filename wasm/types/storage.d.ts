// teleportal/storage: where documents live between loads. Every method may be synchronous or
// return a Promise; the Server awaits each. The Server decides what to store and when (the C++
// core emits the writes); an implementation only moves bytes and keeps the promises below.
//
// A document is identified by its storage key (the Server's session key: the room, escaped, then
// "/", then the document name; e.g. "room-1/notes", "a%2Fb/c"). What is stored per key is an
// ordered list of entries. Each entry is opaque bytes (a content-encrypted envelope holding a
// Y.js V2 update and encrypted sidecars); implementations never look inside.

export interface DocumentStorage {
  /** Every entry stored for `key`, in the order they were appended; [] when there is none. */
  load(key: string): Promise<Uint8Array[]> | Uint8Array[];

  /**
   * Appends entries, possibly to several documents, as ONE atomic, durable transaction (group
   * commit: the Server batches what one event-loop turn accepted). Resolves only after the commit
   * (the Server acknowledges the updates then); rejects when nothing was stored. Within one key,
   * entries keep their array order and come after everything committed before.
   */
  commit(writes: StorageWrite[]): Promise<void> | void;

  /**
   * Replaces every entry currently stored for `key` by `merge(entries)`, atomically: a concurrent
   * commit (from this process or another node sharing the database) is either merged or kept
   * after the merged entry, never lost. `merge` is synchronous and may throw (then nothing
   * changes and compact rejects).
   */
  compact(key: string, merge: (entries: Uint8Array[]) => Uint8Array): Promise<void> | void;

  /** Removes everything stored for `key`. */
  delete(key: string): Promise<void> | void;

  /** Rejects when the storage is unreachable (GET /health). */
  ping?(): Promise<void> | void;

  /** Releases connections and files. */
  close?(): Promise<void> | void;
}

export interface StorageWrite {
  key: string;
  entry: Uint8Array;
}

/** Entries in process memory: for tests, and for users who explicitly want no durability. */
export declare class MemoryDocumentStorage implements DocumentStorage {
  constructor();
  load(key: string): Uint8Array[];
  commit(writes: StorageWrite[]): void;
  compact(key: string, merge: (entries: Uint8Array[]) => Uint8Array): void;
  delete(key: string): void;
  /** Keys that hold at least one entry. */
  keys(): string[];
}

export interface SqliteStorageOptions {
  /** File path; ":memory:" for a throwaway database. */
  path: string;
  /** "NORMAL" (default: durable across a process crash) or "FULL" (also across power loss). */
  synchronous?: "NORMAL" | "FULL";
}

/**
 * SQLite in WAL mode, one schema for every runtime: bun:sqlite on Bun, better-sqlite3 (12) or
 * node:sqlite on Node. Opens (and creates) the file and its directory.
 */
export declare function openSqliteStorage(options: SqliteStorageOptions): Promise<DocumentStorage>;

/** The Durable Object's SQLite storage (`ctx.storage`, a `new_sqlite_classes` object). */
export declare function createDurableObjectStorage(storage: unknown): DocumentStorage;

/** PostgreSQL (`postgres://...`): Bun.sql on Bun, the `postgres` package on Node. */
export declare function openPostgresStorage(url: string): Promise<DocumentStorage>;
