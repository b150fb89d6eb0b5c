// teleportal/provider: a Y.js provider for browsers, Bun and Node that speaks the Teleportal wire
// protocol like the reference client (spec section 1 and 6 item 14). One WebSocket carries any
// number of documents; each document gets sync-step-1 + presence-announce on every connect, and
// local changes go out as V2 updates inside content-encrypted envelopes, batched per frame.
// README: wasm/src/README-provider.md.
import * as Y from "yjs";
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from "y-protocols/awareness";
import { ObservableV2 } from "lib0/observable";
import { PING, PONG, decodeEnvelope, decodeMessage, encodeEnvelope, encodeMessage, getMessageId, startsWith } from "./provider-codec.js";
import { SseSocket } from "./provider-http.js";
import { MilestoneClient, RpcClient } from "./provider-rpc.js";

export { MilestoneClient, RpcClient, RpcError } from "./provider-rpc.js";

/** Close code a server uses when a token expired without an in-band refresh. */
export const TOKEN_EXPIRED = 4401;

/** An error surfaced through the "error" events (never thrown at the caller). */
export class ProviderError extends Error {
  /**
   * @param {"nack" | "denied" | "refresh" | "token" | "protocol"} type
   * @param {string} message
   * @param {{document?: string, messageId?: string, reason?: string, cause?: unknown}} [details]
   */
  constructor(type, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "ProviderError";
    this.type = type;
    this.document = details.document;
    this.messageId = details.messageId;
    this.reason = details.reason;
  }
}

/** The `exp` and `iat` claims of a JWT (no verification: only to schedule a refresh). */
export function tokenTimes(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    return { exp: typeof claims.exp === "number" ? claims.exp : undefined, iat: claims.iat };
  } catch {
    return {};
  }
}

const kindOf = (payload) => (payload.type === "update" ? "an update" : `a ${payload.type}`);

/**
 * One document on a provider's connection: its Y.Doc, its Awareness and its sync state.
 * Events: "synced" (boolean), "error" (ProviderError), "peer-join" / "peer-leave" (presence entry).
 * @extends {ObservableV2<any>}
 */
export class TeleportalDocument extends ObservableV2 {
  /** @type {Promise<void>} */
  #synced;
  #settle = { resolve: () => {}, reject: (_err) => {} };
  /** Local updates waiting for the next batch. @type {Uint8Array[]} */
  queue = [];
  /** Removes the provider's listeners from the doc and awareness (set by open()). */
  detach = () => {};

  /**
   * @param {TeleportalProvider} provider
   * @param {string} name
   * @param {{doc?: Y.Doc, awareness?: Awareness}} options
   */
  constructor(provider, name, options) {
    super();
    this.provider = provider;
    this.name = name;
    this.doc = options.doc ?? new Y.Doc();
    this.ownsAwareness = !options.awareness;
    this.awareness = options.awareness ?? new Awareness(this.doc);
    this.isSynced = false;
    this.#resetSynced();
  }

  /** Resolves when the document is in sync with the server over the current connection. */
  get synced() {
    return this.#synced;
  }

  /** The document's milestones (version history) on the server. */
  get milestones() {
    this.#milestones ??= new MilestoneClient(this.provider.rpc, this.name, this.doc);
    return this.#milestones;
  }
  /** @type {MilestoneClient | undefined} */
  #milestones;

  #resetSynced() {
    this.#synced = new Promise((resolve, reject) => (this.#settle = { resolve, reject }));
    this.#synced.catch(() => {}); // a refusal is reported through "error" as well
  }

  /** @param {boolean} synced */
  setSynced(synced) {
    if (synced === this.isSynced) return;
    this.isSynced = synced;
    if (synced) this.#settle.resolve();
    else this.#resetSynced();
    this.emit("synced", [synced]);
  }

  /** @param {ProviderError} err */
  refuse(err) {
    this.#settle.reject(err);
    this.#resetSynced();
  }
}

