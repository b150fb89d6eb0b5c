// The server core's boundary (wasm/bind/bind_server.cpp): plain wasm exports, one persistent
// input buffer, output records in a persistent arena read through typed arrays. Internal to the
// package: teleportal/server and the hosts' upgrade check use it.
//
// Every export returns the number of records it wrote (-1: the call was refused); scalar results
// are in `result(k)`. A record is 8 int32: [0] kind, [1] client, [2..3] bytes (offset, length),
// [4] a number, [5..6] a string (offset, length), [7] a number; offsets are into the byte arena.
// Frames handed out are views of wasm memory, valid until the next core call: whoever keeps one
// copies it. A call made while earlier records are still being read (a close that disconnects a
// client, say) first detaches those records into copies (see `Records`).
import { core } from "./core.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const Kind = Object.freeze({
  send: 1,
  close: 2,
  log: 3,
  load: 4,
  compact: 5,
  permission: 6,
  join: 7,
  reader: 8,
  publish: 9,
  except: 10,
  cluster: 11,
  channel: 12,
  ack: 13,
  write: 14,
  entry: 15,
  text: 16,
  verdict: 17,
  sample: 18,
  httpFrame: 30,
  rpc: 40,
  milestoneLoad: 41,
  milestoneStore: 42,
  milestoneCreated: 43,
});
export const LEVELS = ["debug", "info", "warn", "error"];

const header = core._tp_header(); // byte address: records, bytes, bytes length, -, result[4] (f64)
let inputAt = 0;
let inputCapacity = 0;

/** The input buffer's address, with room for at least `n` bytes. */
export function input(n) {
  if (n > inputCapacity) {
    inputCapacity = Math.max(n, inputCapacity * 2, 64 * 1024);
    inputAt = core._tp_input(inputCapacity);
  }
  return inputAt;
}

/** Writes `bytes` into the input at offset `at` (room must have been made with input()). */
export function putBytes(bytes, at) {
  core.HEAPU8.set(bytes, inputAt + at);
  return bytes.length;
}

/** Writes `text` as UTF-8 at offset `at`; returns the byte length. */
export function putText(text, at) {
  input(at + text.length * 3);
  if (at === 0) {
    // The whole input region as one view, kept until memory grows or the buffer moves.
    if (inputView === null || inputView.buffer !== core.HEAPU8.buffer || inputView.byteOffset !== inputAt || inputView.length !== inputCapacity) {
      inputView = core.HEAPU8.subarray(inputAt, inputAt + inputCapacity);
    }
    return encoder.encodeInto(text, inputView).written;
  }
  return encoder.encodeInto(text, core.HEAPU8.subarray(inputAt + at, inputAt + inputCapacity)).written;
}
let inputView = null;

/** Writes byte strings as the core's list layout (count u32 lengths, then the bytes) at `at`. */
export function putList(list, at) {
  let total = 4 * list.length;
  for (const b of list) total += b.length;
  input(at + total);
  const view = new DataView(core.HEAPU8.buffer, inputAt + at, 4 * list.length);
  let data = at + 4 * list.length;
  list.forEach((b, i) => {
    view.setUint32(4 * i, b.length, true);
    core.HEAPU8.set(b, inputAt + data);
    data += b.length;
  });
  return total;
}

/** A scalar result of the last call. */
export function result(k) {
  return core.HEAPF64[(header >> 3) + 2 + k];
}

const live = []; // Records being read, oldest first

/** Before any core call: records still being read are copied out of the arenas the call reuses. */
export function beforeCall() {
  for (let i = live.length - 1; i >= 0 && !live[i].detached; i--) live[i].detach();
}

