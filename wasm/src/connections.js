// Runtime-neutral connection lifecycle shared by every host shim (Bun, Node ws, Workers).
// A shim turns its runtime's events into calls on a Hub and gives it a "peer" per socket:
//   { id, context, send(bytes) -> number, close(code, reason), bufferedAmount?() -> number,
//     terminate?(), drains? }
// where send returns bytes sent (> 0), -1 when queued under backpressure, 0 when dropped, and
// terminate drops the socket without a closing handshake (a reader that stopped reading never
// answers one; ws would hold its socket for 30 s waiting). A peer with `drains: true` has its
// runtime call Hub.drain(id) when the socket's queue drained. The bytes
// given to send (and publish) may be a view of wasm memory that is valid only during the call: a
// peer that keeps them past the call (queues, corked sockets) copies them.
// Frame validation, authentication and routing decisions are made by the C++ core.
import { createTokenManager } from "./token.js";
import { authenticateUpgrade, inspectFrame } from "./server-core.js";
import { LabeledCounter } from "./metrics.js";

const encoder = new TextEncoder();

/** Close codes the hub uses (RFC 6455 + the 4000 private range). */
export const CloseCode = Object.freeze({
  normal: 1000,
  internalError: 1011, // onConnect failed
  tryAgainLater: 1013, // backpressure: a frame was dropped, the client must resync
  serviceRestart: 1012, // a socket woken from hibernation without restorable state
});

/** Queued bytes above which a slow consumer is disconnected instead of buffering without bound. */
const DEFAULT_MAX_BUFFERED = 16 * 1024 * 1024;

function defaultLogger(level, event, fields) {
  if (level === "error" || level === "warn") {
    console.error(JSON.stringify({ level, event, ...fields }));
  }
}

function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

