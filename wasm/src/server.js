// teleportal/server: the document server. Routing, sessions, permissions, acks, sync, loading and
// storing are decided by the C++ core; this class only moves bytes between transports, storage
// and the core, and does every `await`.
import { core } from "./core.js";
import { decodeMessage } from "./protocol.js";

const kServerConfig = Symbol.for("teleportal.token.serverConfig");
const encoder = new TextEncoder();
const Access = { read: 1, write: 2 };

function defaultLogger(level, event, fields) {
  if (level === "error" || level === "warn") console.error(JSON.stringify({ level, event, ...fields }));
}

function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

const later = typeof setImmediate === "function" ? setImmediate : (fn) => setTimeout(fn, 0);

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

/** @param {import("../types/server").ServerOptions} [options] */
export class Server {
  #core;
  /** @type {Map<string, {handle: number, transport: any, context: any, unsubscribe: Function[]}>} */
  #clients = new Map();
  /** @type {Map<number, {id: string, transport: any, context: any}>} */
  #byHandle = new Map();
  #storage;
  #ownsStorage = false;
  #flushScheduled = false;
  #committing = null; // the commit in progress (a Promise), or null
  #compactions = new Set();
  #timer = null;
  #checkPermission;
  /** @type {Map<string, Set<number>>} document key -> handles of its readers */
  #topics = new Map();
  #cluster = null;
  /** @type {Map<string, Promise<void>>} document key -> its channel subscription, until it settles */
  #subscribing = new Map();
  /** Called with (clientId, document) when a client joins a document (hosts that restore memberships after hibernation). */
  onJoin = null;

