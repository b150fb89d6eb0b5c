// Entries and milestones in process memory: for tests, and for users who explicitly want no
// durability. What goes in and what comes out are copies, as bytes read from a database would be.
import { entryBytes, checkMilestone } from "./common.js";

/** @typedef {import("../../types/storage.js").DocumentStorage} DocumentStorage */
/** @typedef {import("../../types/storage.js").MilestoneStorage} MilestoneStorage */
/** @typedef {import("../../types/storage.js").StorageWrite} StorageWrite */

/** @implements {DocumentStorage} @implements {MilestoneStorage} */
export class MemoryDocumentStorage {
  /** @type {Map<string, Uint8Array[]>} */
  #documents = new Map();
  /** Per key, by id in insertion order (a Map keeps the place of a key that is set again). @type {Map<string, Map<string, { meta: Uint8Array, snapshot?: Uint8Array }>>} */
  #milestones = new Map();

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
    this.#milestones.delete(key);
  }

  /** @param {string} key */
  loadMilestones(key) {
    return [...(this.#milestones.get(key) ?? [])].map(([id, { meta }]) => ({ id, meta: meta.slice() }));
  }

  /** @param {string} key @param {string} id @param {Uint8Array} meta @param {Uint8Array} [snapshot] */
  putMilestone(key, id, meta, snapshot) {
    checkMilestone(key, id, meta, snapshot);
    let milestones = this.#milestones.get(key);
    if (!milestones) this.#milestones.set(key, (milestones = new Map()));
    milestones.set(id, { meta: meta.slice(), snapshot: snapshot ? snapshot.slice() : milestones.get(id)?.snapshot });
  }

  /** @param {string} key @param {string} id */
  deleteMilestone(key, id) {
    const milestones = this.#milestones.get(key);
    milestones?.delete(id);
    if (milestones?.size === 0) this.#milestones.delete(key);
  }

  /** @param {string} key @param {string} id */
  loadMilestoneSnapshot(key, id) {
    return this.#milestones.get(key)?.get(id)?.snapshot?.slice();
  }

  /** Keys that hold at least one entry. */
  keys() {
    return [...this.#documents.keys()];
  }
}
