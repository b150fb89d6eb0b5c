// The one instance of the C++ core shared by every entry point of this package.
// randombytes in wasm asks the host for entropy through getRandomValue (see libsodium notes).
import { instantiate } from "#core-loader";

export const core = await instantiate({
  getRandomValue: () => crypto.getRandomValues(new Uint32Array(1))[0],
});

/** Copies a Uint8Array-like input into a Uint8Array the binding layer accepts. */
export function asBytes(value, what = "value") {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${what} must be a Uint8Array`);
}
