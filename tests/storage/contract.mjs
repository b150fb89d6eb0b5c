// The storage contract (wasm/types/storage.d.ts), written once and run against every backend: by
// node:test in Node (./harness.mjs), and inside Bun and inside a Durable Object by runContract,
// whose results the Node tests then report case by case. Plain JavaScript only: no runtime
// modules, so the same file runs in Node, Bun and workerd.

/** @typedef {import("teleportal/storage").DocumentStorage & import("teleportal/storage").MilestoneStorage} DocumentStorage */
/**
 * @typedef {object} Backend
 * @property {() => Promise<DocumentStorage> | DocumentStorage} open a new handle on the same
 *   database at every call (the memory backend returns its one instance)
 */
/**
 * @typedef {object} Case
 * @property {string} name
 * @property {(backend: Backend, key: (name: string) => string) => Promise<void | "skip">} run
 *   `key` gives names unique to this run and case, so cases share a database without meeting
 */
/** @typedef {{ name: string, status: "pass" | "fail" | "skip", error?: string, ms: number }} CaseResult */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (/** @type {string} */ text) => encoder.encode(text);
const text = (/** @type {Uint8Array} */ entry) => decoder.decode(entry);

/** @param {unknown} ok @param {string} message */
function check(ok, message) {
  if (!ok) throw new Error(message);
}

/** @param {unknown} actual @param {unknown} expected @param {string} what */
function equal(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  check(a === e, `${what}: expected ${e.slice(0, 300)}, got ${a.slice(0, 300)}`);
}

/** Loads `key` and checks it holds plain Uint8Arrays with these texts, in this order. */
async function expectTexts(/** @type {DocumentStorage} */ s, /** @type {string} */ key, /** @type {string[]} */ expected, what = key) {
  const entries = await s.load(key);
  check(Array.isArray(entries), `${what}: load did not return an array`);
  for (const e of entries) check(Object.getPrototypeOf(e) === Uint8Array.prototype, `${what}: an entry is not a plain Uint8Array`);
  equal(entries.map(text), expected, what);
}

/** Calls `fn` (sync or async) and checks that it fails with a message matching `pattern`. */
async function rejects(/** @type {() => unknown} */ fn, /** @type {RegExp} */ pattern, /** @type {string} */ what) {
  let error;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  check(error !== undefined, `${what}: did not fail`);
  check(pattern.test(String(/** @type {Error} */ (error)?.message ?? error)), `${what}: failed with ${error}, expected ${pattern}`);
}

/** Opens handles for `body` and closes them afterwards, also when it throws. */
async function withHandles(/** @type {Backend} */ backend, /** @type {number} */ count, /** @type {(...s: DocumentStorage[]) => Promise<void | "skip">} */ body) {
  /** @type {DocumentStorage[]} */
  const handles = [];
  try {
    for (let i = 0; i < count; i++) handles.push(await backend.open());
    return await body(...handles);
  } finally {
    for (const h of handles) await h.close?.();
  }
}

