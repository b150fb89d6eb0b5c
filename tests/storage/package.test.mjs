// teleportal/storage from the packed package, installed without its optional peers (better-sqlite3,
// postgres): Bun needs neither; Node says what to install.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { installPackedPackage } from "../support/package.mjs";
import { bun } from "./harness.mjs";

/** @type {ReturnType<typeof installPackedPackage>} */
let project;
before(() => {
  project = installPackedPackage();
  writeFileSync(join(project.dir, "storage.mjs"), `
import { MemoryDocumentStorage, openSqliteStorage, openPostgresStorage } from "teleportal/storage";
const memory = new MemoryDocumentStorage();
memory.commit([{ key: "k", entry: Uint8Array.of(1) }]);
const sqlite = await openSqliteStorage({ path: "data/docs.db" }).then(async (s) => {
  await s.commit([{ key: "k", entry: Uint8Array.of(1) }, { key: "k", entry: Uint8Array.of(2) }]);
  const n = (await s.load("k")).length;
  await s.close?.();
  return n;
}, (err) => err.message);
const postgres = await openPostgresStorage("postgres://postgres@127.0.0.1:1/none").then(() => "opened", (err) => err.message);
console.log(JSON.stringify({ memory: memory.load("k").length, sqlite, postgres }));
`);
});
after(() => project?.remove());

const run = (/** @type {string} */ command) => JSON.parse(execFileSync(command, ["storage.mjs"], { cwd: project.dir, encoding: "utf8", timeout: 60_000 }));

test("package: teleportal/storage in Node without better-sqlite3 or postgres names what to install", () => {
  assert.ok(!existsSync(join(project.dir, "node_modules", "better-sqlite3")), "optional peers are not installed");
  const out = run(process.execPath);
  assert.equal(out.memory, 1);
  assert.match(out.sqlite, /no SQLite driver in Node v\d+.*npm install better-sqlite3@12.*node:sqlite/);
  assert.match(out.postgres, /needs the `postgres` package: npm install postgres@3/);
});

test("package: teleportal/storage in Bun uses bun:sqlite and Bun.sql (no npm driver)", () => {
  const out = run(bun);
  assert.equal(out.memory, 1);
  assert.equal(out.sqlite, 2);
  assert.match(out.postgres, /ECONNREFUSED|connect|refused/i);
  assert.ok(existsSync(join(project.dir, "data", "docs.db")), "the directory and the file were created");
});
