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

  /** Removes everything stored for `key`: its entries and, in a MilestoneStorage, its milestones. */
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

/**
 * Milestones (named snapshots of a document, kept apart from its entries), implemented by the
 * same object as DocumentStorage, in the same database. Every method may be synchronous or return
 * a Promise; keys are the same session keys as for documents. Per key, what is stored is an
 * ordered list (creation order) of milestones, each an id, a meta record and an optional snapshot.
 * The Server decides everything (ids, names, soft or hard deletion, errors) and encodes each
 * milestone's metadata as one opaque meta record (the binary meta entry of the Teleportal
 * milestone format); implementations never look inside the meta record or the snapshot.
 * Bytes read are Uint8Arrays of their own (never views into a driver's shared buffers), byte for
 * byte what was stored, an empty array included; snapshots of several MB are fine.
 */
export interface MilestoneStorage {
  /** Every milestone stored for `key`, in the order they were first put; [] when there is none. */
  loadMilestones(key: string): Promise<StoredMilestone[]> | StoredMilestone[];

  /**
   * Puts a milestone, atomically and durably when it resolves (as `commit`: the Server answers
   * the RPC then). A new `id` is added after the document's other milestones, with `snapshot`
   * (none when undefined). A known `id` keeps its place: its meta record is replaced, and its
   * snapshot too when `snapshot` is given (undefined keeps the stored one).
   */
  putMilestone(key: string, id: string, meta: Uint8Array, snapshot?: Uint8Array): Promise<void> | void;

  /** Removes the milestone (meta record and snapshot); an unknown `id` is no error. */
  deleteMilestone(key: string, id: string): Promise<void> | void;

  /** The milestone's snapshot as stored; undefined for an unknown `id` or a milestone stored without one. */
  loadMilestoneSnapshot(key: string, id: string): Promise<Uint8Array | undefined> | Uint8Array | undefined;
}

export interface StoredMilestone {
  id: string;
  meta: Uint8Array;
}

/**
 * Entries and milestones in process memory: for tests, and for users who explicitly want no
 * durability. It stores copies of what it is given and hands out copies.
 */
export declare class MemoryDocumentStorage implements DocumentStorage, MilestoneStorage {
  constructor();
  load(key: string): Uint8Array[];
  commit(writes: StorageWrite[]): void;
  compact(key: string, merge: (entries: Uint8Array[]) => Uint8Array): void;
  delete(key: string): void;
  loadMilestones(key: string): StoredMilestone[];
  putMilestone(key: string, id: string, meta: Uint8Array, snapshot?: Uint8Array): void;
  deleteMilestone(key: string, id: string): void;
  loadMilestoneSnapshot(key: string, id: string): Uint8Array | undefined;
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
export declare function openSqliteStorage(options: SqliteStorageOptions): Promise<DocumentStorage & MilestoneStorage>;

/** The Durable Object's SQLite storage (`ctx.storage`, a `new_sqlite_classes` object). */
export declare function createDurableObjectStorage(storage: unknown): DocumentStorage & MilestoneStorage;

/** PostgreSQL (`postgres://...`): Bun.sql on Bun, the `postgres` package on Node. */
export declare function openPostgresStorage(url: string): Promise<DocumentStorage & MilestoneStorage>;