/** The records of the last call. Use inside `read(n, fn)` only. */
export class Records {
  constructor(n) {
    // Read in place through the heap views (no typed array per call); copies once detached.
    const i32 = core.HEAP32;
    const h = header >> 2;
    this.n = n;
    this.r = i32;
    this.at = i32[h] >> 2; // first record, in int32s
    this.u8 = core.HEAPU8;
    this.base = i32[h + 1]; // byte arena
    this.length = i32[h + 2];
    this.detached = false;
  }
  detach() {
    this.r = this.r.slice(this.at, this.at + 8 * this.n);
    this.at = 0;
    this.u8 = this.u8.slice(this.base, this.base + this.length);
    this.base = 0;
    this.detached = true;
  }
  kind(i) {
    return this.r[this.at + 8 * i];
  }
  field(i, k) {
    return this.r[this.at + 8 * i + k];
  }
  /** The record's bytes as a view (valid until the next core call). */
  bytes(i) {
    const at = this.base + this.r[this.at + 8 * i + 2];
    return this.u8.subarray(at, at + this.r[this.at + 8 * i + 3]);
  }
  text(i) {
    const at = this.base + this.r[this.at + 8 * i + 5];
    return decoder.decode(this.u8.subarray(at, at + this.r[this.at + 8 * i + 6]));
  }
  bytesText(i) {
    return decoder.decode(this.bytes(i));
  }
}

/** Reads the `n` records of the call just made with `fn(records)`. */
export function read(n, fn) {
  if (n <= 0) return undefined;
  const records = new Records(n);
  live.push(records);
  try {
    return fn(records);
  } finally {
    live.pop();
  }
}

/**
 * Extracts and verifies the token of an upgrade request (?token= or Authorization: Bearer).
 * Returns {ok, status, body, error, context} with the context (claims + token) as JSON text.
 */
export function authenticateUpgrade(url, authorization, secret, hasSecret, issuer, audience, nowSeconds) {
  beforeCall();
  input(secret.length + (url.length + authorization.length + issuer.length + audience.length) * 3 + 16);
  const urlLen = putText(url, 0);
  const authLen = putText(authorization, urlLen);
  const secretLen = putBytes(secret, urlLen + authLen);
  const issuerLen = putText(issuer, urlLen + authLen + secretLen);
  const audienceLen = putText(audience, urlLen + authLen + secretLen + issuerLen);
  const n = core._tp_authenticate_upgrade(urlLen, authLen, secretLen, hasSecret ? 1 : 0, issuerLen, audienceLen, nowSeconds);
  return read(n, (r) => {
    const ok = r.field(0, 7) === 1;
    return { ok, status: r.field(0, 4), body: r.text(0), error: r.text(1), context: ok ? r.bytesText(0) : undefined };
  });
}

/** What the core says about one frame on its own: {reply?: Uint8Array, error?: string}. */
export function inspectFrame(frame) {
  beforeCall();
  input(frame.length);
  putBytes(frame, 0);
  const n = core._tp_inspect_frame(frame.length);
  const verdict = {};
  read(n, (r) => {
    for (let i = 0; i < r.n; i++) {
      if (r.kind(i) === Kind.send) verdict.reply = r.bytes(i).slice();
      if (r.kind(i) === Kind.text) verdict.error = r.text(i);
    }
  });
  return verdict;
}

/** The counters of the core Server at `server` (its address): [name with labels, value] pairs. */
export function coreMetrics(server) {
  beforeCall();
  const n = core._tp_server_metrics(server);
  const samples = [];
  read(n, (r) => {
    for (let i = 0; i < r.n; i++) {
      const b = r.bytes(i);
      samples.push([r.text(i), new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true)]);
    }
  });
  return samples;
}

/**
 * A POST body of the HTTP transport (a message array): {frames: [{frame, id, needsAnswer}]}, or
 * {error} when it is not a valid message array (then none of it is processed).
 */
export function httpBody(body) {
  beforeCall();
  input(body.length);
  putBytes(body, 0);
  const n = core._tp_http_body(body.length);
  const out = { frames: [] };
  read(n, (r) => {
    for (let i = 0; i < r.n; i++) {
      if (r.kind(i) === Kind.text) out.error = r.text(i);
      else out.frames.push({ frame: r.bytes(i).slice(), id: r.text(i), needsAnswer: r.field(i, 4) === 1 });
    }
  });
  if (out.error !== undefined) out.frames = [];
  return out;
}

/** Frames sent to HTTP clients, in one call: [{id, answers}] (answers: the acked id, or null). */
export function sentFrames(frames) {
  beforeCall();
  putList(frames, 0);
  const n = core._tp_http_sent(frames.length);
  const out = [];
  read(n, (r) => {
    for (let i = 0; i < r.n; i++) out.push({ id: r.text(i), answers: r.field(i, 4) === 1 ? r.bytesText(i) : null });
  });
  return out;
}