  /** @param {import("../types/server").ServerOptions} [options] */
  constructor(options = {}) {
    this.options = options;
    this.log = options.logger ?? defaultLogger;
    this.#checkPermission = options.checkPermission ?? null;
    const permissions = this.#checkPermission ? "callback" : (options.permissions ?? "token");
    if (!["token", "none", "callback"].includes(permissions)) throw new TypeError(`unknown permissions mode "${permissions}"`);
    if (permissions === "none") this.log("warn", "permissions_disabled", { reason: 'permissions: "none": every client may read and write every document' });
    const tokens = tokenSettings(options);
    if (options.storage === undefined) {
      this.#ownsStorage = true; // opened on first use
    } else if (options.storage && typeof options.storage.load === "function" && typeof options.storage.commit === "function") {
      this.#storage = options.storage;
    } else {
      throw new TypeError("storage must implement load(key) and commit(writes) (teleportal/storage)");
    }
    this.#core = new core.ServerCore(
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
      }),
      tokens.secret,
    );
    if (options.cluster) {
      this.#cluster = options.cluster;
      this.#cluster.onMessage((key, message) => this.#perform(this.#core.remote(key, message)));
    }
    const every = options.tickIntervalMs ?? 1000;
    if (every > 0) {
      this.#timer = setInterval(() => this.tick(), every);
      this.#timer.unref?.();
    }
  }

  /** Number of connected clients. */
  get clientCount() {
    return this.#clients.size;
  }

  /** Number of documents loaded in memory. */
  get documentCount() {
    return this.#core.documentCount();
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
    const { handle, outputs } = this.#core.open(id, contextJson, Date.now());
    if (handle < 0) throw new TypeError("context must be a JSON object");
    const entry = { id, handle, transport, context, unsubscribe: [] };
    this.#clients.set(id, entry);
    this.#byHandle.set(handle, entry);
    entry.unsubscribe.push(transport.onMessage((frame) => this.#perform(this.#core.message(handle, frame))));
    if (typeof transport.onClose === "function") {
      entry.unsubscribe.push(transport.onClose(() => this.disconnectClient(id)));
    }
    this.#perform(outputs);
  }

  /** Removes a client from every document session. Idempotent. */
  async disconnectClient(id) {
    const entry = this.#clients.get(id);
    if (!entry) return;
    this.#clients.delete(id);
    for (const off of entry.unsubscribe) off?.();
    this.#perform(this.#core.close(entry.handle));
    this.#byHandle.delete(entry.handle);
  }

  /**
   * Makes a restored client (a socket woken after hibernation) a member of its documents again,
   * with permissions decided again, so it receives relays without sending anything first.
   */
  rejoin(id, documents) {
    const entry = this.#clients.get(id);
    if (!entry) return;
    for (const document of documents) this.#perform(this.#core.rejoin(entry.handle, document));
  }

  /** Lets time pass in the core: expired tokens close (4401), idle documents unload. */
  tick(now = Date.now()) {
    this.#perform(this.#core.tick(now));
    const next = this.#core.nextDeadline();
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
    await Promise.allSettled([...this.#compactions]);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#ownsStorage && this.#storage) await (await this.#storage.catch(() => null))?.close?.();
  }

  // Carries out what the core decided: frames to send, connections to close, documents to load,
  // writes to commit, permission questions for the application, events to log.
  #perform(outputs) {
    for (const out of outputs) {
      switch (out.kind) {
        case "send":
          for (const handle of out.to) this.#byHandle.get(handle)?.transport.send(out.frame);
          break;
        case "close":
          this.#byHandle.get(out.client)?.transport.close?.(out.code, out.reason);
          break;
        case "load":
          this.#load(out.key);
          break;
        case "compact":
          this.#compact(out.key);
          break;
        case "permission":
          this.#ask(out);
          break;
        case "join":
          this.onJoin?.(this.#byHandle.get(out.client)?.id, out.document);
          break;
        case "reader":
          this.#reader(out);
          break;
        case "publish":
          if (out.local) this.#publish(out);
          if (out.cluster) this.#clusterCall("publish", out.key, out.cluster);
          break;
        case "channel": {
          const done = this.#clusterCall(out.subscribe ? "subscribe" : "unsubscribe", out.key);
          if (out.subscribe && done) this.#subscribing.set(out.key, done);
          break;
        }
        case "log":
          this.log(out.level, out.event, JSON.parse(out.fields));
          break;
      }
    }
    if (!this.#flushScheduled && !this.#committing) {
      this.#flushScheduled = true;
      later(() => this.#flush());
    }
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
  // ws.subscribe/publish) in the transport too.
  #reader({ client, key, reading }) {
    const entry = this.#byHandle.get(client);
    let topic = this.#topics.get(key);
    if (reading) {
      if (!topic) this.#topics.set(key, (topic = new Set()));
      topic.add(client);
      entry?.transport.subscribe?.(key);
    } else if (topic) {
      topic.delete(client);
      if (topic.size === 0) this.#topics.delete(key);
      entry?.transport.unsubscribe?.(key);
    }
  }

  // One frame to every reader of a document but the sender: natively where possible.
  #publish({ key, except, frame }) {
    const topic = this.#topics.get(key);
    if (!topic) return;
    const sender = this.#byHandle.get(except)?.transport;
    if (sender?.publish) return void sender.publish(key, frame, false);
    if (!sender && topic.size > 0) {
      const any = this.#byHandle.get(topic.values().next().value)?.transport;
      if (any?.publish) return void any.publish(key, frame, true);
    }
    for (const handle of topic) {
      if (handle !== except) this.#byHandle.get(handle)?.transport.send(frame);
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
      const entries = await storage.load(key);
      this.#perform(this.#core.loaded(key, entries));
    } catch (err) {
      this.#perform(this.#core.loadFailed(key, errorText(err)));
    }
  }

  // Group commit: everything the core accepted since the last flush goes in one transaction;
  // what arrives while it commits waits for the next one.
  async #flush() {
    this.#flushScheduled = false;
    if (this.#committing) return;
    const batch = this.#core.flush();
    if (!batch.id) return;
    let ok = true;
    let error = "";
    const done = (async () => {
      try {
        const storage = await this.#getStorage();
        if (batch.keys.length > 0) {
          await storage.commit(batch.keys.map((key, i) => ({ key, entry: batch.entries[i] })));
        }
      } catch (err) {
        ok = false;
        error = errorText(err);
      }
    })();
    this.#committing = done;
    await done;
    this.#committing = null;
    this.#perform(this.#core.committed(batch.id, ok, error));
  }

  #compact(key) {
    const run = (async () => {
      const storage = await this.#getStorage();
      if (typeof storage.compact !== "function") return;
      await storage.compact(key, (entries) => {
        const merged = this.#core.mergeEntries(entries);
        this.#perform(merged.outputs);
        if (merged.error) throw new Error(merged.error);
        return merged.entry;
      });
    })().catch((err) => this.log("error", "storage_compact_failed", { document_id: key, error: errorText(err) }));
    this.#compactions.add(run);
    run.finally(() => this.#compactions.delete(run));
  }

  // The application's checkPermission decides read and write for (client, document), once.
  async #ask({ client, document, frame }) {
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
    if (this.#byHandle.has(client)) this.#perform(this.#core.permission(client, document, access));
  }
}
