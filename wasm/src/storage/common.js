// What every storage backend shares: the checks on what is written and the view on what is read.

/**
 * The bytes of one write, checked before anything is stored (a backend would otherwise coerce a
 * string into a blob, or a number into a key).
 * @param {unknown} key @param {unknown} entry
 * @returns {Uint8Array}
 */
export function entryBytes(key, entry) {
  if (typeof key !== "string") throw new TypeError(`storage key must be a string, got ${typeof key}`);
  if (!(entry instanceof Uint8Array)) throw new TypeError(`storage entry for ${JSON.stringify(key)} must be a Uint8Array`);
  return entry;
}

/**
 * Throws unless these are the arguments of a milestone write (checked before anything is stored,
 * as in `entryBytes`). @param {unknown} key @param {unknown} id @param {unknown} meta @param {unknown} snapshot
 */
export function checkMilestone(key, id, meta, snapshot) {
  if (typeof key !== "string") throw new TypeError(`storage key must be a string, got ${typeof key}`);
  if (typeof id !== "string") throw new TypeError(`milestone id for ${JSON.stringify(key)} must be a string, got ${typeof id}`);
  if (!(meta instanceof Uint8Array)) throw new TypeError(`milestone meta for ${JSON.stringify(key)} must be a Uint8Array`);
  if (snapshot !== undefined && !(snapshot instanceof Uint8Array)) throw new TypeError(`milestone snapshot for ${JSON.stringify(key)} must be a Uint8Array or undefined`);
}

/**
 * A driver's blob as a Uint8Array of its own: the blob itself when it already is a plain
 * Uint8Array over a whole buffer, else a copy (a Buffer may be a slice of a shared pool).
 * @param {Uint8Array | ArrayBuffer} blob
 */
export function ownBytes(blob) {
  if (blob instanceof ArrayBuffer) return new Uint8Array(blob);
  const whole = blob.byteOffset === 0 && blob.byteLength === blob.buffer.byteLength;
  return blob.constructor === Uint8Array && whole ? blob : new Uint8Array(blob);
}

/**
 * A driver's blob (Buffer, Uint8Array, ArrayBuffer) as a plain Uint8Array, without copying.
 * @param {Uint8Array | ArrayBuffer} blob
 */
export function asBytes(blob) {
  if (blob instanceof ArrayBuffer) return new Uint8Array(blob);
  return blob.constructor === Uint8Array ? blob : new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
}

/**
 * Imports a runtime's own module (bun:sqlite, node:fs, better-sqlite3, postgres) only when called.
 * The specifier is a variable so that bundlers (esbuild for workerd) leave it alone.
 * @param {string} specifier
 * @returns {Promise<any>}
 */
export const runtimeImport = (specifier) => import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);

/**
 * Throws a clear error outside Bun and Node (workerd, browsers), where `runtimeImport` cannot reach
 * their modules. @param {string} what @param {string} [instead] what to do there
 */
export function requireBunOrNode(what, instead = "in a Durable Object use createDurableObjectStorage(ctx.storage)") {
  const node = /** @type {any} */ (globalThis).process?.versions?.node;
  if ("Bun" in globalThis || (node && globalThis.navigator?.userAgent !== "Cloudflare-Workers")) return;
  throw new Error(`${what} runs on Bun and Node; ${instead}`);
}
