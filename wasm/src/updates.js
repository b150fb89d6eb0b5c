// teleportal/updates: the Y.js update algebra (yjs names and signatures) on the C++ core.
// One wasm crossing per operation; inputs are copied into wasm memory with TypedArray.set (a
// batch of updates as one buffer) and results come back as one fresh Uint8Array. Invalid input
// throws an Error whose `code` is the core's stable error code.
import { core, asBytes } from "./core.js";

const EMPTY_SV = new Uint8Array([0]);

function fail(text) {
  const nl = text.indexOf("\n");
  const err = new Error(text.slice(nl + 1));
  err.code = text.slice(0, nl);
  return err;
}

function result(r) {
  if (typeof r === "string") throw fail(r);
  return r;
}

// Copies the byte arrays into one malloc'd block of wasm memory (one TypedArray.set each), calls
// fn(address of each array..., length of each array...) and frees the block.
function withBytes(arrays, fn) {
  let total = 0;
  for (const a of arrays) total += a.length;
  const base = core._malloc(total || 1);
  try {
    const heap = core.HEAPU8; // read after malloc: growing memory replaces the view
    const at = [];
    let pos = base;
    for (const a of arrays) {
      heap.set(a, pos);
      at.push(pos);
      pos += a.length;
    }
    return fn(at, arrays.map((a) => a.length));
  } finally {
    core._free(base);
  }
}

function merge(updates, version) {
  if (!Array.isArray(updates)) throw new TypeError("updates must be an array of Uint8Array");
  // yjs returns a single update unchanged (without reading it)
  if (updates.length === 1) return asBytes(updates[0], "update");
  let total = 0;
  const parts = updates.map((u, i) => {
    const b = asBytes(u, `updates[${i}]`);
    total += b.length;
    return b;
  });
  // layout: parts.length uint32 lengths (4-aligned: malloc aligns to 8), then the updates
  const head = 4 * parts.length;
  const base = core._malloc(head + total || 1);
  try {
    const heap = core.HEAPU8;
    const lengths = new Uint32Array(heap.buffer, base, parts.length);
    let pos = base + head;
    for (let i = 0; i < parts.length; i++) {
      lengths[i] = parts[i].length;
      heap.set(parts[i], pos);
      pos += parts[i].length;
    }
    return result(core.yjsMerge(base + head, total, base, parts.length, version));
  } finally {
    core._free(base);
  }
}

/** @param {Uint8Array[]} updates */
export const mergeUpdates = (updates) => merge(updates, 1);
/** @param {Uint8Array[]} updates */
export const mergeUpdatesV2 = (updates) => merge(updates, 2);

function diff(update, stateVector, version) {
  const u = asBytes(update, "update"), s = asBytes(stateVector, "stateVector");
  return result(withBytes([u, s], ([pu, ps], [nu, ns]) => core.yjsDiff(pu, nu, ps, ns, version)));
}

/** @param {Uint8Array} update @param {Uint8Array} [stateVector] */
export const diffUpdate = (update, stateVector = EMPTY_SV) => diff(update, stateVector, 1);
/** @param {Uint8Array} update @param {Uint8Array} [stateVector] */
export const diffUpdateV2 = (update, stateVector = EMPTY_SV) => diff(update, stateVector, 2);

// One update in, through fn(address, length).
const withUpdate = (update, fn) => withBytes([asBytes(update, "update")], ([p], [n]) => fn(p, n));

/** @param {Uint8Array} update */
export const encodeStateVectorFromUpdate = (update) => result(withUpdate(update, (p, n) => core.yjsStateVector(p, n, 1)));
/** @param {Uint8Array} update */
export const encodeStateVectorFromUpdateV2 = (update) => result(withUpdate(update, (p, n) => core.yjsStateVector(p, n, 2)));

/** @param {Uint8Array} update */
export const convertUpdateFormatV1ToV2 = (update) => result(withUpdate(update, (p, n) => core.yjsConvert(p, n, 1)));
/** @param {Uint8Array} update */
export const convertUpdateFormatV2ToV1 = (update) => result(withUpdate(update, (p, n) => core.yjsConvert(p, n, 2)));

function validate(update, version) {
  const r = withUpdate(update, (p, n) => core.yjsValidate(p, n, version));
  if (r.charCodeAt(0) !== 49 /* "1" */) throw fail(r.slice(1));
  const [structs, clients, deleteRanges] = r.slice(1).split(" ").map(Number);
  return { structs, clients, deleteRanges, empty: structs === 0 && deleteRanges === 0 };
}

/** Strict check of a V1 update; throws an Error with `code` when it is malformed. */
export const validateUpdate = (update) => validate(update, 1);
/** Strict check of a V2 update; throws an Error with `code` when it is malformed. */
export const validateUpdateV2 = (update) => validate(update, 2);

/** Non-throwing form: { valid: true, ...info } or { valid: false, code, message }. */
export function checkUpdate(update, version = 2) {
  try {
    return { valid: true, ...validate(update, version) };
  } catch (e) {
    if (e instanceof TypeError) throw e;
    return { valid: false, code: e.code, message: e.message };
  }
}
