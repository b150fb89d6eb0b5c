// The storage contract (wasm/types/storage.d.ts), written once and run against every backend: by
// node:test in Node (./harness.mjs), and inside Bun and inside a Durable Object by runContract,
// whose results the Node tests then report case by case. Plain JavaScript only: no runtime
// modules, so the same file runs in Node, Bun and workerd.

/** @typedef {import("teleportal/storage").DocumentStorage} DocumentStorage */
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