/**
 * @typedef {object} ProviderOptions
 * @property {string | URL} url WebSocket URL of the server (the token goes into `?token=`)
 * @property {string} [token] a fixed token
 * @property {() => string | Promise<string>} [getToken] called before every connect and before
 *   the current token expires (its new token is sent in-band on the open connection)
 * @property {typeof WebSocket} [WebSocket] a WebSocket class (default: globalThis.WebSocket;
 *   Node 20 has none: pass the `ws` package's)
 * @property {boolean} [connect] connect at once (default true)
 * @property {number} [batchMs] longest wait before local updates are sent (default 20; an
 *   animation frame, when the platform has one, sends them sooner)
 * @property {number} [minDelay] first reconnect delay in ms (default 250), doubled per failure
 * @property {number} [maxDelay] longest reconnect delay in ms (default 10000); each delay is
 *   drawn from [d/2, d] (jitter)
 * @property {number} [pingInterval] ms between "YJSping" frames (default 15000); a connection
 *   that receives nothing for two intervals is dropped and re-established
 * @property {number} [refreshMargin] ms before expiry at which getToken is called (default 60000,
 *   at most a quarter of the token's lifetime)
 * @property {Array<"websocket" | "http">} [transports] tried in order on each connect, starting at
 *   the last one that worked (default ["websocket", "http"]: HTTP/SSE when the WebSocket fails)
 * @property {{websocket?: number, http?: number}} [transportTimeouts] ms a transport may take to
 *   open (default 5000 / 10000)
 * @property {number} [upgradeProbeInterval] while on a fallback transport: ms before a WebSocket is
 *   tried again (default 30000; doubles per failed probe up to 300000)
 * @property {typeof fetch} [fetch] fetch for the HTTP transport (default globalThis.fetch)
 */

/**
 * A connection to a Teleportal server carrying any number of documents.
 * Events: "status" ("connecting" | "connected" | "disconnected" | "closed"), "error"
 * (ProviderError: NACKs, refusals, failed refreshes), "token" (a refreshed token was accepted).
 * @extends {ObservableV2<any>}
 */