/** Deterministic pseudo-random bytes (an LCG), so a corrupted or shifted part shows. */
function pattern(/** @type {number} */ length, seed = 1) {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** @param {Uint8Array} actual @param {Uint8Array} expected @param {string} what */
function sameBytes(actual, expected, what) {
  check(actual.length === expected.length, `${what}: ${actual.length} bytes, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) check(false, `${what}: byte ${i} differs`);
}

/** Checks that `b` is a plain Uint8Array over a buffer of its own (not a view into a larger one). */
function own(/** @type {unknown} */ b, /** @type {string} */ what) {
  check(b instanceof Uint8Array && Object.getPrototypeOf(b) === Uint8Array.prototype, `${what}: not a plain Uint8Array but ${b === undefined ? "undefined" : Object.prototype.toString.call(b)}`);
  const u = /** @type {Uint8Array} */ (b);
  check(u.byteOffset === 0 && u.buffer.byteLength === u.byteLength, `${what}: a view of ${u.byteLength} bytes at ${u.byteOffset} into a buffer of ${u.buffer.byteLength}`);
  return u;
}

/** The milestones of `key` as [id, meta text] pairs, each meta checked to be bytes of its own. */
async function milestones(/** @type {DocumentStorage} */ s, /** @type {string} */ key, what = key) {
  const list = await s.loadMilestones(key);
  check(Array.isArray(list), `${what}: loadMilestones did not return an array`);
  return list.map(({ id, meta }) => [id, text(own(meta, `${what}: meta of ${JSON.stringify(id)}`))]);
}

/** The snapshot of milestone `id` as text, or null when there is none (checked to be undefined then). */
async function snapshotText(/** @type {DocumentStorage} */ s, /** @type {string} */ key, /** @type {string} */ id) {
  const snapshot = await s.loadMilestoneSnapshot(key, id);
  return snapshot === undefined ? null : text(own(snapshot, `snapshot of ${JSON.stringify(id)} in ${key}`));
}

/** Checks the milestones of `key`: [id, meta text, snapshot text or null] in this order. */
async function expectMilestones(/** @type {DocumentStorage} */ s, /** @type {string} */ key, /** @type {(string | null)[][]} */ expected, what = key) {
  const listed = await milestones(s, key, what);
  /** @type {(string | null)[]} */
  const snapshots = [];
  for (const [id] of listed) snapshots.push(await snapshotText(s, key, id));
  equal(listed.map(([id, meta], i) => [id, meta, snapshots[i]]), expected, what);
}

/** Puts milestone `id` with meta and snapshot texts (no snapshot when `snapshot` is undefined). */
const put = (/** @type {DocumentStorage} */ s, /** @type {string} */ key, /** @type {string} */ id, /** @type {string} */ meta, /** @type {string | undefined} */ snapshot) =>
  s.putMilestone(key, id, bytes(meta), snapshot === undefined ? undefined : bytes(snapshot));

/** The merge the compaction cases use: the texts joined by "," (so a merged entry lists its sources). */
const joinMerge = (/** @type {Uint8Array[]} */ entries) => bytes(entries.map(text).join(","));
const flatten = (/** @type {Uint8Array[]} */ entries) => entries.flatMap((e) => text(e).split(","));

/** @type {Case[]} */
export const cases = [
  {
    name: "load of a key never written is []",
    run: (backend, key) => withHandles(backend, 1, (s) => expectTexts(s, key("nothing"), [])),
  },
  {
    name: "entries keep their order within a commit and across commits",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        await s.commit([{ key: key("doc"), entry: bytes("1") }, { key: key("doc"), entry: bytes("2") }]);
        await s.commit([{ key: key("doc"), entry: bytes("3") }]);
        await s.commit([]);
        await s.commit([{ key: key("doc"), entry: bytes("4") }, { key: key("doc"), entry: bytes("5") }]);
        await expectTexts(s, key("doc"), ["1", "2", "3", "4", "5"]);
      }),
  },
  {
    name: "one commit writes several keys, each in its own order",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        const writes = ["a1", "b1", "a2", "c1", "b2", "a3"].map((e) => ({ key: key(e[0]), entry: bytes(e) }));
        await s.commit(writes);
        await expectTexts(s, key("a"), ["a1", "a2", "a3"]);
        await expectTexts(s, key("b"), ["b1", "b2"]);
        await expectTexts(s, key("c"), ["c1"]);
      }),
  },
  {
    name: "reopen: what was committed and compacted is there after close and open",
    run: async (backend, key) => {
      await withHandles(backend, 1, async (s) => {
        await s.commit([{ key: key("kept"), entry: bytes("x") }, { key: key("kept"), entry: bytes("y") }]);
        await s.commit([{ key: key("compacted"), entry: bytes("p") }, { key: key("compacted"), entry: bytes("q") }]);
        await s.compact(key("compacted"), joinMerge);
      });
      await withHandles(backend, 1, async (s) => {
        await expectTexts(s, key("kept"), ["x", "y"]);
        await expectTexts(s, key("compacted"), ["p,q"]);
        await s.commit([{ key: key("kept"), entry: bytes("z") }]);
        await expectTexts(s, key("kept"), ["x", "y", "z"], "appending after reopen");
      });
    },
  },
  {
    name: "a failing commit stores nothing of its batch (entry that is not bytes, key that is not a string)",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        await s.commit([{ key: key("a"), entry: bytes("before") }]);
        const notBytes = [
          { key: key("a"), entry: bytes("a1") },
          { key: key("b"), entry: bytes("b1") },
          { key: key("a"), entry: bytes("a2") },
          { key: key("c"), entry: /** @type {any} */ ("not bytes") },
        ];
        await rejects(() => s.commit(notBytes), /Uint8Array/, "commit with a string entry");
        const notString = [{ key: key("a"), entry: bytes("a3") }, { key: /** @type {any} */ (42), entry: bytes("n") }];
        await rejects(() => s.commit(notString), /string/, "commit with a number key");
        await expectTexts(s, key("a"), ["before"]);
        await expectTexts(s, key("b"), []);
        await expectTexts(s, key("c"), []);
        await s.commit([{ key: key("a"), entry: bytes("after") }]);
        await expectTexts(s, key("a"), ["before", "after"], "a commit after the failed one");
      }),
  },
  {
    name: "after close, commit and load reject",
    run: async (backend, key) => {
      const s = await backend.open();
      if (!s.close) return "skip"; // nothing to close (memory, Durable Object)
      await s.commit([{ key: key("doc"), entry: bytes("x") }]);
      await s.close();
      await rejects(() => s.commit([{ key: key("doc"), entry: bytes("y") }]), /./, "commit after close");
      await rejects(() => s.load(key("doc")), /./, "load after close");
      await withHandles(backend, 1, (t) => expectTexts(t, key("doc"), ["x"], "what a closed handle tried to write"));
    },
  },
  {
    name: "compact replaces the entries by the merged one; later commits come after it",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        await s.commit(["1", "2", "3"].map((e) => ({ key: key("doc"), entry: bytes(e) })));
        await s.commit([{ key: key("other"), entry: bytes("o") }]);
        /** @type {string[][]} */
        const seen = [];
        await s.compact(key("doc"), (entries) => (seen.push(entries.map(text)), bytes("merged")));
        equal(seen, [["1", "2", "3"]], "merge was called once with every entry in order");
        await expectTexts(s, key("doc"), ["merged"]);
        await expectTexts(s, key("other"), ["o"], "another key is untouched");
        await s.commit([{ key: key("doc"), entry: bytes("4") }]);
        await expectTexts(s, key("doc"), ["merged", "4"]);
        await s.compact(key("doc"), joinMerge);
        await expectTexts(s, key("doc"), ["merged,4"], "a second compaction");
        let called = false;
        await s.compact(key("empty"), () => ((called = true), bytes("x")));
        check(!called, "merge is not called for a key without entries");
        await expectTexts(s, key("empty"), []);
      }),
  },
  {
    name: "compact with a merge that throws (or returns no bytes) rejects and changes nothing",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        await s.commit(["1", "2"].map((e) => ({ key: key("doc"), entry: bytes(e) })));
        await rejects(() => s.compact(key("doc"), () => { throw new Error("merge failed on purpose"); }), /merge failed on purpose/, "throwing merge");
        await expectTexts(s, key("doc"), ["1", "2"]);
        await rejects(() => s.compact(key("doc"), () => /** @type {any} */ ("text")), /Uint8Array/, "merge returning a string");
        await expectTexts(s, key("doc"), ["1", "2"]);
        await s.commit([{ key: key("doc"), entry: bytes("3") }]);
        await expectTexts(s, key("doc"), ["1", "2", "3"], "commits still append");
      }),
  },
  {
    name: "commits from a second handle while the first compacts: each merged or kept after, none lost",
    run: (backend, key) =>
      withHandles(backend, 2, async (compactor, writer) => {
        const doc = key("doc");
        const total = 60;
        /** @type {string[]} */
        const acked = [];
        let writing = true;
        let compactions = 0;
        await Promise.all([
          (async () => {
            for (let i = 0; i < total; i++) {
              await writer.commit([{ key: doc, entry: bytes(`w${i}`) }]);
              acked.push(`w${i}`);
            }
            writing = false;
          })(),
          (async () => {
            while (writing) {
              await compactor.compact(doc, joinMerge);
              compactions++;
            }
          })(),
        ]);
        check(compactions > 0, "no compaction ran while writing");
        const entries = await compactor.load(doc);
        equal(flatten(entries), acked, "every acknowledged write, in commit order");
        await expectTexts(writer, doc, entries.map(text), "both handles read the same");
      }),
  },
  {
    name: "delete removes one key only; the key can be written again",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        await s.commit([{ key: key("a"), entry: bytes("a1") }, { key: key("a"), entry: bytes("a2") }, { key: key("ab"), entry: bytes("b1") }]);
        await s.delete(key("a"));
        await expectTexts(s, key("a"), []);
        await expectTexts(s, key("ab"), ["b1"], "a key that starts with the deleted one");
        await s.delete(key("never-written"));
        await s.commit([{ key: key("a"), entry: bytes("a3") }]);
        await expectTexts(s, key("a"), ["a3"], "written again after delete");
      }),
  },
  {
    name: "keys with '/', '%', '_', spaces, unicode, and prefixes of each other stay apart",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        const names = ["", "room", "room/", "room/doc", "room%2Fdoc", "room_doc", "roo%", "roo_", "a b", "ü/文档/😀", "'; DROP TABLE teleportal_entries; --"];
        await s.commit(names.map((n, i) => ({ key: key(n), entry: bytes(`e${i}`) })));
        for (const [i, n] of names.entries()) await expectTexts(s, key(n), [`e${i}`], `key ${JSON.stringify(n)}`);
        await s.compact(key("roo%"), joinMerge);
        await s.delete(key("room_"));
        await s.delete(key("room"));
        await expectTexts(s, key("room"), []);
        for (const [i, n] of names.entries()) if (n !== "room") await expectTexts(s, key(n), [`e${i}`], `key ${JSON.stringify(n)} after delete of "room"`);
      }),
  },
  {
    name: "large and empty entries round-trip byte for byte (0 B, 1 MiB, 1 MiB + 1, 5 MB), also through compact",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        const sizes = [0, 1 << 20, (1 << 20) + 1, 5_000_000, 3];
        const entries = sizes.map((n, i) => pattern(n, i + 1));
        await s.commit(entries.map((entry) => ({ key: key("big"), entry })));
        const loaded = await s.load(key("big"));
        equal(loaded.length, entries.length, "entry count");
        loaded.forEach((e, i) => sameBytes(e, entries[i], `entry of ${sizes[i]} bytes`));
        const merged = pattern(5_000_000, 99);
        await s.compact(key("big"), () => merged);
        const [only, ...rest] = await s.load(key("big"));
        equal(rest.length, 0, "entries after compact");
        sameBytes(only, merged, "merged 5 MB entry");
      }),
  },
  {
    name: "ping resolves while the storage is reachable",
    run: (backend) =>
      withHandles(backend, 1, async (s) => {
        if (!s.ping) return "skip"; // memory: always reachable
        await s.ping();
      }),
  },
  {
    name: "1,000 writes to 10 keys in one commit",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        const writes = Array.from({ length: 1000 }, (_, i) => ({ key: key(`k${i % 10}`), entry: bytes(`${i}`) }));
        await s.commit(writes);
        for (let k = 0; k < 10; k++) {
          await expectTexts(s, key(`k${k}`), Array.from({ length: 100 }, (_, i) => `${i * 10 + k}`));
        }
      }),
  },
  {
    name: "milestones: none for a document without any (also one with entries); an unknown id has no snapshot",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        await s.commit([{ key: key("doc"), entry: bytes("e") }]);
        equal(await milestones(s, key("doc")), [], "a document with entries");
        equal(await milestones(s, key("never")), [], "a document never written");
        check((await s.loadMilestoneSnapshot(key("doc"), "unknown")) === undefined, "snapshot of an unknown id is not undefined");
        await s.deleteMilestone(key("never"), "unknown");
        equal(await milestones(s, key("never")), [], "after deleting an unknown id");
        await expectTexts(s, key("doc"), ["e"], "the entries are untouched");
      }),
  },
  {
    name: "milestones: listed in the order they were put (60 ids that do not sort that way), each with its own meta and snapshot",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        const ids = Array.from({ length: 60 }, (_, i) => `m-${((i * 7919) % 1000).toString(36)}`);
        check(JSON.stringify([...ids].sort()) !== JSON.stringify(ids), "the ids must not be put in sorted order");
        for (const [i, id] of ids.entries()) {
          await put(s, key("doc"), id, `meta ${i}`, `snapshot ${i}`);
          if (i % 10 === 0) await put(s, key("other"), id, `other ${i}`, undefined);
        }
        await expectMilestones(s, key("doc"), ids.map((id, i) => [id, `meta ${i}`, `snapshot ${i}`]));
        await expectMilestones(s, key("other"), ids.filter((_, i) => i % 10 === 0).map((id, i) => [id, `other ${i * 10}`, null]), "another document");
      }),
  },
  {
    name: "milestones: a put of a known id replaces its meta and keeps its place and snapshot; a snapshot given replaces it",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        for (const id of ["a", "b", "c"]) await put(s, key("doc"), id, id, `s${id}`);
        await put(s, key("doc"), "b", "b2", undefined);
        await expectMilestones(s, key("doc"), [["a", "a", "sa"], ["b", "b2", "sb"], ["c", "c", "sc"]], "meta of b replaced");
        await put(s, key("doc"), "a", "a2", "sa2");
        await expectMilestones(s, key("doc"), [["a", "a2", "sa2"], ["b", "b2", "sb"], ["c", "c", "sc"]], "meta and snapshot of a replaced");
        await put(s, key("doc"), "d", "d", "sd");
        await put(s, key("doc"), "c", "c3", undefined);
        await put(s, key("doc"), "c", "c4", undefined);
        await expectMilestones(s, key("doc"), [["a", "a2", "sa2"], ["b", "b2", "sb"], ["c", "c4", "sc"], ["d", "d", "sd"]], "c replaced twice after d was added");
      }),
  },
  {
    name: "milestones: an absent snapshot stays apart from an empty one; empty meta records round-trip",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        await put(s, key("doc"), "none", "", undefined);
        await put(s, key("doc"), "empty", "m", "");
        const empty = await s.loadMilestoneSnapshot(key("doc"), "empty");
        check(empty !== undefined && own(empty, "empty snapshot").length === 0, `the empty snapshot came back as ${empty}`);
        await expectMilestones(s, key("doc"), [["none", "", null], ["empty", "m", ""]]);
        await put(s, key("doc"), "none", "m2", undefined);
        await put(s, key("doc"), "empty", "m3", undefined);
        await expectMilestones(s, key("doc"), [["none", "m2", null], ["empty", "m3", ""]], "after replacing both metas");
        await put(s, key("doc"), "none", "m4", "late");
        await put(s, key("doc"), "empty", "m5", "");
        await expectMilestones(s, key("doc"), [["none", "m4", "late"], ["empty", "m5", ""]], "a snapshot given later");
      }),
  },
  {
    name: "milestones: deleteMilestone removes meta and snapshot; an unknown id is a no-op; an id put again goes last, without its old snapshot",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        for (const id of ["a", "b", "c"]) await put(s, key("doc"), id, id, `s${id}`);
        await put(s, key("other"), "b", "other b", "other sb");
        await s.deleteMilestone(key("doc"), "b");
        await expectMilestones(s, key("doc"), [["a", "a", "sa"], ["c", "c", "sc"]]);
        equal(await snapshotText(s, key("doc"), "b"), null, "snapshot of the deleted milestone");
        await s.deleteMilestone(key("doc"), "b");
        await s.deleteMilestone(key("doc"), "unknown");
        await expectMilestones(s, key("doc"), [["a", "a", "sa"], ["c", "c", "sc"]], "after deleting again and an unknown id");
        await expectMilestones(s, key("other"), [["b", "other b", "other sb"]], "the same id in another document");
        await put(s, key("doc"), "b", "b2", undefined);
        await expectMilestones(s, key("doc"), [["a", "a", "sa"], ["c", "c", "sc"], ["b", "b2", null]], "b put again");
        await s.deleteMilestone(key("doc"), "c");
        await put(s, key("doc"), "e", "e", "se");
        await expectMilestones(s, key("doc"), [["a", "a", "sa"], ["b", "b2", null], ["e", "e", "se"]], "a new id after deleting one");
      }),
  },
  {
    name: "milestones: delete of a document removes its milestones (and entries), not another document's",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        for (const doc of ["a", "ab", "a/", "a%2F"]) {
          await s.commit([{ key: key(doc), entry: bytes(`e ${doc}`) }]);
          await put(s, key(doc), "m1", `m1 ${doc}`, `s1 ${doc}`);
          await put(s, key(doc), "m2", `m2 ${doc}`, undefined);
        }
        await s.delete(key("a"));
        await expectMilestones(s, key("a"), [], "the deleted document");
        equal(await snapshotText(s, key("a"), "m1"), null, "snapshot of a deleted document's milestone");
        await expectTexts(s, key("a"), [], "entries of the deleted document");
        for (const doc of ["ab", "a/", "a%2F"]) {
          await expectMilestones(s, key(doc), [["m1", `m1 ${doc}`, `s1 ${doc}`], ["m2", `m2 ${doc}`, null]], `document ${doc}`);
          await expectTexts(s, key(doc), [`e ${doc}`], `entries of ${doc}`);
        }
        await put(s, key("a"), "m2", "again", undefined);
        await expectMilestones(s, key("a"), [["m2", "again", null]], "a milestone put after the delete");
      }),
  },
  {
    name: "milestones: keys and ids with '/', '%2F', '%', '_', unicode and quotes stay apart",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        const names = ["", "room", "room/doc", "room%2Fdoc", "room%2fdoc", "room_doc", "roo%", "ü/文档/😀", "'; DROP TABLE teleportal_milestones; --"];
        const ids = ["x", "X", "x/y", "x%2Fy", "ü😀", "'; DROP TABLE teleportal_milestone_parts; --", ""];
        for (const [i, n] of names.entries()) {
          await put(s, key(n), "same", `same ${i}`, `same snapshot ${i}`);
          for (const id of ids) await put(s, key(n), id, `${id} ${i}`, `${id} snapshot ${i}`);
        }
        const expected = (/** @type {number} */ i) => [["same", `same ${i}`, `same snapshot ${i}`], ...ids.map((id) => [id, `${id} ${i}`, `${id} snapshot ${i}`])];
        for (const [i, n] of names.entries()) await expectMilestones(s, key(n), expected(i), `key ${JSON.stringify(n)}`);
        await s.deleteMilestone(key("room"), "same");
        await s.deleteMilestone(key("room"), "x/y");
        await s.delete(key("room%2Fdoc"));
        for (const [i, n] of names.entries()) {
          const left = n === "room" ? expected(i).filter(([id]) => id !== "same" && id !== "x/y") : n === "room%2Fdoc" ? [] : expected(i);
          await expectMilestones(s, key(n), left, `key ${JSON.stringify(n)} after the deletes`);
        }
      }),
  },
  {
    name: "milestones: snapshots of 0 B, 1 MiB, 1 MiB + 1 and 5 MB round-trip byte for byte, also when replaced by a smaller one",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        const sizes = [0, 1 << 20, (1 << 20) + 1, 5_000_000];
        const snapshots = sizes.map((n, i) => pattern(n, i + 1));
        for (const [i, snapshot] of snapshots.entries()) await s.putMilestone(key("big"), `m${i}`, pattern(100, 50 + i), snapshot);
        const listed = await s.loadMilestones(key("big"));
        equal(listed.map((m) => m.id), ["m0", "m1", "m2", "m3"], "ids");
        listed.forEach((m, i) => sameBytes(own(m.meta, "meta"), pattern(100, 50 + i), `meta of m${i}`));
        for (const [i, snapshot] of snapshots.entries()) {
          sameBytes(own(await s.loadMilestoneSnapshot(key("big"), `m${i}`), `snapshot of ${sizes[i]} bytes`), snapshot, `snapshot of ${sizes[i]} bytes`);
        }
        await s.putMilestone(key("big"), "m3", bytes("meta only"));
        sameBytes(own(await s.loadMilestoneSnapshot(key("big"), "m3"), "kept 5 MB snapshot"), snapshots[3], "the 5 MB snapshot kept by a meta replace");
        const smaller = pattern((1 << 20) + 1, 77);
        await s.putMilestone(key("big"), "m3", bytes("smaller"), smaller);
        sameBytes(own(await s.loadMilestoneSnapshot(key("big"), "m3"), "replaced snapshot"), smaller, "the 5 MB snapshot replaced by 1 MiB + 1");
        sameBytes(own(await s.loadMilestoneSnapshot(key("big"), "m2"), "other snapshot"), snapshots[2], "another milestone's snapshot");
      }),
  },
  {
    name: "milestones: reopen: what was put, replaced and deleted is there after close and open",
    run: async (backend, key) => {
      await withHandles(backend, 1, async (s) => {
        await put(s, key("doc"), "a", "a", "sa");
        await put(s, key("doc"), "b", "b", undefined);
        await put(s, key("doc"), "c", "c", "sc");
        await put(s, key("doc"), "a", "a2", undefined);
        await s.deleteMilestone(key("doc"), "c");
        await put(s, key("gone"), "g", "g", "sg");
        await s.delete(key("gone"));
      });
      await withHandles(backend, 1, async (s) => {
        await expectMilestones(s, key("doc"), [["a", "a2", "sa"], ["b", "b", null]]);
        await expectMilestones(s, key("gone"), [], "a deleted document");
        await put(s, key("doc"), "d", "d", "sd");
        await expectMilestones(s, key("doc"), [["a", "a2", "sa"], ["b", "b", null], ["d", "d", "sd"]], "putting after reopen");
      });
    },
  },
  {
    name: "milestones: concurrent puts on different ids, from one handle and from two, all land",
    run: (backend, key) =>
      withHandles(backend, 2, async (s, t) => {
        const n = 12;
        const range = (/** @type {string} */ p) => Array.from({ length: n }, (_, i) => `${p}${i}`);
        await Promise.all([...range("p").map((id) => put(s, key("doc"), id, `meta ${id}`, `snapshot ${id}`)), ...range("q").map((id) => put(t, key("doc"), id, `meta ${id}`, `snapshot ${id}`))]);
        const listed = await milestones(s, key("doc"));
        equal(listed.map(([id]) => id).sort(), [...range("p"), ...range("q")].sort(), "every id put at once");
        for (const [id, meta] of listed) {
          equal([meta, await snapshotText(t, key("doc"), id)], [`meta ${id}`, `snapshot ${id}`], `milestone ${id}`);
        }
        // Each handle waits for its puts, the two run at once: each handle's ids keep their order.
        const sequence = async (/** @type {DocumentStorage} */ h, /** @type {string} */ p) => { for (const id of range(p)) await put(h, key("seq"), id, id, undefined); };
        await Promise.all([sequence(s, "a"), sequence(t, "b")]);
        const order = (await milestones(t, key("seq"))).map(([id]) => id);
        equal(order.filter((id) => id.startsWith("a")), range("a"), "the first handle's ids");
        equal(order.filter((id) => id.startsWith("b")), range("b"), "the second handle's ids");
      }),
  },
  {
    name: "milestones: a put with a key or id that is not a string, or meta or snapshot that are not bytes, rejects and stores nothing",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        await put(s, key("doc"), "a", "a", "sa");
        const any = /** @type {any} */ (null);
        await rejects(() => s.putMilestone(key("doc"), /** @type {any} */ (42), bytes("m")), /string/, "a number id");
        await rejects(() => s.putMilestone(/** @type {any} */ (42), "a", bytes("m")), /string/, "a number key");
        await rejects(() => s.putMilestone(key("doc"), "b", /** @type {any} */ ("meta")), /Uint8Array/, "a string meta");
        await rejects(() => s.putMilestone(key("doc"), "a", bytes("a2"), /** @type {any} */ ("snapshot")), /Uint8Array/, "a string snapshot for a known id");
        await rejects(() => s.putMilestone(key("doc"), "c", bytes("c"), any), /Uint8Array/, "a null snapshot");
        await expectMilestones(s, key("doc"), [["a", "a", "sa"]]);
      }),
  },
  {
    name: "milestones: bytes read are arrays of their own; changing them, or what was put, changes nothing stored",
    run: (backend, key) =>
      withHandles(backend, 1, async (s) => {
        const meta = bytes("meta");
        const snapshot = bytes("snapshot");
        await s.putMilestone(key("doc"), "a", meta, snapshot);
        meta[0] = snapshot[0] = 0x21;
        const [read] = await s.loadMilestones(key("doc"));
        const readSnapshot = own(await s.loadMilestoneSnapshot(key("doc"), "a"), "snapshot");
        own(read.meta, "meta")[1] = readSnapshot[1] = 0x21;
        await expectMilestones(s, key("doc"), [["a", "meta", "snapshot"]]);
      }),
  },
];

/**
 * Runs every case (one after another) and reports each; never throws.
 * @param {Backend} backend @param {string} [run] a prefix that keeps this run's keys apart
 * @returns {Promise<CaseResult[]>}
 */
export async function runContract(backend, run = `run-${Date.now()}-${Math.random().toString(36).slice(2)}`) {
  /** @type {CaseResult[]} */
  const results = [];
  for (const [i, c] of cases.entries()) results.push(await runCase(c, backend, `${run}/${i}/`));
  return results;
}

/** @param {Case} c @param {Backend} backend @param {string} prefix @returns {Promise<CaseResult>} */
export async function runCase(c, backend, prefix) {
  const start = Date.now();
  try {
    const outcome = await c.run(backend, (name) => prefix + name);
    return { name: c.name, status: outcome === "skip" ? "skip" : "pass", ms: Date.now() - start };
  } catch (err) {
    return { name: c.name, status: "fail", error: String(/** @type {Error} */ (err)?.stack ?? err), ms: Date.now() - start };
  }
}
