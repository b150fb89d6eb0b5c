// teleportal/updates: the Y.js update algebra (yjs names and signatures) on the C++ core.
// One wasm crossing per operation; a batch of updates crosses as one buffer. Invalid input
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
  const concat = new Uint8Array(total);
  const lengths = new Uint32Array(parts.length);
  let pos = 0;
  for (let i = 0; i < parts.length; i++) {
    concat.set(parts[i], pos);
    pos += parts[i].length;
    lengths[i] = parts[i].length;
  }
  return result(core.yjsMerge(concat, new Uint8Array(lengths.buffer), version));
}

/** @param {Uint8Array[]} updates */
export const mergeUpdates = (updates) => merge(updates, 1);
/** @param {Uint8Array[]} updates */
export const mergeUpdatesV2 = (updates) => merge(updates, 2);

/** @param {Uint8Array} update @param {Uint8Array} [stateVector] */
export const diffUpdate = (update, stateVector = EMPTY_SV) =>
  result(core.yjsDiff(asBytes(update, "update"), asBytes(stateVector, "stateVector"), 1));
/** @param {Uint8Array} update @param {Uint8Array} [stateVector] */
export const diffUpdateV2 = (update, stateVector = EMPTY_SV) =>
  result(core.yjsDiff(asBytes(update, "update"), asBytes(stateVector, "stateVector"), 2));

/** @param {Uint8Array} update */
export const encodeStateVectorFromUpdate = (update) => result(core.yjsStateVector(asBytes(update, "update"), 1));
/** @param {Uint8Array} update */
export const encodeStateVectorFromUpdateV2 = (update) => result(core.yjsStateVector(asBytes(update, "update"), 2));

/** @param {Uint8Array} update */
export const convertUpdateFormatV1ToV2 = (update) => result(core.yjsConvert(asBytes(update, "update"), 1));
/** @param {Uint8Array} update */
export const convertUpdateFormatV2ToV1 = (update) => result(core.yjsConvert(asBytes(update, "update"), 2));

function validate(update, version) {
  const r = core.yjsValidate(asBytes(update, "update"), version);
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
