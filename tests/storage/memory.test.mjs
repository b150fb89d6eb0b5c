// MemoryDocumentStorage: the contract, and what only memory has (keys(), copies of what it is given).
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryDocumentStorage } from "teleportal/storage";
import { defineContract } from "./harness.mjs";

defineContract("memory", async () => {
  const storage = new MemoryDocumentStorage();
  return { open: () => storage };
});

test("memory: keys() lists the keys that hold entries; commit stores a copy of each entry", () => {
  const s = new MemoryDocumentStorage();
  const entry = Uint8Array.of(1, 2, 3);
  s.commit([{ key: "a/b", entry }, { key: "c", entry: Uint8Array.of(9) }]);
  entry[0] = 7;
  assert.deepEqual(s.load("a/b"), [Uint8Array.of(1, 2, 3)]);
  assert.deepEqual(s.keys().sort(), ["a/b", "c"]);
  s.delete("c");
  assert.deepEqual(s.keys(), ["a/b"]);
  s.load("a/b").push(Uint8Array.of(0));
  assert.equal(s.load("a/b").length, 1, "the array load returns is the caller's");
});
