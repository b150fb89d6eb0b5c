// The Teleportal frame codec in plain JS, for teleportal/provider. It covers what a client sends
// and receives (doc, awareness, ack, presence, rpc) and
// produces the same shapes as teleportal/protocol, whose C++ codec stays the reference (the
// provider tests compare the two on every vector). Built on lib0, which Y.js already brings
// along, so it adds about 1 KB to a browser bundle instead of the core's wasm module.
// Byte layouts: wasm/src/README-provider.md and the spec's section 1.
import * as encoding from "lib0/encoding";
import * as decoding from "lib0/decoding";

const MAGIC = Uint8Array.of(0x59, 0x4a, 0x53); // "YJS"
const TYPES = ["doc", "awareness", "ack", "presence", "rpc"];
const RPC_TYPES = ["request", "stream", "response"];
const DOC = ["sync-step-1", "sync-step-2", "update", "sync-done", "auth-message"];
const AWARENESS = ["awareness-update", "awareness-request"];
const PRESENCE = ["presence-announce", "presence-join", "presence-leave", "presence-heartbeat", "presence-unannounce"];

export const PING = Uint8Array.of(0x59, 0x4a, 0x53, 0x70, 0x69, 0x6e, 0x67); // "YJSping"
export const PONG = Uint8Array.of(0x59, 0x4a, 0x53, 0x70, 0x6f, 0x6e, 0x67); // "YJSpong"

const hex8 = (h) => (h >>> 0).toString(16).padStart(8, "0");

/** Teleportal's message id: two 32-bit multiplicative hashes over the frame bytes (spec 1.8). */
export function getMessageId(bytes) {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < bytes.length; i++) {
    h1 = Math.imul(h1 ^ bytes[i], 0x01000193);
    h2 = Math.imul(h2 ^ bytes[i], 0x100001b3);
  }
  return hex8(h1) + hex8(h2);
}

