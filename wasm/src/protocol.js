// teleportal/protocol: the Teleportal wire codec (frames, message id, ping/pong, message arrays,
// pub/sub and content-encrypted envelopes). Parsing happens in the C++ core, one call per frame;
// this file only rebuilds the public JS shapes and throws where Teleportal throws.
import { core, asBytes } from "./core.js";

const PING = Uint8Array.of(0x59, 0x4a, 0x53, 0x70, 0x69, 0x6e, 0x67); // "YJSping"
const PONG = Uint8Array.of(0x59, 0x4a, 0x53, 0x70, 0x6f, 0x6e, 0x67); // "YJSpong"

/**
 * Turns a core error result ({code, messages}) into the reference's Error chain:
 * message = top-level message, cause = next error, ..., each with the stable `code`.
 * @param {{code: string, messages: string[]}} r
 */
function toError(r) {
  let cause;
  for (let i = r.messages.length - 1; i >= 0; i--) {
    const e = cause === undefined ? new Error(r.messages[i]) : new Error(r.messages[i], { cause });
    e.code = r.code;
    cause = e;
  }
  return cause;
}

function unwrap(r) {
  if (r.ok) return r.value;
  throw toError(r);
}

/** Decodes one frame; throws an Error with `code` and a `cause` chain on invalid input. */
export function decodeMessage(bytes) {
  return unwrap(core.protocolDecodeMessage(asBytes(bytes, "message")));
}

/** Encodes a message object (the shape decodeMessage returns) into a frame. */
export function encodeMessage(message) {
  return unwrap(core.protocolEncodeMessage(message));
}

/** Encodes one value with lib0's `any` encoding (RPC payloads, presence data). */
export function encodeAny(value) {
  return unwrap(core.protocolEncodeAny(value));
}

/** Decodes one lib0 `any` value (trailing bytes are ignored, as lib0 does). */
export function decodeAny(bytes) {
  return unwrap(core.protocolDecodeAny(asBytes(bytes, "any")));
}

/** The 16-hex-char message id over the given bytes (Teleportal's two-lane hash). */
export function getMessageId(bytes) {
  return core.protocolMessageId(asBytes(bytes, "message"));
}

// Fixed-prefix checks (no parsing): only the first 7 (or 3) bytes are compared, like the reference.
function hasPrefix(bytes, prefix) {
  if (!bytes || bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** True when the first 7 bytes are "YJSping". */
export function isPingMessage(bytes) {
  return hasPrefix(bytes, PING);
}

/** True when the first 7 bytes are "YJSpong". */
export function isPongMessage(bytes) {
  return hasPrefix(bytes, PONG);
}

/** True when the first 3 bytes are "YJS" (also for ping/pong and truncated frames). */
export function isBinaryMessage(bytes) {
  return hasPrefix(bytes, PING.subarray(0, 3));
}

/** A fresh "YJSping" frame. */
export function encodePingMessage() {
  return PING.slice();
}

/** A fresh "YJSpong" frame. */
export function encodePongMessage() {
  return PONG.slice();
}

/**
 * Encodes frames (Uint8Arrays, message objects, or objects with an `encoded` Uint8Array) into one
 * message array: concatenated varUint8Array(frame).
 */
export function encodeMessageArray(messages) {
  const frames = messages.map((m) => {
    if (m instanceof Uint8Array) return m;
    if (m && m.encoded instanceof Uint8Array) return m.encoded;
    return encodeMessage(m);
  });
  const total = frames.reduce((n, f) => n + f.length, 0);
  const all = new Uint8Array(total);
  let off = 0;
  for (const f of frames) {
    all.set(f, off);
    off += f.length;
  }
  return unwrap(core.protocolEncodeMessageArray(all, frames.map((f) => f.length)));
}

/** Decodes a message array into decoded messages (throws "Invalid message" for a non-YJS element). */
export function decodeMessageArray(bytes) {
  return unwrap(core.protocolDecodeMessageArray(asBytes(bytes, "message array")));
}

/** varString(sourceId) followed by the raw frame (node-to-node pub/sub). */
export function encodePubSubMessage(message, sourceId) {
  return core.protocolEncodePubSub(asBytes(message, "message"), String(sourceId));
}

/** Splits a pub/sub envelope into {sourceId, message}. */
export function decodePubSubMessage(bytes) {
  return unwrap(core.protocolDecodePubSub(asBytes(bytes, "pub/sub message")));
}

/**
 * Decodes the content-encrypted envelope found in update / sync-step-2 data.
 * @param {Uint8Array} bytes
 * @param {{strict?: boolean}} [options] strict: also reject trailing bytes and hasCompaction > 1
 */
export function decodeContentEncryptedPayload(bytes, options = {}) {
  return unwrap(core.protocolDecodeEnvelope(asBytes(bytes, "payload"), !!options.strict));
}

/** Encodes {structureUpdate, encryptedSidecars?, compaction?} as an envelope. */
export function encodeContentEncryptedPayload(payload) {
  return unwrap(core.protocolEncodeEnvelope(payload));
}

/** The canonical empty envelope (01 00 00 00). */
export function getEmptyContentEncryptedPayload() {
  return Uint8Array.of(0x01, 0x00, 0x00, 0x00);
}