function toBytes(data) {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return toBytes(concat(data.map(toBytes))); // ws fragments
  throw new TypeError("unsupported WebSocket message type");
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const kAuthenticateUpgrade = Symbol.for("teleportal.token.authenticateUpgrade");
const kPoweredBy = Object.freeze({ "x-powered-by": "teleportal" });

/** The token manager of the built-in upgrade check: the given one, or one for `secret`. */
export function upgradeTokens(options) {
  if (options.tokenManager) {
    if (typeof options.tokenManager[kAuthenticateUpgrade] !== "function") {
      throw new TypeError("tokenManager must come from createTokenManager (teleportal/token)");
    }
    return options.tokenManager;
  }
  const secret = options.secret ?? (globalThis.process?.env?.TELEPORTAL_SECRET || null);
  if (secret == null) return null;
  return createTokenManager({ secret, issuer: options.issuer, audience: options.audience });
}

/**
 * Verifies the token of an upgrade request (?token= or Authorization: Bearer) in one core call.
 * Returns { context } (the claims plus `token`) or { response, error } (401 with a body saying why).
 */
export function verifyUpgradeRequest(tokens, request) {
  const authorization = request.headers.get("authorization") ?? "";
  const verdict = tokens
    ? tokens[kAuthenticateUpgrade](request.url, authorization)
    : authenticateUpgrade(request.url, authorization, new Uint8Array(0), false, "", "", 0);
  if (verdict.ok) return { context: JSON.parse(verdict.context) };
  return {
    error: verdict.error,
    response: new Response(verdict.body, {
      status: verdict.status,
      headers: { "content-type": "text/plain;charset=UTF-8", "WWW-Authenticate": 'Bearer realm="teleportal"' },
    }),
  };
}

/**
 * The transport handed to onConnect: the core's view of one socket.
 * Frames in arrive through onMessage listeners; frames out go through send().
 */
// Listener lists that cost nothing extra for the usual single listener: null, one function, or a Set.
function addListener(list, listener) {
  if (list === null) return listener;
  if (typeof list === "function") return list === listener ? list : new Set([list, listener]);
  return list.add(listener);
}
function removeListener(list, listener) {
  if (list === listener) return null;
  if (list instanceof Set) list.delete(listener);
  return list;
}
function callListeners(list, arg) {
  if (typeof list === "function") list(arg);
  else if (list !== null) for (const l of [...list]) l(arg);
}

export class Transport {
  #hub;
  #peer;
  #messageListeners = null;
  #closeListeners = null;
  #closed = false;
  // Internal to this package. A Server attached to this transport (its `deliver(frame)` and
  // `ended()` instead of two listeners and their unsubscribe closures per connection).
  _sink = null;
  // The Hub's state of this connection (one object per connection: this one).
  _connected = false;
  _socketEnded = false;
  _early = []; // frames that arrived while onConnect was running (null once it finished)
  _earlyBytes = 0;
  _closeCode = undefined; // the code the server closed this connection with, if it did

  constructor(hub, peer) {
    this.#hub = hub;
    this.#peer = peer;
  }

  get _peer() {
    return this.#peer;
  }

  get id() {
    return this.#peer.id;
  }

  get context() {
    return this.#peer.context;
  }

  get closed() {
    return this.#closed;
  }

  /** Sends one encoded frame. Returns false when the connection is gone or was closed for backpressure. */
  send(frame) {
    if (this.#closed) return false;
    return this.#hub._send(this.#peer, frame);
  }

  close(code = CloseCode.normal, reason = "") {
    this.#hub._closePeer(this.#peer, code, reason);
  }

  /** Runs `fn` with this connection's writes batched into one where the runtime can (Bun). */
  cork(fn) {
    if (this.#closed || !this.#peer.cork) return fn();
    return this.#peer.cork(fn);
  }

  /** Where the runtime fans out natively (Bun): join or leave a topic. */
  subscribe(topic) {
    this.#peer.subscribe?.(topic);
  }

  unsubscribe(topic) {
    this.#peer.unsubscribe?.(topic);
  }

  /** Whether the runtime fans out natively (Bun): then publish() reaches a topic's subscribers. */
  get canPublish() {
    return typeof this.#peer.publish === "function";
  }

  /** Sends `frame` to every subscriber of `topic` (not this connection unless includeSelf). */
  publish(topic, frame, includeSelf) {
    try {
      this.#peer.publish(topic, frame, includeSelf);
    } catch (err) {
      this.#hub.log("warn", "websocket_publish_failed", { client_id: this.id, error: errorText(err) });
    }
  }

  /** Registers a listener for incoming frames (Uint8Array); returns an unsubscribe function. */
  onMessage(listener) {
    this.#messageListeners = addListener(this.#messageListeners, listener);
    return () => (this.#messageListeners = removeListener(this.#messageListeners, listener));
  }

  /** Registers a listener called once when the connection ends. */
  onClose(listener) {
    if (this.#closed) queueMicrotask(() => listener());
    else this.#closeListeners = addListener(this.#closeListeners, listener);
    return () => (this.#closeListeners = removeListener(this.#closeListeners, listener));
  }

  _hasListeners() {
    const l = this.#messageListeners;
    return this._sink !== null || (l !== null && (typeof l === "function" || l.size > 0));
  }

  _deliver(frame) {
    if (this._sink !== null) this._sink.deliver(frame);
    const l = this.#messageListeners;
    if (typeof l === "function") l(frame);
    else callListeners(l, frame);
  }

  _ended(log) {
    if (this.#closed) return;
    this.#closed = true;
    const listeners = this.#closeListeners;
    this.#closeListeners = null;
    this.#messageListeners = null;
    const each = typeof listeners === "function" ? [listeners] : listeners === null ? [] : [...listeners];
    const sink = this._sink;
    if (sink !== null) each.unshift(() => sink.ended());
    for (const l of each) {
      try {
        l();
      } catch (err) {
        log("error", "transport_close_listener_failed", { client_id: this.id, error: errorText(err) });
      }
    }
  }
}

export class Hub {
  constructor(options = {}) {
    if (typeof options.onConnect !== "function") throw new TypeError("onConnect must be a function");
    this.options = options;
    this.log = options.logger ?? defaultLogger;
    // The default logger drops info events: skip making them (as for a logger whose logLevel is above info).
    this.infoLogs = options.logger !== undefined && ["debug", "info"].includes(options.logLevel ?? "debug");
    // What only the host sees, for /metrics: upgrade outcomes and socket closes by code.
    this.upgrades = new LabeledCounter("upgrades_total", [`outcome="accepted",code="101"`, `outcome="rejected",code="401"`, `outcome="rejected",code="403"`]);
    this.closes = new LabeledCounter("websocket_closes_total");
    this.maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    this.tokens = options.onUpgrade ? null : upgradeTokens(options);
    /** @type {Map<string, {peer: any, transport: Transport, connected: boolean, ended: boolean}>} */
    this.connections = new Map();
  }

  /** The hub's counters as [name with labels, value] samples (see Server#metrics). */
  metricSamples() {
    return [...this.upgrades.samples(), ...this.closes.samples()];
  }

  #upgraded(status) {
    this.upgrades.add(status === 101 ? `outcome="accepted",code="101"` : `outcome="rejected",code="${status}"`);
  }

  #rejected(response) {
    this.#upgraded(response.status);
    return { response };
  }

  newId() {
    return crypto.randomUUID();
  }

  /**
   * Decides an upgrade. Returns { context, headers } to accept or { response } to reject: at
   * once with the built-in token check, as a Promise when an onUpgrade hook runs.
   * A thrown Response from onUpgrade is returned as is; any other error becomes a 401.
   */
  authorize(request) {
    if (this.options.onUpgrade) return this.#authorizeWithHook(request);
    let context;
    try {
      context = this.#verifyUpgradeToken(request);
    } catch (err) {
      return this.#refused(err);
    }
    return this.#accepted(request, context, undefined);
  }

  async #authorizeWithHook(request) {
    try {
      const result = (await this.options.onUpgrade(request)) ?? {};
      return this.#accepted(request, result.context ?? {}, result.headers);
    } catch (err) {
      return this.#refused(err);
    }
  }

  // The built-in check needs no await: the upgrade completes in the same turn (no promises).
  #accepted(request, context, headers) {
    try {
      if (context instanceof Response) return this.#rejected(context);
      const refused = this.options.acceptContext?.(context, request);
      if (refused instanceof Response) return this.#rejected(refused);
      this.#upgraded(101);
      if (this.infoLogs) this.log("info", "websocket_upgrade", { status_code: 101, outcome: "success" });
      return { context, headers: headers ? { ...kPoweredBy, ...normalizeHeaders(headers) } : kPoweredBy };
    } catch (err) {
      return this.#refused(err);
    }
  }

  #refused(err) {
    if (err instanceof Response) {
      this.#upgraded(err.status);
      this.log("info", "websocket_upgrade", { status_code: err.status, outcome: "rejected" });
      return { response: err };
    }
    this.#upgraded(401);
    this.log("warn", "websocket_upgrade", { status_code: 401, outcome: "error", error: errorText(err) });
    return {
      response: new Response("Unauthorized", {
        status: 401,
        headers: { "WWW-Authenticate": 'Bearer realm="teleportal"' },
      }),
    };
  }

  // Built-in check: the core extracts the token (?token= or Authorization: Bearer) and verifies it.
  #verifyUpgradeToken(request) {
    const verdict = verifyUpgradeRequest(this.tokens, request);
    if (verdict.response) {
      this.log("info", "websocket_upgrade", { status_code: verdict.response.status, outcome: "rejected", error: verdict.error });
      return verdict.response;
    }
    return verdict.context;
  }

  /** A socket is open. Calls onConnect; if it throws, only this connection is closed. */
  async open(peer, { restored = false } = {}) {
    // Frames that arrive while onConnect is still running wait in entry._early (clients send their
    // first sync-step-1 right after the handshake; an onConnect that awaits anything must not lose it).
    const entry = new Transport(this, peer);
    const transport = entry;
    this.connections.set(peer.id, entry);
    try {
      await this.options.onConnect({ transport, context: peer.context, id: peer.id, restored });
      entry._connected = true;
      if (entry._socketEnded) {
        await this.#disconnect(entry); // closed while onConnect was running
        return;
      }
      const early = entry._early;
      entry._early = null;
      for (const frame of early) this.#deliver(entry, frame);
    } catch (err) {
      this.log("error", "websocket_connect_failed", { client_id: peer.id, error: errorText(err) });
      entry._connected = true; // onConnect was reached: onDisconnect still runs exactly once
      this._closePeer(peer, CloseCode.internalError, "onConnect failed");
      await this.close(peer.id);
    }
  }

  /** One incoming WebSocket message. Never throws: nothing a client sends may take the process down. */
  message(id, data) {
    const entry = this.connections.get(id);
    if (!entry || entry._socketEnded) return;
    let frame;
    try {
      frame = toBytes(data);
    } catch (err) {
      this.log("warn", "websocket_bad_message", { client_id: id, error: errorText(err) });
      return;
    }
    if (entry._early) {
      entry._earlyBytes += frame.length;
      if (entry._earlyBytes > this.maxBuffered) {
        this.log("warn", "websocket_early_flood", { client_id: id, bytes: entry._earlyBytes });
        this._closePeer(entry._peer, 1008, "too much data before the connection was ready");
        this.close(id);
        return;
      }
      entry._early.push(frame);
    } else {
      this.#deliver(entry, frame);
    }
    if (this.options.onMessage) {
      Promise.resolve()
        .then(() => this.options.onMessage({ id, context: entry._peer.context, message: frame }))
        .catch((err) => this.log("error", "websocket_on_message_failed", { client_id: id, error: errorText(err) }));
    }
  }

  #deliver(transport, frame) {
    const entry = transport;
    if (transport._hasListeners()) {
      try {
        transport._deliver(frame);
      } catch (err) {
        this.log("error", "websocket_message_failed", { client_id: entry._peer.id, error: errorText(err) });
      }
      return;
    }
    // Nobody consumes this transport (onConnect did not attach a server): the core still
    // validates the frame, answers pings and reports malformed frames.
    const verdict = inspectFrame(frame);
    if (verdict.reply) this._send(entry._peer, verdict.reply);
    if (verdict.error) this.log("warn", "websocket_invalid_frame", { client_id: entry._peer.id, error: verdict.error });
  }

  /**
   * The socket ended (client close, error, server close, shutdown) with the close `code` the
   * runtime reported (counted under the code the server sent, when it closed first). Idempotent.
   */
  async close(id, code) {
    const entry = this.connections.get(id);
    if (!entry || entry._socketEnded) return;
    entry._socketEnded = true;
    this.closes.add(`code="${entry._closeCode ?? code ?? 1006}"`);
    if (entry._connected) await this.#disconnect(entry);
  }

  async #disconnect(entry) {
    this.connections.delete(entry._peer.id);
    try {
      await this.options.onDisconnect?.(entry._peer.id);
    } catch (err) {
      this.log("error", "websocket_disconnect_failed", { client_id: entry._peer.id, error: errorText(err) });
    }
    entry._ended(this.log);
  }

  error(id, err) {
    this.log("warn", "websocket_error", { client_id: id, error: errorText(err) });
    const entry = this.connections.get(id);
    if (entry) this._closePeer(entry._peer, CloseCode.internalError, "socket error");
    return this.close(id);
  }

  /** Closes every connection (server shutdown); onDisconnect runs for each. */
  async shutdown(code = 1001, reason = "server shutting down") {
    const entries = [...this.connections.values()];
    for (const e of entries) this._closePeer(e._peer, code, reason);
    await Promise.all(entries.map((e) => this.close(e._peer.id)));
  }

  _send(peer, frame) {
    const held = peer.held;
    if (held) {
      // Behind a frame larger than the limit: kept, in order, until the runtime drains.
      held.push(frame.slice());
      held.bytes += frame.byteLength;
      if (held.bytes <= this.maxBuffered) return true;
      return this._backpressure(peer, peer.bufferedAmount?.() ?? 0, false);
    }
    let sent;
    try {
      sent = peer.send(frame);
    } catch (err) {
      this.log("warn", "websocket_send_failed", { client_id: peer.id, error: errorText(err) });
      this.close(peer.id);
      return false;
    }
    // 0 = dropped by the runtime: the client missed a frame and would silently diverge, so it is
    // disconnected to reconnect and resync. -1 = queued: tolerated up to maxBufferedBytes.
    const buffered = peer.bufferedAmount?.() ?? 0;
    if (sent !== 0 && buffered <= this.maxBuffered) return true;
    // One large frame (over half the limit) on a queue that was within it, such as the first
    // sync-step-2 of a document bigger than maxBufferedBytes: what follows waits for the runtime's
    // drain event instead of piling on top, so a reader that keeps up can still open such a
    // document. A reader that stalls is closed once what waits exceeds the limit as well.
    if (sent !== 0 && peer.drains && frame.byteLength > this.maxBuffered / 2 && buffered - frame.byteLength <= this.maxBuffered) {
      peer.held = Object.assign([], { bytes: 0 });
      return true;
    }
    return this._backpressure(peer, buffered, sent === 0);
  }

  /** The runtime says a socket's queue drained: frames held behind a large one go out. */
  drain(id) {
    const peer = this.connections.get(id)?._peer;
    const held = peer?.held;
    if (!held || (peer.bufferedAmount?.() ?? 0) > this.maxBuffered) return;
    peer.held = undefined;
    // A frame that starts holding again takes the rest behind it, in order.
    for (const frame of held) if (!this._send(peer, frame)) return;
  }

  _backpressure(peer, buffered, dropped) {
    this.log("warn", "websocket_send_backpressure", { client_id: peer.id, buffered, dropped });
    this._closePeer(peer, CloseCode.tryAgainLater, "backpressure");
    try {
      peer.terminate?.();
    } catch {
      // already gone
    }
    this.close(peer.id);
    return false;
  }

  _closePeer(peer, code, reason) {
    const entry = this.connections.get(peer.id);
    if (entry && entry._closeCode === undefined) entry._closeCode = code;
    try {
      peer.close(code, reason);
    } catch {
      // already closed
    }
  }
}

function normalizeHeaders(headers) {
  if (!headers) return {};
  if (typeof headers.entries === "function" && !Array.isArray(headers)) return Object.fromEntries(headers.entries());
  if (Array.isArray(headers)) return Object.fromEntries(headers);
  return { ...headers };
}