/** True when `bytes` starts with `prefix`. */
export function startsWith(bytes, prefix) {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function code(names, name, what) {
  const i = names.indexOf(name);
  if (i < 0) throw new TypeError(`cannot encode ${what} "${name}"`);
  return i;
}

function writeClient(e, c) {
  encoding.writeVarUint(e, c.awarenessId);
  encoding.writeVarString(e, c.clientId);
  encoding.writeVarString(e, c.userId);
  encoding.writeAny(e, c.data ?? {});
}

/**
 * Encodes a message ({type, document, encrypted, payload}, the shape decodeMessage returns).
 * @param {any} m
 * @returns {Uint8Array}
 */
export function encodeMessage(m) {
  const e = encoding.createEncoder();
  const type = code(TYPES, m.type, "message type");
  const p = m.payload;
  encoding.writeUint8Array(e, MAGIC);
  encoding.writeUint8(e, 1);
  encoding.writeVarString(e, m.type === "ack" ? "" : m.document);
  encoding.writeUint8(e, m.encrypted && (m.type === "doc" || m.type === "awareness" || m.type === "rpc") ? 1 : 0);
  encoding.writeUint8(e, type);
  if (m.type === "rpc") {
    encoding.writeVarString(e, m.rpcMethod);
    const requestType = code(RPC_TYPES, m.requestType, "rpc request type");
    encoding.writeUint8(e, requestType);
    if (requestType !== 0) {
      if (typeof m.originalRequestId !== "string") throw new TypeError("an rpc stream or response needs originalRequestId");
      encoding.writeVarString(e, m.originalRequestId);
    }
    if (p.type === "error") {
      encoding.writeUint8(e, 1);
      encoding.writeVarUint(e, p.statusCode);
      encoding.writeVarString(e, p.details);
      const has = p.payload !== undefined && p.payload !== null;
      encoding.writeUint8(e, has ? 1 : 0);
      if (has) encoding.writeAny(e, p.payload);
    } else {
      encoding.writeUint8(e, 0);
      const inner = encoding.createEncoder();
      encoding.writeAny(inner, p.payload);
      encoding.writeVarUint8Array(e, encoding.toUint8Array(inner));
    }
  } else if (m.type === "doc") {
    const sub = code(DOC, p.type, "doc message");
    encoding.writeUint8(e, sub);
    if (sub === 0) encoding.writeVarUint8Array(e, p.sv);
    if (sub === 1 || sub === 2) {
      encoding.writeUint8(e, p.update.version);
      encoding.writeVarUint8Array(e, p.update.data);
    }
    if (sub === 4) {
      encoding.writeUint8(e, p.permission === "denied" ? 0 : 1);
      encoding.writeVarString(e, p.reason);
    }
  } else if (m.type === "awareness") {
    const sub = code(AWARENESS, p.type, "awareness message");
    encoding.writeUint8(e, sub);
    if (sub === 0) encoding.writeVarUint8Array(e, p.update);
  } else if (m.type === "ack") {
    encoding.writeVarString(e, p.messageId);
    encoding.writeUint8(e, (p.retryAfter !== undefined ? 1 : 0) | (p.error !== undefined ? 2 : 0));
    if (p.retryAfter !== undefined) encoding.writeVarUint(e, p.retryAfter);
    if (p.error !== undefined) encoding.writeVarString(e, p.error);
  } else {
    const sub = code(PRESENCE, p.type, "presence message");
    encoding.writeUint8(e, sub);
    if (sub === 0 || sub === 4) encoding.writeVarUint(e, p.awarenessId);
    if (sub === 1 || sub === 2) writeClient(e, p);
    if (sub === 3) {
      encoding.writeVarUint(e, p.clients.length);
      for (const c of p.clients) writeClient(e, c);
    }
  }
  return encoding.toUint8Array(e);
}

function fail(reason) {
  return new Error(`Failed to decode update message: ${reason}`);
}

// lib0 returns undefined for a single byte read past the end; every sub-type read goes through here.
function readSub(d, names) {
  const name = names[decoding.readUint8(d)];
  if (name === undefined) throw fail("unexpected sub-type");
  return name;
}

function readClient(d) {
  const awarenessId = decoding.readVarUint(d);
  const clientId = decoding.readVarString(d);
  const userId = decoding.readVarString(d);
  const data = decoding.readAny(d);
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw fail("Invalid presence data: expected an object");
  return { awarenessId, clientId, userId, data };
}

function readPayload(d, type) {
  if (type === "doc") {
    const sub = readSub(d, DOC);
    if (sub === "sync-step-1") return { type: sub, sv: decoding.readVarUint8Array(d) };
    if (sub === "sync-step-2" || sub === "update") {
      const version = decoding.readUint8(d);
      return { type: sub, update: { version, data: decoding.readVarUint8Array(d) } };
    }
    if (sub === "auth-message") {
      const permission = decoding.readUint8(d) === 0 ? "denied" : "allowed";
      return { type: sub, permission, reason: decoding.readVarString(d) };
    }
    return { type: sub };
  }
  if (type === "awareness") {
    const sub = readSub(d, AWARENESS);
    return sub === "awareness-update" ? { type: sub, update: decoding.readVarUint8Array(d) } : { type: sub };
  }
  if (type === "ack") {
    const payload = { type: "ack", messageId: decoding.readVarString(d) };
    const flags = decoding.hasContent(d) ? decoding.readUint8(d) : 0;
    if (flags & 1) payload.retryAfter = decoding.readVarUint(d);
    if (flags & 2) payload.error = decoding.readVarString(d);
    return payload;
  }
  const sub = readSub(d, PRESENCE);
  if (sub === "presence-announce" || sub === "presence-unannounce") {
    return { type: sub, awarenessId: decoding.readVarUint(d) };
  }
  if (sub === "presence-heartbeat") {
    const clients = [];
    for (let n = decoding.readVarUint(d); n > 0; n--) clients.push(readClient(d));
    return { type: sub, clients };
  }
  return { type: sub, ...readClient(d) };
}

// An rpc frame after its header, in the shape teleportal/protocol decodes it to.
function readRpc(d) {
  const rpcMethod = decoding.readVarString(d);
  const requestType = RPC_TYPES[decoding.readUint8(d)];
  if (requestType === undefined) throw fail("Invalid RPC request type");
  const originalRequestId = requestType === "request" ? null : decoding.readVarString(d);
  let payload;
  if (decoding.readUint8(d) === 0) {
    payload = { type: "success", payload: decoding.readAny(decoding.createDecoder(decoding.readVarUint8Array(d))) };
  } else {
    const statusCode = decoding.readVarUint(d);
    const details = decoding.readVarString(d);
    payload = { type: "error", statusCode, details, payload: decoding.readUint8(d) === 1 ? decoding.readAny(d) : undefined };
  }
  return { rpcMethod, requestType, originalRequestId, payload };
}

/**
 * Decodes one frame (not ping/pong). RPC frames come back as {type: "rpc", document, encrypted,
 * rpcMethod, requestType, originalRequestId, payload, id}, as teleportal/protocol decodes them.
 * Throws an Error "Failed to decode update message: ..." on a bad frame.
 * @param {Uint8Array} bytes
 */
export function decodeMessage(bytes) {
  if (!startsWith(bytes, MAGIC)) throw fail("Invalid magic number");
  const d = decoding.createDecoder(bytes);
  d.pos = 3;
  try {
    if (decoding.readUint8(d) !== 1) throw fail("Invalid version");
    const document = decoding.readVarString(d);
    const encrypted = decoding.readUint8(d) === 1;
    const type = TYPES[decoding.readUint8(d)];
    if (type === undefined) throw fail("Invalid target type");
    if (type === "rpc") return { type, document, encrypted, ...readRpc(d), id: getMessageId(bytes) };
    const payload = readPayload(d, type);
    if (type === "ack") {
      // An ack's id is over its canonical encoding (spec 1.8).
      const ack = { type, document: null, encrypted: false, payload };
      return { ...ack, id: getMessageId(encodeMessage(ack)) };
    }
    return { type, document, encrypted: type === "presence" ? false : encrypted, payload, id: getMessageId(bytes) };
  } catch (err) {
    throw err.message.startsWith("Failed to decode") ? err : fail(err.message);
  }
}

/** A content-encrypted envelope (version 1) around a V2 update, with no sidecars (spec 1.4). */
export function encodeEnvelope(structureUpdate) {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint8Array(e, structureUpdate);
  encoding.writeVarUint(e, 0);
  encoding.writeUint8(e, 0);
  return encoding.toUint8Array(e);
}

/** The V2 structure update inside an envelope (sidecars and compaction records are skipped). */
export function decodeEnvelope(bytes) {
  const d = decoding.createDecoder(bytes);
  const version = decoding.readVarUint(d);
  if (version !== 1) throw new Error(`Unsupported content-encrypted version: ${version}`);
  return decoding.readVarUint8Array(d);
}