export class TeleportalProvider extends ObservableV2 {
  /** @type {Map<string, TeleportalDocument>} */
  documents = new Map();
  /** @type {"connecting" | "connected" | "disconnected" | "closed"} */
  status = "disconnected";
  /** @type {WebSocket | null} */
  #ws = null;
  #attempt = 0;
  #timers = { reconnect: 0, ping: 0, refresh: 0, flush: 0, probe: 0 };
  #lastReceived = 0;
  #flushScheduled = false;
  /** Frames sent and not yet acknowledged: messageId -> what they were. */
  #pending = new Map();
  /** @type {Array<() => void>} */
  #idleWaiters = [];
  #wantConnected = true;
  #run = 0; // connect attempts; a stale one (disconnect() while getToken ran) gives up
  /** The transport in use ("websocket" | "http"), null while not connected. */
  transport = null;
  #lastTransport = 0; // index into options.transports of the last one that opened
  #probeDelay = 0;
  /** RPC frames waiting for the connection. @type {Uint8Array[]} */
  #rpcQueue = [];
  /** Requests to the server's RPC methods (spec ext. 1.7): `provider.rpc.request(document, method, payload)`. */
  rpc = new RpcClient((frame) => {
    if (this.status === "connected" && this.#ws) this.#ws.send(frame);
    else this.#rpcQueue.push(frame);
  });

  /** @param {ProviderOptions} options */
  constructor(options) {
    super();
    this.options = {
      batchMs: 20,
      minDelay: 250,
      maxDelay: 10_000,
      pingInterval: 15_000,
      refreshMargin: 60_000,
      transports: ["websocket", "http"],
      upgradeProbeInterval: 30_000,
      ...options,
    };
    this.options.transportTimeouts = { websocket: 5000, http: 10_000, ...options.transportTimeouts };
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (this.options.transports.includes("websocket") && typeof this.WebSocket !== "function") {
      throw new TypeError("No WebSocket class: pass { WebSocket } (for example the ws package's) on Node 20");
    }
    this.url = new URL(options.url); // throws here, not later in a reconnect
    this.token = options.token;
    if (options.connect !== false) this.connect();
  }

  /**
   * Starts syncing `name` on this connection (or returns the handle it already has).
   * @param {string} name
   * @param {{doc?: Y.Doc, awareness?: Awareness}} [options]
   * @returns {TeleportalDocument}
   */
  open(name, options = {}) {
    const existing = this.documents.get(name);
    if (existing) return existing;
    const d = new TeleportalDocument(this, name, options);
    this.documents.set(name, d);
    const onUpdate = (update, origin) => {
      if (origin === this || this.status !== "connected") return; // offline: the next sync carries it
      d.queue.push(update);
      this.#scheduleFlush();
    };
    const onAwareness = ({ added, updated, removed }, origin) => {
      const me = d.awareness.clientID;
      if (origin === this || ![...added, ...updated, ...removed].includes(me)) return;
      this.#send(d, "awareness", { type: "awareness-update", update: encodeAwarenessUpdate(d.awareness, [me]) });
    };
    d.doc.on("updateV2", onUpdate);
    d.awareness.on("update", onAwareness);
    d.detach = () => {
      d.doc.off("updateV2", onUpdate);
      d.awareness.off("update", onAwareness);
    };
    if (this.status === "connected") this.#start(d);
    return d;
  }

  /** Stops syncing `name`: says goodbye (awareness removed, presence unannounced) and detaches. */
  close(name) {
    const d = this.documents.get(name);
    if (!d) return;
    this.#flush();
    removeAwarenessStates(d.awareness, [d.awareness.clientID], "close"); // sent by the listener
    this.#send(d, "presence", { type: "presence-unannounce", awarenessId: d.awareness.clientID });
    d.detach();
    if (d.ownsAwareness) d.awareness.destroy();
    this.documents.delete(name);
  }

  /** Opens the connection (again, after disconnect()). */
  connect() {
    this.#wantConnected = true;
    if (this.#ws || this.status === "connecting") return;
    clearTimeout(this.#timers.reconnect);
    this.#open();
  }

  /** Closes the connection and stays offline until connect(). Documents stay open. */
  disconnect() {
    this.#wantConnected = false;
    this.#run++;
    clearTimeout(this.#timers.reconnect);
    clearTimeout(this.#timers.refresh);
    this.#ws?.close(1000, "client disconnect");
    this.#dropped();
  }

  /** Closes every document and the connection for good. */
  destroy() {
    this.rpc.destroy();
    this.#rpcQueue = [];
    for (const name of [...this.documents.keys()]) this.close(name);
    this.disconnect();
    this.#setStatus("closed");
  }

  /**
   * Resolves once every local change so far is acknowledged by the server (waits through
   * reconnects). Rejects after `timeout` ms.
   */
  flush({ timeout = 10_000 } = {}) {
    this.#flush();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        reject(new Error(`flush: not everything was acknowledged within ${timeout} ms`));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#idleWaiters.push(done);
      this.#checkIdle();
    });
  }

  /** Gets a new token from getToken() now and sends it on the open connection. */
  async refreshToken() {
    clearTimeout(this.#timers.refresh);
    const token = await this.#fetchToken();
    if (token === undefined) return;
    this.#scheduleRefresh();
    const d = this.documents.values().next().value;
    if (this.status !== "connected" || !d) return; // the next connect uses it
    this.#send(d, "doc", { type: "auth-message", permission: "allowed", reason: token });
  }

  async #fetchToken() {
    if (!this.options.getToken) return this.token;
    try {
      this.token = await this.options.getToken();
      return this.token;
    } catch (err) {
      this.#error(new ProviderError("token", `Could not get a token: ${err?.message ?? err}`, { cause: err }));
      return undefined;
    }
  }

  #scheduleRefresh() {
    clearTimeout(this.#timers.refresh);
    const { exp, iat } = this.token ? tokenTimes(this.token) : {};
    if (!this.options.getToken || exp === undefined) return;
    const now = Date.now();
    const lifetime = (exp - (iat ?? now / 1000)) * 1000;
    const at = exp * 1000 - Math.min(this.options.refreshMargin, lifetime / 4);
    // At least a second apart, so a getToken that hands out stale tokens cannot spin.
    this.#timers.refresh = setTimeout(() => this.refreshToken(), Math.max(1000, at - now));
  }

  async #open() {
    const run = ++this.#run;
    this.#setStatus("connecting");
    const token = await this.#fetchToken();
    if (run !== this.#run) return;
    if (!this.#wantConnected) return this.#setStatus("disconnected");
    if (this.options.getToken && token === undefined) return this.#dropped();
    const url = new URL(this.url);
    if (token) url.searchParams.set("token", token);
    // Each transport in turn, from the last one that worked (spec 4.8); all failed: back off.
    const names = this.options.transports;
    for (let k = 0; k < names.length; k++) {
      const index = (this.#lastTransport + k) % names.length;
      const ws = await this.#tryTransport(names[index], url);
      if (run !== this.#run || !this.#wantConnected) {
        ws?.close(1000, "client disconnect");
        if (run === this.#run) this.#setStatus("disconnected");
        return;
      }
      if (ws) {
        this.#lastTransport = index;
        return this.#adopt(ws, names[index], index);
      }
    }
    this.#dropped();
  }

  // Opens one transport; resolves with it once open, or null (error, close or timeout first).
  #tryTransport(name, url) {
    let ws;
    try {
      ws = name === "http" ? new SseSocket(url, { fetch: this.options.fetch, token: () => this.token }) : new this.WebSocket(url.toString());
    } catch (err) {
      this.#error(new ProviderError("protocol", `Could not open ${url.origin}: ${err?.message ?? err}`, { cause: err }));
      return Promise.resolve(null);
    }
    ws.binaryType = "arraybuffer";
    return new Promise((resolve) => {
      const early = [];
      const timer = setTimeout(() => fail(), this.options.transportTimeouts[name] ?? 10_000);
      const fail = () => {
        clearTimeout(timer);
        ws.onopen = ws.onmessage = ws.onclose = null;
        ws.onerror = () => {}; // closing a connecting socket reports an error
        try {
          ws.close();
        } catch {
          // never opened
        }
        resolve(null);
      };
      ws.onmessage = (event) => early.push(event);
      ws.onerror = () => {};
      ws.onclose = fail;
      ws.onopen = () => {
        clearTimeout(timer);
        ws._early = early;
        resolve(ws);
      };
    });
  }

  // An open transport becomes the connection.
  #adopt(ws, name, index) {
    this.#ws = ws;
    this.transport = name;
    ws.onmessage = (event) => {
      this.#lastReceived = Date.now();
      this.#attempt = 0; // the server talks to us: the next drop starts the backoff afresh
      if (event.data instanceof ArrayBuffer) this.#receive(new Uint8Array(event.data));
    };
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      if (event.code === TOKEN_EXPIRED && !this.options.getToken) {
        this.#error(new ProviderError("token", "The server closed the connection: the token expired (set getToken to refresh it)"));
      }
      this.#dropped();
    };
    ws.onerror = () => {}; // a close event follows
    this.#lastReceived = Date.now();
    this.#setStatus("connected");
    this.#scheduleRefresh();
    this.#timers.ping = setInterval(() => this.#ping(), this.options.pingInterval);
    for (const d of this.documents.values()) this.#start(d);
    for (const frame of this.#rpcQueue.splice(0)) ws.send(frame);
    const early = ws._early ?? [];
    delete ws._early;
    for (const event of early) ws.onmessage?.(event);
    if (index > 0 && this.options.transports[0] === "websocket") {
      this.#probeDelay = this.options.upgradeProbeInterval;
      this.#scheduleProbe(ws);
    }
  }

  // On a fallback transport: try a WebSocket now and then; once one opens, reconnect over it.
  #scheduleProbe(current) {
    clearTimeout(this.#timers.probe);
    this.#timers.probe = setTimeout(async () => {
      if (this.#ws !== current) return;
      const url = new URL(this.url);
      if (this.token) url.searchParams.set("token", this.token);
      const probe = await this.#tryTransport("websocket", url);
      if (this.#ws !== current) return probe?.close(1000, "upgrade probe");
      if (!probe) {
        this.#probeDelay = Math.min(2 * this.#probeDelay, 300_000);
        return this.#scheduleProbe(current);
      }
      probe.close(1000, "upgrade probe");
      this.emit("upgrade", ["websocket"]);
      this.#lastTransport = 0;
      this.#dropped({ now: true });
      current.close(1000, "upgrading to websocket");
    }, this.#probeDelay);
  }

  #ping() {
    if (Date.now() - this.#lastReceived > 2 * this.options.pingInterval) {
      // Nothing heard for two intervals: the connection is dead even if the socket says otherwise.
      const ws = this.#ws;
      this.#dropped();
      ws?.close(4000, "ping timeout");
      return;
    }
    this.#ws?.send(PING);
  }

  // The socket is gone: forget what was in flight (the next sync carries it) and maybe retry.
  #dropped({ now = false } = {}) {
    const ws = this.#ws;
    this.#ws = null;
    this.transport = null;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    clearInterval(this.#timers.ping);
    clearTimeout(this.#timers.probe);
    this.#pending.clear();
    this.#flushScheduled = false;
    for (const d of this.documents.values()) {
      d.queue = [];
      d.setSynced(false);
      const others = [...d.awareness.getStates().keys()].filter((id) => id !== d.awareness.clientID);
      removeAwarenessStates(d.awareness, others, this); // offline: no claims about who is here
    }
    this.#setStatus("disconnected");
    if (!this.#wantConnected || this.status === "closed") return;
    const d = now ? 0 : Math.min(this.options.maxDelay, this.options.minDelay * 2 ** this.#attempt++);
    this.#timers.reconnect = setTimeout(() => this.#open(), d / 2 + (Math.random() * d) / 2);
  }

  #setStatus(status) {
    if (this.status === status || this.status === "closed") return;
    this.status = status;
    this.emit("status", [status]);
  }

  /** @param {ProviderError} err */
  #error(err, d = err.document ? this.documents.get(err.document) : undefined) {
    d?.emit("error", [err]);
    this.emit("error", [err]);
  }

  // A (re)connected document: the reference client's sequence, then awareness.
  #start(d) {
    this.#send(d, "doc", { type: "sync-step-1", sv: Y.encodeStateVector(d.doc) });
    this.#send(d, "presence", { type: "presence-announce", awarenessId: d.awareness.clientID });
    // Re-setting the state bumps its clock, so peers that dropped it accept it again.
    if (d.awareness.getLocalState() !== null) d.awareness.setLocalState(d.awareness.getLocalState());
    this.#send(d, "awareness", { type: "awareness-request" });
  }

  #send(d, type, payload) {
    if (this.status !== "connected" || !this.#ws) return;
    const frame = encodeMessage({ type, document: d.name, encrypted: false, payload });
    if (type === "doc") this.#pending.set(getMessageId(frame), { document: d.name, payload, frame });
    this.#ws.send(frame);
  }

  #scheduleFlush() {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const run = () => this.#flush();
    if (typeof globalThis.requestAnimationFrame === "function") globalThis.requestAnimationFrame(run);
    this.#timers.flush = setTimeout(run, this.options.batchMs);
  }

  #flush() {
    this.#flushScheduled = false;
    clearTimeout(this.#timers.flush);
    for (const d of this.documents.values()) {
      if (d.queue.length === 0) continue;
      const update = d.queue.length === 1 ? d.queue[0] : Y.mergeUpdatesV2(d.queue);
      d.queue = [];
      this.#send(d, "doc", { type: "update", update: { version: 2, data: encodeEnvelope(update) } });
    }
  }

  #checkIdle() {
    if (this.status !== "connected" || this.#pending.size > 0 || this.#flushScheduled) return;
    for (const d of this.documents.values()) if (!d.isSynced || d.queue.length > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** @param {Uint8Array} frame */
  #receive(frame) {
    if (startsWith(frame, PONG) || startsWith(frame, PING)) return;
    let m;
    try {
      m = decodeMessage(frame);
    } catch (err) {
      this.#error(new ProviderError("protocol", `Undecodable frame from the server: ${err.message}`, { cause: err }));
      return;
    }
    if (m.type === "ack") this.#onAck(m.payload);
    if (m.type === "rpc") this.rpc.receive(m);
    const d = m.document ? this.documents.get(m.document) : undefined;
    if (d && m.type === "doc") this.#onDoc(d, m.payload);
    if (d && m.type === "awareness") this.#onAwareness(d, m.payload);
    if (d && m.type === "presence") this.#onPresence(d, m.payload);
    this.#checkIdle();
  }

  #onAck({ messageId, error, retryAfter }) {
    const sent = this.#pending.get(messageId);
    if (!sent) return;
    const { document, payload, frame } = sent;
    if (error === undefined && retryAfter !== undefined) {
      // Retryable NACK (rate limit): the same frame again later; still in flight for flush().
      const ws = this.#ws;
      setTimeout(() => this.#ws === ws && ws?.send(frame), retryAfter);
      return;
    }
    this.#pending.delete(messageId);
    if (payload.type === "auth-message") {
      if (error === undefined) this.emit("token", [payload.reason]);
      else this.#refused(error, document, messageId);
      return;
    }
    if (error === undefined) return;
    this.#error(new ProviderError("nack", `The server refused ${kindOf(payload)} for "${document}": ${error}`, { document, messageId, reason: error }));
    // That content is missing on the server: a fresh sync uploads it again as a diff.
    const d = this.documents.get(document);
    if (d && payload.type === "update") this.#send(d, "doc", { type: "sync-step-1", sv: Y.encodeStateVector(d.doc) });
  }

  // Our server's NACK already says "Token refresh refused: <why>"; a denial says only <why>.
  #refused(reason, document, messageId) {
    const message = reason.startsWith("Token refresh refused") ? reason : `Token refresh refused: ${reason}`;
    this.#error(new ProviderError("refresh", message, { document, messageId, reason }));
  }

  #onDoc(d, p) {
    if (p.type === "sync-step-1") {
      const update = Y.encodeStateAsUpdateV2(d.doc, p.sv);
      this.#send(d, "doc", { type: "sync-step-2", update: { version: 2, data: encodeEnvelope(update) } });
    } else if (p.type === "sync-step-2" || p.type === "update") {
      try {
        const update = decodeEnvelope(p.update.data);
        if (update.length > 0) Y.applyUpdateV2(d.doc, update, this);
      } catch (err) {
        this.#error(new ProviderError("protocol", `Could not apply ${kindOf(p)} for "${d.name}": ${err.message}`, { document: d.name, cause: err }));
      }
    } else if (p.type === "sync-done") {
      d.setSynced(true);
    } else if (p.type === "auth-message" && p.permission === "denied") {
      // A refusal right after our in-band token is the refresh being refused, not the document.
      const auth = [...this.#pending].find(([, s]) => s.document === d.name && s.payload.type === "auth-message");
      if (auth) {
        this.#pending.delete(auth[0]);
        return this.#refused(p.reason, d.name, auth[0]);
      }
      const err = new ProviderError("denied", `Access to "${d.name}" denied: ${p.reason}`, { document: d.name, reason: p.reason });
      d.refuse(err);
      this.#error(err, d);
    }
  }

  #onAwareness(d, p) {
    if (p.type === "awareness-update") {
      applyAwarenessUpdate(d.awareness, p.update, this);
    } else if (d.awareness.getLocalState() !== null) {
      d.awareness.setLocalState(d.awareness.getLocalState()); // a newer clock, sent by the listener
    }
  }

  #onPresence(d, p) {
    if (p.type === "presence-join") d.emit("peer-join", [p]);
    if (p.type !== "presence-leave") return;
    d.emit("peer-leave", [p]);
    if (p.awarenessId !== d.awareness.clientID) removeAwarenessStates(d.awareness, [p.awarenessId], this);
  }
}
