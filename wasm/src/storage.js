// teleportal/storage: where documents live between loads (the contract: types/storage.d.ts).
// Each backend is its own module; runtime modules (bun:sqlite, better-sqlite3, node:sqlite,
// postgres, node:fs) are imported only when a backend is opened, so this entry point loads in
// Bun, Node and workerd alike and a workerd bundle contains none of them.
export { MemoryDocumentStorage } from "./storage/memory.js";
export { openSqliteStorage } from "./storage/sqlite-file.js";
export { openPostgresStorage } from "./storage/postgres.js";
export { createDurableObjectStorage } from "./storage/durable-object.js";
