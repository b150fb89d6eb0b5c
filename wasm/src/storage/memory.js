// Entries in process memory: for tests, and for users who explicitly want no durability.
import { entryBytes } from "./common.js";

/** @typedef {import("../../types/storage.js").DocumentStorage} DocumentStorage */
/** @typedef {import("../../types/storage.js").StorageWrite} StorageWrite */

/** @implements {DocumentStorage} */
export class MemoryDocumentStorage {
  /** @type {Map<string, Uint8Array[]>} */
  #documents = new Map();

  /** @param {string} key */
  load(key) {
    return [...(this.#documents.get(key) ?? [])];
  }

  /** Checks every write first, then stores copies: all or nothing. @param {StorageWrite[]} writes */
  commit(writes) {
    const checked = writes.map(({ key, entry }) => [key, entryBytes(key, entry).slice()]);
    for (const [key, entry] of /** @type {[string, Uint8Array][]} */ (checked)) {
      const entries = this.#documents.get(key);
      if (entries) entries.push(entry);
      else this.#documents.set(key, [entry]);
    }
  }

  /** @param {string} key @param {(entries: Uint8Array[]) => Uint8Array} merge */
  compact(key, merge) {
    const entries = this.#documents.get(key);
    if (!entries?.length) return;
    this.#documents.set(key, [entryBytes(key, merge([...entries])).slice()]);
  }

  /** @param {string} key */
  delete(key) {
    this.#documents.delete(key);
  }

  /** Keys that hold at least one entry. */
  keys() {
    return [...this.#documents.keys()];
  }
}
