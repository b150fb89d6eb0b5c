// teleportal/storage: document storage backends behind one interface (types/storage.d.ts).
// (Placeholder until the backends land: the in-memory store only.)

/** Entries in process memory: for tests and for users who explicitly want no durability. */
export class MemoryDocumentStorage {
  #docs = new Map();
  load(key) {
    return (this.#docs.get(key) ?? []).slice();
  }
  commit(writes) {
    for (const { key, entry } of writes) {
      if (!(entry instanceof Uint8Array)) throw new TypeError("entry must be a Uint8Array");
    }
    for (const { key, entry } of writes) {
      if (!this.#docs.has(key)) this.#docs.set(key, []);
      this.#docs.get(key).push(entry.slice());
    }
  }
  compact(key, merge) {
    const entries = this.#docs.get(key);
    if (!entries?.length) return;
    this.#docs.set(key, [merge(entries.slice())]);
  }
  delete(key) {
    this.#docs.delete(key);
  }
  keys() {
    return [...this.#docs.keys()];
  }
}
