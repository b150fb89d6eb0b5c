// teleportal/server: the document server. Routing, sessions, permission checks, acks and sync
// are decided by the C++ core; this class only moves frames between transports and the core,
// one boundary call per incoming frame.
import { core } from "./core.js";

function defaultLogger(level, event, fields) {
  if (level === "error" || level === "warn") console.error(JSON.stringify({ level, event, ...fields }));
}

/**
 * @typedef {object} ServerOptions
 * @property {"none" | "token"} [permissions] "token": every message is checked against the
 *   connection context's documentAccess claims (the verified token payload); "none" (default
 *   unless a tokenManager is given): no per-document checks.
 * @property {object} [tokenManager] enables permissions: "token"
 * @property {number} [maxMessageSize] bytes; larger frames get a NACK (default 10 MiB)
 * @property {DocumentStorage} [storage] durable storage for accepted updates (see restoreDocument)
 * @property {(level: string, event: string, fields: object) => void} [logger]
 */

/**
 * @typedef {object} DocumentStorage
 * @property {(key: string, document: string, envelope: Uint8Array) => void | Promise<void>} append
 *   store one more entry for `key` (a content-encrypted envelope holding a V2 update)
 * @property {(key: string, document: string, envelope: Uint8Array) => void | Promise<void>} replace
 *   replace everything stored for `key` by this one entry (compaction)
 */
export class Server {
  #core;
  /** @type {Map<string, {handle: number, transport: any, context: any, unsubscribe: Function[]}>} */
  #clients = new Map();
  /** @type {Map<number, {transport: any}>} */
  #byHandle = new Map();

  /** @param {ServerOptions} [options] */
  constructor(options = {}) {
    this.options = options;
    this.log = options.logger ?? defaultLogger;
    const permissions = options.permissions ?? (options.tokenManager ? "token" : "none");
    this.#core = new core.ServerCore(
      JSON.stringify({
        permissions,
        persist: Boolean(options.storage),
        maxMessageSize: options.maxMessageSize ?? 10 * 1024 * 1024,
      }),
    );
  }

  /** Number of connected clients. */
  get clientCount() {
    return this.#clients.size;
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
    const handle = this.#core.open(id, contextJson);
    if (handle < 0) throw new TypeError("context must be a JSON object");
    const entry = { handle, transport, context, unsubscribe: [] };
    this.#clients.set(id, entry);
    this.#byHandle.set(handle, entry);
    entry.unsubscribe.push(transport.onMessage((frame) => this.#perform(this.#core.message(handle, frame))));
    if (typeof transport.onClose === "function") {
      entry.unsubscribe.push(transport.onClose(() => this.disconnectClient(id)));
    }
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
   * Loads a document's stored entries (what storage.append/replace were given, in order) before
   * clients use it. Damaged entries are skipped and logged.
   */
  restoreDocument(key, document, envelopes) {
    this.#perform(this.#core.restore(key, document, envelopes));
  }

  /** Disconnects every client. */
  async close() {
    for (const id of [...this.#clients.keys()]) await this.disconnectClient(id);
  }

  #store({ persist: key, document, envelope, replace }) {
    const storage = this.options.storage;
    if (!storage) return;
    try {
      const done = replace ? storage.replace(key, document, envelope) : storage.append(key, document, envelope);
      done?.catch?.((err) => this.log("error", "storage_write_failed", { document_id: key, error: String(err?.message ?? err) }));
    } catch (err) {
      this.log("error", "storage_write_failed", { document_id: key, error: String(err?.message ?? err) });
    }
  }

  // Carries out what the core decided: frames to send, connections to close, events to log.
  #perform(outputs) {
    for (const out of outputs) {
      if (out.frame) {
        for (const handle of out.to) this.#byHandle.get(handle)?.transport.send(out.frame);
      } else if (out.persist !== undefined) {
        this.#store(out);
      } else if (out.close !== undefined) {
        this.#byHandle.get(out.close)?.transport.close?.(out.code, out.reason);
      } else if (out.event) {
        this.log(out.level, out.event, out.fields ? JSON.parse(out.fields) : {});
      }
    }
  }
}
