// teleportal/server: the document server. Routing, sessions, permissions, acks, sync, loading and
// storing are decided by the C++ core; this class only moves bytes between transports, storage
// and the core, and does every `await`.
import { asBytes, core } from "./core.js";
import { decodeAny, decodeMessage, encodeAny, encodeMessage } from "./protocol.js";
import { Transport } from "./connections.js";
import { Kind, LEVELS, beforeCall, coreMetrics, input, putBytes, putList, putText, read, result } from "./server-core.js";
import { Histogram, LabeledCounter, renderMetrics } from "./metrics.js";

const kServerConfig = Symbol.for("teleportal.token.serverConfig");
const encoder = new TextEncoder();
const Access = { read: 1, write: 2 };

function defaultLogger(level, event, fields) {
  if (level === "error" || level === "warn") console.error(JSON.stringify({ level, event, ...fields }));
}

function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

const EVENTS = ["connect", "disconnect", "document-load", "document-unload", "write", "error"];
const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());

const later = typeof setImmediate === "function" ? setImmediate : (fn) => setTimeout(fn, 0);

/** True when `frame` is an rpc frame (type byte 4 after the document name): cheap, no decode. */
function isRpcFrame(frame) {
  if (frame.length < 7 || frame[0] !== 0x59) return false;
  let at = 4;
  let length = 0;
  for (let shift = 0; at < frame.length && shift < 35; shift += 7) {
    const b = frame[at++];
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  const type = at + length + 1;
  return type < frame.length && frame[type] === 4;
}

/** The rpcHandlers option, checked: method name -> entry. */
function rpcEntries(handlers) {
  const entries = new Map();
  if (handlers == null) return entries;
  if (typeof handlers !== "object") throw new TypeError("rpcHandlers must be an object: { [method]: { handler, streamHandler?, init?, access? } }");
  for (const [method, entry] of Object.entries(handlers)) {
    if (!entry || typeof entry.handler !== "function") throw new TypeError(`rpcHandlers.${method}.handler must be a function`);
    if (entry.streamHandler !== undefined && typeof entry.streamHandler !== "function") {
      throw new TypeError(`rpcHandlers.${method}.streamHandler must be a function`);
    }
    if (entry.init !== undefined && typeof entry.init !== "function") throw new TypeError(`rpcHandlers.${method}.init must be a function`);
    const access = entry.access ?? "write";
    if (access !== "read" && access !== "write") throw new TypeError(`rpcHandlers.${method}.access must be "read" or "write"`);
    for (const key of ["request", "response", "stream"]) {
      if (entry[key] !== undefined) {
        throw new TypeError(`rpcHandlers.${method}.${key}: custom payload codecs are not supported (payloads are lib0 any values)`);
      }
    }
    entries.set(method, { handler: entry.handler, streamHandler: entry.streamHandler, init: entry.init, access });
  }
  return entries;
}

const hasMilestoneStorage = (storage) =>
  ["loadMilestones", "putMilestone", "deleteMilestone", "loadMilestoneSnapshot"].every((m) => typeof storage?.[m] === "function");

/** The milestones option, checked: {enabled, triggers (for the core), onCreated}. */
function milestoneSettings(option, storage) {
  if (option === false) return { enabled: false, triggers: [], onCreated: null };
  if (option != null && option !== true && typeof option !== "object") throw new TypeError("milestones must be false, true or { triggers?, onMilestoneCreated? }");
  const o = option && typeof option === "object" ? option : {};
  if (storage && !hasMilestoneStorage(storage)) {
    // A storage without milestones: built-in methods stay off unless asked for explicitly.
    if (option != null) throw new TypeError("milestones need a storage with loadMilestones, putMilestone, deleteMilestone and loadMilestoneSnapshot (MilestoneStorage)");
    return { enabled: false, triggers: [], onCreated: null };
  }
  if (o.onMilestoneCreated !== undefined && typeof o.onMilestoneCreated !== "function") throw new TypeError("milestones.onMilestoneCreated must be a function");
  const triggers = (o.triggers ?? []).map((t, i) => {
    const where = `milestones.triggers[${i}]`;
    if (!t || typeof t !== "object") throw new TypeError(`${where} must be an object`);
    if (t.autoName !== undefined && typeof t.autoName !== "string") throw new TypeError(`${where}.autoName must be a string`);
    const base = { id: String(t.id ?? i), enabled: t.enabled !== false, autoName: t.autoName };
    if (t.type === "update-count") {
      const n = t.config?.updateCount;
      if (!Number.isInteger(n) || n < 1) throw new TypeError(`${where}.config.updateCount must be an integer >= 1`);
      return { ...base, type: t.type, config: { updateCount: n } };
    }
    if (t.type === "time-based") {
      const ms = t.config?.interval;
      if (typeof ms !== "number" || !(ms >= 0)) throw new TypeError(`${where}.config.interval must be a number of ms >= 0`);
      return { ...base, type: t.type, config: { interval: ms } };
    }
    throw new TypeError(`${where}.type must be "update-count" or "time-based"${t.type === "event-based" ? " (event-based triggers are not supported)" : ""}`);
  });
  return { enabled: true, triggers, onCreated: o.onMilestoneCreated ?? null };
}

function randomSeed() {
  const seed = new Uint8Array(32);
  globalThis.crypto.getRandomValues(seed);
  return seed;
}

const RPC_STREAM = 0;
const RPC_RESPONSE = 1;
const RPC_ERROR = 2;
const RPC_DONE = 3;

/** Token settings for the core: from a tokenManager, a `secret`, or TELEPORTAL_SECRET. */
function tokenSettings(options) {
  if (options.tokenManager) {
    const get = options.tokenManager[kServerConfig];
    if (typeof get !== "function") throw new TypeError("tokenManager must come from createTokenManager (teleportal/token)");
    return get.call(options.tokenManager);
  }
  const secret = options.secret ?? (globalThis.process?.env?.TELEPORTAL_SECRET || null);
  return {
    secret: secret == null ? new Uint8Array(0) : typeof secret === "string" ? encoder.encode(secret) : secret,
    issuer: options.issuer ?? "teleportal",
    audience: options.audience ?? "teleportal",
    allowMissingDocumentAccess: false,
  };
}

/** Token buckets (messages/s and burst) per connection and per user; `false` turns them off. */
function rateLimit(option) {
  if (option === false) return { ratePerConnection: 0, ratePerUser: 0 };
  const o = option ?? {};
  return {
    ratePerConnection: o.perConnection ?? 1000,
    burstPerConnection: o.perConnectionBurst ?? 5000,
    ratePerUser: o.perUser ?? 5000,
    burstPerUser: o.perUserBurst ?? 20000,
  };
}

/** The runtime's embedded default: SQLite at TELEPORTAL_DB (default ./data/teleportal.sqlite). */
async function defaultStorage() {
  const { openSqliteStorage } = await import("./storage.js");
  if (typeof openSqliteStorage !== "function") {
    throw new Error("no default storage in this runtime: pass `storage` (e.g. new MemoryDocumentStorage())");
  }
  const path = globalThis.process?.env?.TELEPORTAL_DB || "./data/teleportal.sqlite";
  return openSqliteStorage({ path });
}

const kDeliver = Symbol("deliver");

// A connected client. For our own transports it is also the transport's sink (deliver, ended):
// no listener closures per connection.
class ClientEntry {
  constructor(server, id, handle, transport, context) {
    this.server = server;
    this.id = id;
    this.handle = handle;
    this.transport = transport;
    this.context = context;
    this.views = transport instanceof Transport; // gets frames as views of wasm memory
    this.off = null; // other transports: the unsubscribe functions of our two listeners
  }
  deliver(frame) {
    this.server[kDeliver](this.handle, frame);
  }
  ended() {
    this.server.disconnectClient(this.id);
  }
}

/** @param {import("../types/server").ServerOptions} [options] */
export class Server {
  #core = 0; // the core's address in wasm memory (wasm/bind/bind_server.cpp)
  /** @type {Map<string, ClientEntry>} */
  #clients = new Map();
  /** @type {Map<number, ClientEntry>} */
  #byHandle = new Map();
  #allLogs = true; // the logger wants info and debug events too
  #storage;
  #ownsStorage = false;
  #flushScheduled = false;
  #committing = null; // the commit in progress (a Promise), or null
  #compactions = new Set();
  #timer = null;
  #checkPermission;
  /** @type {Map<number, {key: string, readers: Set<number>}>} the core's topic number -> its readers */
  #topics = new Map();
  #cluster = null;
  /** @type {Map<string, Promise<void>>} document key -> its channel subscription, until it settles */
  #subscribing = new Map();
  /** @type {Map<string, {handler: Function, streamHandler?: Function, init?: Function, access: string}>} */
  #rpc = new Map();
  #milestones = { enabled: false, triggers: [], onCreated: null };
  /** @type {Map<string, Promise<void>>} document key -> its last milestone storage operation */
  #milestoneChains = new Map();
  /** @type {Array<() => unknown>} what the rpcHandlers' init hooks returned */
  #cleanups = [];
  /** Called with (clientId, document) when a client joins a document (hosts that restore memberships after hibernation). */
  onJoin = null;
  /** @type {Map<string, Set<Function>>} server.on() listeners by event */
  #listeners = new Map();
  #storageSeconds = new Histogram("storage_operation_duration_seconds");
  #storageOps = new LabeledCounter(
    "storage_operations_total",
    ["commit", "load"].flatMap((op) => [`operation="${op}",result="ok"`, `operation="${op}",result="error"`]),
  );

  /** @param {import("../types/server").ServerOptions} [options] */
  constructor(options = {}) {
    this.options = options;
    const logger = options.logger ?? defaultLogger;
    // Every error-level event is also an "error" event for server.on("error").
    this.log = (level, event, fields) => {
      logger(level, event, fields);
      if (level === "error") this.#emit("error", { event, ...fields });
    };
    // info/debug events are made only for a logger that wants them (logLevel, default "debug").
    this.#allLogs = options.logger !== undefined && LEVELS.indexOf(options.logLevel ?? "debug") <= 1;
    this.#storageSeconds.series(`operation="commit"`);
    this.#storageSeconds.series(`operation="load"`);
    this.#checkPermission = options.checkPermission ?? null;
    const permissions = this.#checkPermission ? "callback" : (options.permissions ?? "token");
    if (!["token", "none", "callback"].includes(permissions)) throw new TypeError(`unknown permissions mode "${permissions}"`);
    if (permissions === "none") this.log("warn", "permissions_disabled", { reason: 'permissions: "none": every client may read and write every document' });
    const tokens = tokenSettings(options);
    this.#rpc = rpcEntries(options.rpcHandlers);
    this.#milestones = milestoneSettings(options.milestones, options.storage);
    if (options.storage === undefined) {
      this.#ownsStorage = true; // opened on first use
    } else if (options.storage && typeof options.storage.load === "function" && typeof options.storage.commit === "function") {
      this.#storage = options.storage;
    } else {
      throw new TypeError("storage must implement load(key) and commit(writes) (teleportal/storage)");
    }
    const config = encoder.encode(
      JSON.stringify({
        permissions,
        persist: true,
        maxMessageSize: options.maxMessageSize ?? 10 * 1024 * 1024,
        unloadAfterMs: options.unloadAfterMs ?? 5000,
        maxDocumentsPerConnection: options.maxDocumentsPerConnection ?? 1000,
        compactAfter: options.compactAfter ?? 64,
        ...rateLimit(options.rateLimit),
        maxDocumentNameBytes: options.maxDocumentNameBytes ?? 1024,
        maxAwarenessBytes: options.maxAwarenessBytes ?? 64 * 1024,
        maxConnectionsPerDocument: options.maxConnectionsPerDocument ?? 10000,
        nodeId: options.cluster?.nodeId ?? "",
        heartbeatMs: options.cluster?.heartbeatMs ?? 10000,
        presenceTimeoutMs: options.cluster?.presenceTimeoutMs ?? 30000,
        issuer: tokens.issuer,
        audience: tokens.audience,
        allowMissingDocumentAccess: tokens.allowMissingDocumentAccess,
        infoLogs: this.#allLogs,
        rpcMethods: [...this.#rpc].map(([name, e]) => ({ name, access: e.access, stream: typeof e.streamHandler === "function" })),
        rpcTimeoutMs: options.rpcTimeoutMs ?? 30000,
        milestones: this.#milestones.enabled,
        milestoneTriggers: this.#milestones.triggers,
      }),
    );
    const seed = randomSeed();
    beforeCall();
    input(config.length + tokens.secret.length + seed.length);
    putBytes(config, 0);
    putBytes(tokens.secret, config.length);
    putBytes(seed, config.length + tokens.secret.length);
    core._tp_server_create(config.length, tokens.secret.length, seed.length);
    this.#core = result(0);
    if (options.cluster) {
      this.#cluster = options.cluster;
      this.#cluster.onMessage((key, message) => {
        beforeCall();
        const keyLen = putText(key, 0);
        input(keyLen + message.length);
        putBytes(message, keyLen);
        this.#perform(core._tp_server_remote(this.#core, keyLen, message.length));
      });
    }
    const every = options.tickIntervalMs ?? 1000;
    if (every > 0) {
      this.#timer = setInterval(() => this.tick(), every);
      this.#timer.unref?.();
    }
    // Spec ext. 1.2: each entry's init, in object order; what it returns runs at close().
    for (const entry of this.#rpc.values()) {
      if (!entry.init) continue;
      const cleanup = entry.init(this);
      if (typeof cleanup === "function") this.#cleanups.push(cleanup);
    }
  }

  /** Number of connected clients. */
  get clientCount() {
    return this.#clients.size;
  }

  /** Number of documents loaded in memory. */
  get documentCount() {
    beforeCall();
    core._tp_server_state(this.#core);
    return result(2);
  }

  /**
   * Listens to server events: connect, disconnect, document-load, document-unload, write, error
   * (payloads in types/server.d.ts). A listener that throws is logged and never breaks the server.
   */
  on(event, listener) {
    if (!EVENTS.includes(event)) throw new TypeError(`unknown event "${event}" (one of ${EVENTS.join(", ")})`);
    if (typeof listener !== "function") throw new TypeError("listener must be a function");
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  off(event, listener) {
    const set = this.#listeners.get(event);
    set?.delete(listener);
    if (set?.size === 0) this.#listeners.delete(event);
    return this;
  }

  #emit(event, payload) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (err) {
        // Logged straight to the logger: a throwing "error" listener must not call itself again.
        (this.options.logger ?? defaultLogger)("error", "event_listener_failed", { listener_event: event, error: errorText(err) });
      }
    }
  }

  /** The counters as [name with labels (without the teleportal_ prefix), value] samples. */
  metricSamples() {
    return [...coreMetrics(this.#core), ...this.#storageOps.samples(), ...this.#storageSeconds.samples()];
  }

  /** Prometheus text (serve it as text/plain; version=0.0.4), with `extra` samples (e.g. handlers.metricSamples()). */
  metrics(extra = []) {
    return renderMetrics([...this.metricSamples(), ...extra]);
  }

  // One storage operation's outcome and duration (ms since `started`).
  #storageDone(operation, ok, started) {
    this.#storageOps.add(`operation="${operation}",result="${ok ? "ok" : "error"}"`);
    this.#storageSeconds.observe(`operation="${operation}"`, (now() - started) / 1000);
  }

  /**
   * Whether storage and (when configured) the cluster answer their ping() within `timeoutMs`:
   * `{ ok, checks: { storage: "ok" | error text, cluster?: ... } }`. A storage without ping() counts as ok.
   */
  async health({ timeoutMs = 2000 } = {}) {
    const check = async (ping) => {
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([Promise.resolve().then(ping), late]);
        return "ok";
      } catch (err) {
        return errorText(err);
      } finally {
        clearTimeout(timer);
      }
    };
    const checks = {};
    checks.storage = await check(async () => {
      const storage = await this.#getStorage();
      await storage.ping?.();
    });
    if (this.#cluster) checks.cluster = await check(() => this.#cluster.ping?.());
    return { ok: Object.values(checks).every((c) => c === "ok"), checks };
  }

  /** The context a client was created with (the same object, unchanged). */
  getClient(id) {
    const c = this.#clients.get(id);
    return c ? { id, context: c.context, transport: c.transport } : undefined;
  }

  /**
   * Attaches a transport (from getWebsocketHandlers' onConnect, or any object with
   * send(Uint8Array) and onMessage(listener)) as client `id` with the given context.
   */
  async createClient(transport, context = {}, id = transport?.id) {
    if (typeof id !== "string" || id === "") throw new TypeError("createClient needs a client id");
    if (!transport || typeof transport.send !== "function" || typeof transport.onMessage !== "function") {
      throw new TypeError("transport must have send(frame) and onMessage(listener)");
    }
    if (this.#clients.has(id)) throw new Error(`client "${id}" already exists`);
    let contextJson;
    try {
      contextJson = JSON.stringify(context ?? {});
    } catch (err) {
      throw new TypeError(`context must be JSON-serialisable: ${err.message}`);
    }
    beforeCall();
    const idLen = putText(id, 0);
    const n = core._tp_server_open(this.#core, idLen, putText(contextJson, idLen), Date.now());
    if (n < 0) throw new TypeError("context must be a JSON object");
    const handle = result(0);
    const entry = new ClientEntry(this, id, handle, transport, context);
    this.#clients.set(id, entry);
    this.#byHandle.set(handle, entry);
    if (entry.views) {
      transport._sink = entry;
    } else {
      entry.off = [transport.onMessage((frame) => this.#message(handle, frame))];
      if (typeof transport.onClose === "function") entry.off.push(transport.onClose(() => this.disconnectClient(id)));
    }
    this.#perform(n);
    if (this.#listeners.has("connect")) this.#emit("connect", { clientId: id, context });
  }

  /** Removes a client from every document session. Idempotent. */
  async disconnectClient(id) {
    const entry = this.#clients.get(id);
    if (!entry) return;
    this.#clients.delete(id);
    if (entry.views) {
      if (entry.transport._sink === entry) entry.transport._sink = null;
    } else {
      for (const off of entry.off) off?.();
    }
    if (this.#listeners.has("disconnect")) this.#emit("disconnect", { clientId: id });
    beforeCall();
    this.#perform(core._tp_server_close(this.#core, entry.handle));
    this.#byHandle.delete(entry.handle);
  }

  /**
   * Makes a restored client (a socket woken after hibernation) a member of its documents again,
   * with permissions decided again, so it receives relays without sending anything first.
   */
  rejoin(id, documents) {
    const entry = this.#clients.get(id);
    if (!entry) return;
    for (const document of documents) {
      beforeCall();
      this.#perform(core._tp_server_rejoin(this.#core, entry.handle, putText(document, 0)));
    }
  }

  /** Lets time pass in the core: expired tokens close (4401), idle documents unload. */
  tick(now = Date.now()) {
    beforeCall();
    this.#perform(core._tp_server_tick(this.#core, now));
    beforeCall();
    core._tp_server_state(this.#core);
    const next = result(0);
    return next < 0 ? null : next;
  }

  /** Resolves when every accepted update is committed and acknowledged. */
  async flushed() {
    while (this.#flushScheduled || this.#committing) {
      await (this.#committing ?? new Promise((r) => later(r)));
    }
  }

  /** Disconnects every client, commits what is pending, and closes storage the Server opened. */
  async close() {
    for (const id of [...this.#clients.keys()]) await this.disconnectClient(id);
    await this.flushed();
    // Milestone writes finish (their answers are dropped); rpc handlers still running are not
    // waited for: what they answer later is dropped too.
    await Promise.allSettled([...this.#compactions, ...this.#milestoneChains.values()]);
    for (const cleanup of this.#cleanups.splice(0)) {
      try {
        await cleanup();
      } catch (err) {
        this.log("error", "rpc_cleanup_failed", { error: errorText(err) });
      }
    }
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#ownsStorage && this.#storage) await (await this.#storage.catch(() => null))?.close?.();
  }

  [kDeliver](handle, frame) {
    this.#message(handle, frame);
  }

  // One frame from a client: copied once into the core's input buffer, one core call.
  #message(handle, frame) {
    beforeCall();
    input(frame.length);
    putBytes(frame, 0);
    // RPC handling reads the clock (milestone times): the core gets it for those frames only.
    this.#perform(core._tp_server_message(this.#core, handle, frame.length, isRpcFrame(frame) ? Date.now() : 0));
  }

  // Carries out what the core decided (the n records of the last core call): frames to send,
  // connections to close, documents to load, writes to commit, permission questions for the
  // application, events to log.
  #perform(n) {
    if (n > 0) read(n, (r) => this.#carryOut(r));
    if (!this.#flushScheduled && !this.#committing) {
      this.#flushScheduled = true;
      later(() => this.#flush());
    }
  }

  #carryOut(r) {
    const sends = []; // consecutive sends (record indices): written per client, corked (see #sendAll)
    for (let i = 0; i < r.n; i++) {
      const kind = r.kind(i);
      if (kind === Kind.send || kind === Kind.ack) {
        sends.push(i);
        continue;
      }
      if (sends.length > 0) this.#sendAll(r, sends);
      switch (kind) {
        case Kind.publish: {
          const more = r.field(i, 4);
          const except = [r.field(i, 1)];
          for (let k = 1; k <= more; k++) except.push(r.field(i + k, 1));
          this.#publish(r.field(i, 7), except, r, i);
          i += more;
          break;
        }
        case Kind.reader:
          this.#reader(r.field(i, 1), r.field(i, 4) === 1, r.field(i, 7), r, i);
          break;
        case Kind.close:
          this.#byHandle.get(r.field(i, 1))?.transport.close?.(r.field(i, 4), r.text(i));
          break;
        case Kind.load:
          this.#load(r.text(i));
          break;
        case Kind.compact:
          this.#compact(r.text(i));
          break;
        case Kind.permission:
          this.#ask(r.field(i, 1), r.text(i), r.bytes(i).slice());
          break;
        case Kind.join:
          this.onJoin?.(this.#byHandle.get(r.field(i, 1))?.id, r.text(i));
          break;
        case Kind.cluster:
          this.#clusterCall("publish", r.text(i), r.bytes(i).slice());
          break;
        case Kind.channel: {
          const key = r.text(i);
          const subscribe = r.field(i, 4) === 1;
          const done = this.#clusterCall(subscribe ? "subscribe" : "unsubscribe", key);
          if (subscribe && done) this.#subscribing.set(key, done);
          break;
        }
        case Kind.log:
          this.#logRecord(r, i);
          break;
        case Kind.rpc: {
          const flags = r.field(i, 7);
          this.#rpcCall({
            call: r.field(i, 4),
            client: r.field(i, 1),
            method: r.text(i),
            payload: r.bytes(i).slice(),
            document: r.text(i + 1),
            documentId: r.text(i + 2),
            messageId: r.text(i + 3),
            encrypted: (flags & 1) !== 0,
            sessionEncrypted: (flags & 2) !== 0,
            stream: (flags & 4) !== 0,
          });
          i += 3;
          break;
        }
        case Kind.milestoneLoad: {
          const key = r.text(i);
          this.#milestoneOp(key, () => this.#loadMilestones(key));
          break;
        }
        case Kind.milestoneStore: {
          const op = {
            op: r.field(i, 4),
            kind: r.field(i, 1),
            key: r.text(i),
            meta: r.bytes(i).slice(),
            id: r.text(i + 1),
            snapshot: r.field(i, 7) === 1 ? r.bytes(i + 1).slice() : undefined,
          };
          i += 1;
          this.#milestoneOp(op.key, () => this.#storeMilestone(op));
          break;
        }
        case Kind.milestoneCreated: {
          const id = r.bytesText(i);
          const documentId = r.text(i);
          try {
            this.#milestones.onCreated?.(id, documentId);
          } catch (err) {
            this.log("error", "on_milestone_created_failed", { document_id: documentId, milestone_id: id, error: errorText(err) });
          }
          break;
        }
      }
    }
    if (sends.length > 0) this.#sendAll(r, sends);
  }

  // A log record of the core: to the logger when it wants the level; document loads and unloads
  // are also events (their fields renamed: documentId, entries, skipped).
  #logRecord(r, i) {
    const level = r.field(i, 4);
    const wanted = level >= 2 || this.#allLogs;
    let event = null;
    if (level === 1 && this.#listeners.size > 0) {
      const name = r.text(i);
      if (name === "document_loaded" && this.#listeners.has("document-load")) event = "document-load";
      if (name === "document_unloaded" && this.#listeners.has("document-unload")) event = "document-unload";
    }
    if (!wanted && event === null) return;
    const name = r.text(i);
    const fields = JSON.parse(r.bytesText(i));
    if (wanted) this.log(LEVELS[level], name, fields);
    if (event === "document-load") this.#emit(event, { documentId: fields.document_id, entries: fields.entries, skipped: fields.skipped });
    if (event === "document-unload") this.#emit(event, { documentId: fields.document_id });
  }

  // Sends records' frames, each client's in order and corked where the transport can (Bun: one
  // write per client instead of one per frame when this runs outside the socket's own callbacks,
  // as commits do). Frames are taken from the records at each send (see #publish).
  #sendAll(r, sends) {
    if (sends.length === 1) {
      this.#send(r.field(sends[0], 1), r.bytes(sends[0]));
    } else {
      const byClient = new Map();
      for (const i of sends) {
        const to = r.field(i, 1);
        const list = byClient.get(to);
        if (list) list.push(i);
        else byClient.set(to, [i]);
      }
      for (const [to, list] of byClient) {
        const entry = this.#byHandle.get(to);
        if (!entry) continue;
        if (list.length > 1 && entry.views && entry.transport.cork) {
          entry.transport.cork(() => {
            for (const i of list) this.#send(to, r.bytes(i));
          });
        } else {
          for (const i of list) this.#send(to, r.bytes(i));
        }
      }
    }
    sends.length = 0;
  }

  // A frame (a view of wasm memory) to one client; transports other than ours get a copy.
  #send(handle, frame) {
    const entry = this.#byHandle.get(handle);
    if (entry) entry.transport.send(entry.views ? frame : frame.slice());
  }

  // The storage, opened on first use when it is the default one.
  #getStorage() {
    if (this.#storage === undefined) {
      this.#storage = defaultStorage();
      this.#storage.catch((err) => this.log("error", "storage_open_failed", { error: errorText(err) }));
    }
    return this.#storage;
  }

  // The readers of each document, kept here and (where the runtime fans out natively: Bun's
  // ws.subscribe/publish) in the transport too. Topics are the core's numbers for loaded documents.
  #reader(client, reading, number, r, i) {
    const entry = this.#byHandle.get(client);
    let topic = this.#topics.get(number);
    if (reading) {
      if (!topic) this.#topics.set(number, (topic = { key: r.text(i), readers: new Set() }));
      topic.readers.add(client);
      // Readers the runtime's native fan-out does not reach (HTTP/SSE streams beside Bun's sockets).
      if (entry && !(entry.views && entry.transport.canPublish)) (topic.foreign ??= new Set()).add(client);
      entry?.transport.subscribe?.(topic.key);
    } else if (topic) {
      topic.readers.delete(client);
      topic.foreign?.delete(client);
      if (topic.readers.size === 0) this.#topics.delete(number);
      entry?.transport.unsubscribe?.(topic.key);
    }
  }

  // Record i's frame to every reader of a document but `except` (its senders): natively where
  // possible. The frame is taken from the record for each send: a send that disconnects a client
  // calls the core, which detaches the records (the earlier view would show reused memory).
  #publish(number, except, r, i) {
    const topic = this.#topics.get(number);
    if (!topic) return;
    if (except.length === 1) {
      const sender = this.#byHandle.get(except[0]);
      if (sender?.views && sender.transport.canPublish) {
        sender.transport.publish(topic.key, r.bytes(i), false);
        return this.#sendForeign(topic, except, r, i);
      }
      if (!sender && topic.readers.size > 0) {
        const any = this.#byHandle.get(topic.readers.values().next().value);
        if (any?.views && any.transport.canPublish) {
          any.transport.publish(topic.key, r.bytes(i), true);
          return this.#sendForeign(topic, except, r, i);
        }
      }
    }
    for (const handle of topic.readers) {
      if (!except.includes(handle)) this.#send(handle, r.bytes(i));
    }
  }

  // After a native publish: the readers it does not reach, one send each.
  #sendForeign(topic, except, r, i) {
    if (!topic.foreign) return;
    for (const handle of topic.foreign) {
      if (!except.includes(handle)) this.#send(handle, r.bytes(i));
    }
  }

  // Returns a promise that settles (never rejects) when the call did, if the call returned one.
  #clusterCall(method, ...args) {
    try {
      const done = this.#cluster?.[method](...args);
      return done?.catch?.((err) => this.log("error", "cluster_failed", { method, error: errorText(err) }));
    } catch (err) {
      this.log("error", "cluster_failed", { method, error: errorText(err) });
    }
  }

  async #load(key) {
    try {
      const storage = await this.#getStorage();
      // In a cluster, load once the document's channel is held: an update another node commits
      // is then either in what is loaded or in a message that arrives (never in neither).
      const subscribed = this.#subscribing.get(key);
      if (subscribed) {
        await subscribed;
        if (this.#subscribing.get(key) === subscribed) this.#subscribing.delete(key);
      }
      const started = now();
      let entries;
      try {
        entries = await storage.load(key);
      } catch (err) {
        this.#storageDone("load", false, started);
        throw err;
      }
      this.#storageDone("load", true, started);
      beforeCall();
      const keyLen = putText(key, 0);
      putList(entries.map((e) => asBytes(e)), keyLen);
      this.#perform(core._tp_server_loaded(this.#core, keyLen, entries.length));
    } catch (err) {
      beforeCall();
      const keyLen = putText(key, 0);
      this.#perform(core._tp_server_load_failed(this.#core, keyLen, putText(errorText(err), keyLen)));
    }
  }

  // Group commit: everything the core accepted since the last flush goes in one transaction;
  // what arrives while it commits waits for the next one.
  async #flush() {
    this.#flushScheduled = false;
    if (this.#committing) return;
    beforeCall();
    const n = core._tp_server_flush(this.#core);
    const id = result(0);
    if (!id) return;
    const writes = [];
    read(n, (r) => {
      for (let i = 0; i < r.n; i++) writes.push({ key: r.text(i), entry: r.bytes(i).slice() });
    });
    let ok = true;
    let error = "";
    let ms = 0;
    const done = (async () => {
      try {
        const storage = await this.#getStorage();
        if (writes.length > 0) {
          const started = now();
          try {
            await storage.commit(writes);
          } finally {
            ms = now() - started;
            this.#storageSeconds.observe(`operation="commit"`, ms / 1000);
          }
        }
      } catch (err) {
        ok = false;
        error = errorText(err);
      }
    })();
    this.#committing = done;
    await done;
    this.#committing = null;
    if (writes.length > 0) this.#storageOps.add(`operation="commit",result="${ok ? "ok" : "error"}"`);
    if (ok && writes.length > 0 && this.#listeners.has("write")) {
      let bytes = 0;
      const documents = new Set();
      for (const w of writes) (bytes += w.entry.length), documents.add(w.key);
      this.#emit("write", { documents: [...documents], entries: writes.length, bytes, ms });
    }
    beforeCall();
    this.#perform(core._tp_server_committed(this.#core, id, ok ? 1 : 0, ok ? 0 : putText(error, 0), Date.now()));
  }

  #compact(key) {
    const run = (async () => {
      const storage = await this.#getStorage();
      if (typeof storage.compact !== "function") return;
      await storage.compact(key, (entries) => {
        beforeCall();
        putList(entries.map((e) => asBytes(e)), 0);
        const n = core._tp_server_merge_entries(this.#core, entries.length);
        let entry = null;
        let error = null;
        read(n, (r) => {
          if (r.kind(0) === Kind.entry) entry = r.bytes(0).slice();
          else error = r.text(0);
          for (let i = 1; i < r.n; i++) {
            if (r.kind(i) === Kind.log) this.log(LEVELS[r.field(i, 4)], r.text(i), JSON.parse(r.bytesText(i)));
          }
        });
        if (error !== null) throw new Error(error);
        return entry;
      });
    })().catch((err) => this.log("error", "storage_compact_failed", { document_id: key, error: errorText(err) }));
    this.#compactions.add(run);
    run.finally(() => this.#compactions.delete(run));
  }

  // ---- RPC: the application's handlers (spec ext. 1.2-1.5) ---------------------------------------

  // Runs the handler (or streamHandler) of one call; every result goes back to the core, which
  // encodes the frames (stream chunks, then the response or error, then the ack).
  #rpcCall(c) {
    this.#serveCall(c).catch((err) => this.log("error", "rpc_failed", { method: c.method, error: errorText(err) }));
  }

  async #serveCall(c) {
    const entry = this.#rpc.get(c.method);
    const client = this.#byHandle.get(c.client);
    if (!entry || !client) return this.#answer(c.call, RPC_DONE);
    let payload;
    try {
      payload = decodeAny(c.payload);
    } catch {
      payload = undefined;
    }
    const context = client.context ?? {};
    const ctx = {
      ...context,
      server: this,
      documentId: c.documentId,
      session: { document: c.document, documentId: c.documentId, encrypted: c.sessionEncrypted },
      userId: context.userId,
      clientId: client.id,
    };
    if (c.stream) {
      const send = (message) => {
        const to = this.#byHandle.get(c.client);
        if (to) to.transport.send(message instanceof Uint8Array ? message : encodeMessage(message));
      };
      try {
        await entry.streamHandler(payload, ctx, c.messageId, send);
        this.#answer(c.call, RPC_DONE);
      } catch (err) {
        this.#answer(c.call, RPC_ERROR, { status: 500, details: err instanceof Error ? err.message : "Stream processing error" });
      }
      return;
    }
    try {
      const result = (await entry.handler(payload, ctx)) ?? {};
      const encrypted = typeof result.encrypted === "boolean" ? result.encrypted : undefined;
      if (result.stream != null) {
        for await (const chunk of result.stream) {
          if (!this.#byHandle.has(c.client)) return this.#answer(c.call, RPC_DONE); // gone: stop pulling
          this.#answer(c.call, RPC_STREAM, { payload: chunk, encrypted });
        }
      }
      const response = result.response;
      if (response !== null && typeof response === "object" && response.type === "error") {
        this.#answer(c.call, RPC_ERROR, {
          status: typeof response.statusCode === "number" ? response.statusCode : 500,
          details: typeof response.details === "string" ? response.details : "Unknown error",
          payload: response.payload,
        });
      } else {
        this.#answer(c.call, RPC_RESPONSE, { payload: response, encrypted });
      }
    } catch (err) {
      this.#answer(c.call, RPC_ERROR, { status: 500, details: err instanceof Error ? err.message : "Internal error" });
    }
  }

  // One answer to the core. A payload that lib0 cannot encode becomes a 500.
  #answer(call, kind, { payload, encrypted, status = 0, details = "" } = {}) {
    let bytes = new Uint8Array(0);
    const withPayload = kind === RPC_STREAM || kind === RPC_RESPONSE || (kind === RPC_ERROR && payload !== undefined && payload !== null);
    if (withPayload) {
      try {
        bytes = encodeAny(payload);
      } catch (err) {
        if (kind === RPC_STREAM) return this.log("error", "rpc_invalid_payload", { error: errorText(err) });
        return this.#answer(call, RPC_ERROR, { status: 500, details: `Cannot encode the RPC payload: ${errorText(err)}` });
      }
    }
    beforeCall();
    input(bytes.length + details.length * 3);
    putBytes(bytes, 0);
    const detailsLen = putText(details, bytes.length);
    const flag = encrypted === undefined ? -1 : encrypted ? 1 : 0;
    this.#perform(core._tp_server_rpc_answer(this.#core, call, kind, status, flag, bytes.length, withPayload ? 1 : 0, detailsLen));
  }

  // ---- milestones: the core decides, this only moves bytes (spec ext. 2) ----------------------

  // Milestone storage operations of one document run one after the other, in the core's order.
  #milestoneOp(key, fn) {
    const next = (this.#milestoneChains.get(key) ?? Promise.resolve()).then(fn).catch((err) => {
      this.log("error", "milestone_op_failed", { document_id: key, error: errorText(err) });
    });
    this.#milestoneChains.set(key, next);
    next.finally(() => {
      if (this.#milestoneChains.get(key) === next) this.#milestoneChains.delete(key);
    });
  }

  async #milestoneStorage() {
    const storage = await this.#getStorage();
    if (!hasMilestoneStorage(storage)) throw new Error("the storage does not store milestones (MilestoneStorage)");
    return storage;
  }

  async #loadMilestones(key) {
    try {
      const storage = await this.#milestoneStorage();
      const list = await storage.loadMilestones(key);
      const items = [];
      for (const m of list) items.push(encoder.encode(String(m.id)), asBytes(m.meta));
      beforeCall();
      const keyLen = putText(key, 0);
      putList(items, keyLen);
      this.#perform(core._tp_server_milestones_loaded(this.#core, keyLen, list.length));
    } catch (err) {
      beforeCall();
      const keyLen = putText(key, 0);
      this.#perform(core._tp_server_milestones_load_failed(this.#core, keyLen, putText(errorText(err), keyLen)));
    }
  }

  async #storeMilestone(op) {
    let ok = true;
    let error = "";
    let snapshot;
    try {
      const storage = await this.#milestoneStorage();
      if (op.kind === 1) await storage.putMilestone(op.key, op.id, op.meta, op.snapshot);
      else if (op.kind === 2) await storage.deleteMilestone(op.key, op.id);
      else {
        const found = await storage.loadMilestoneSnapshot(op.key, op.id);
        snapshot = found == null ? undefined : asBytes(found);
      }
    } catch (err) {
      ok = false;
      error = errorText(err);
    }
    beforeCall();
    let len = 0;
    if (!ok) {
      len = putText(error, 0);
    } else if (snapshot) {
      input(snapshot.length);
      len = putBytes(snapshot, 0);
    }
    this.#perform(core._tp_server_milestone_done(this.#core, op.op, ok ? 1 : 0, len, snapshot ? 1 : 0, Date.now()));
  }

  // The application's checkPermission decides read and write for (client, document), once.
  async #ask(client, document, frame) {
    const entry = this.#byHandle.get(client);
    if (!entry) return;
    let access = 0;
    try {
      const message = decodeMessage(frame);
      const ask = (type) => this.#checkPermission({ context: entry.context, documentId: document, message, type });
      const [read, write] = await Promise.all([ask("read"), ask("write")]);
      access = (read === true ? Access.read : 0) | (write === true ? Access.write : 0);
    } catch (err) {
      this.log("error", "check_permission_failed", { client_id: entry.id, document, error: errorText(err) });
    }
    if (!this.#byHandle.has(client)) return;
    beforeCall();
    this.#perform(core._tp_server_permission(this.#core, client, putText(document, 0), access));
  }
}
