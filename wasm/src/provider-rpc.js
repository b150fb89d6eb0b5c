// RPC and milestones for teleportal/provider: the request/response client of the reference
// (spec extensions 1.7) and its milestone client (2.8), with the same payloads and error strings.
// One difference, on purpose (spec ext. 5.8): two byte-identical requests in flight share one
// request id (a content hash), and the reference's client keeps only the later one, so the first
// times out. Here each id keeps a queue of callers, answered in order: both get a response.
import * as Y from "yjs";
import { encodeMessage, getMessageId } from "./provider-codec.js";

/** An error response from the server: `RPC error (<statusCode>): <details>`. */
export class RpcError extends Error {
  /** @param {number} statusCode @param {string} details @param {unknown} [payload] */
  constructor(statusCode, details, payload) {
    super(`RPC error (${statusCode}): ${details}`);
    this.name = "RpcError";
    this.statusCode = statusCode;
    this.details = details;
    this.payload = payload;
  }
}

/**
 * Requests over a provider's connection. `transmit(frame)` sends a frame now or once connected.
 * A request whose connection drops before the response is not sent again (it may have been
 * served): it times out, as in the reference.
 */
export class RpcClient {
  /** request id -> callers waiting for its response, oldest first @type {Map<string, Array<{method: string, resolve: Function, reject: Function, timer: any, onStream?: Function}>>} */
  #pending = new Map();
  #destroyed = false;

  /** @param {(frame: Uint8Array) => void} transmit */
  constructor(transmit) {
    this.transmit = transmit;
  }

  /**
   * Sends `method` about `document` with `payload` (an object; the method name is added as its
   * first key, like the reference client) and resolves with the response payload.
   * @param {string} document
   * @param {string} method
   * @param {Record<string, unknown>} [payload]
   * @param {{timeout?: number, encrypted?: boolean, onStream?: (chunk: unknown) => void}} [options]
   */
  request(document, method, payload = {}, { timeout = 30_000, encrypted = false, onStream } = {}) {
    if (this.#destroyed) return Promise.reject(new Error("RpcClient destroyed"));
    const frame = encodeMessage({
      type: "rpc",
      document,
      encrypted,
      rpcMethod: method,
      requestType: "request",
      originalRequestId: null,
      payload: { type: "success", payload: { method, ...payload } },
    });
    const id = getMessageId(frame);
    return new Promise((resolve, reject) => {
      const waiter = { method, resolve, reject, onStream, timer: 0 };
      waiter.timer = setTimeout(() => {
        this.#drop(id, waiter);
        reject(new Error(`RPC request timeout: ${method}`));
      }, timeout);
      const queue = this.#pending.get(id);
      if (queue) queue.push(waiter);
      else this.#pending.set(id, [waiter]);
      this.transmit(frame);
    });
  }

  /** A decoded rpc frame from the server (stream chunks and responses; others are ignored). */
  receive(m) {
    const queue = m.originalRequestId ? this.#pending.get(m.originalRequestId) : undefined;
    if (!queue) return;
    if (m.requestType === "stream") {
      if (m.payload.type === "success") queue[0].onStream?.(m.payload.payload);
      return;
    }
    if (m.requestType !== "response") return;
    const waiter = queue[0];
    this.#drop(m.originalRequestId, waiter);
    clearTimeout(waiter.timer);
    if (m.payload.type === "success") waiter.resolve(m.payload.payload);
    else waiter.reject(new RpcError(m.payload.statusCode, m.payload.details, m.payload.payload));
  }

  /** Rejects everything pending with `RpcClient destroyed`. */
  destroy() {
    this.#destroyed = true;
    this.#rejectAll(() => new Error("RpcClient destroyed"));
  }

  #rejectAll(error) {
    const all = [...this.#pending.values()].flat();
    this.#pending.clear();
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(error(w.method));
    }
  }

  #drop(id, waiter) {
    const queue = this.#pending.get(id);
    if (!queue) return;
    const at = queue.indexOf(waiter);
    if (at >= 0) queue.splice(at, 1);
    if (queue.length === 0) this.#pending.delete(id);
  }
}

/**
 * The milestones of one document (spec ext. 2.8): list, getSnapshot, create, updateName, delete,
 * restore. Failures are `[milestone] Failed to <operation>: <inner message>` with the RPC error
 * (statusCode, details, payload) as the cause.
 */
export class MilestoneClient {
  /** @param {RpcClient} rpc @param {string} document @param {Y.Doc} [doc] */
  constructor(rpc, document, doc) {
    this.rpc = rpc;
    this.document = document;
    this.doc = doc;
  }

  async #call(operation, method, payload, options) {
    try {
      return await this.rpc.request(this.document, method, payload, options);
    } catch (err) {
      throw new Error(`[milestone] Failed to ${operation}: ${err?.message ?? err}`, { cause: err });
    }
  }

  /** The document's milestones in creation order (soft-deleted ones too with includeDeleted). */
  async list({ includeDeleted = false, snapshotIds = [], timeout } = {}) {
    const r = await this.#call("list", "milestoneList", { snapshotIds, includeDeleted }, { timeout });
    return r.milestones;
  }

  /** The stored snapshot (a Y.js V2 update for plaintext documents). */
  async getSnapshot(id, { timeout } = {}) {
    const r = await this.#call("get", "milestoneGet", { milestoneId: id }, { timeout });
    return r.snapshot;
  }

  /** Stores the document's current state as a milestone (the server names it when `name` is absent). */
  async create(name, { timeout } = {}) {
    if (!this.doc) throw new Error("[milestone] Failed to create: the document is not open on this provider");
    const snapshot = Y.encodeStateAsUpdateV2(this.doc);
    const r = await this.#call("create", "milestoneCreate", { name, snapshot }, { timeout });
    return r.milestone;
  }

  async updateName(id, name, { timeout } = {}) {
    const r = await this.#call("updateName", "milestoneUpdateName", { milestoneId: id, name }, { timeout });
    return r.milestone;
  }

  /** Soft delete; deleting a soft-deleted milestone removes it for good. */
  async delete(id, { timeout } = {}) {
    await this.#call("delete", "milestoneDelete", { milestoneId: id }, { timeout });
  }

  /** Undoes a soft delete (the document's content is not touched). */
  async restore(id, { timeout } = {}) {
    const r = await this.#call("restore", "milestoneRestore", { milestoneId: id }, { timeout });
    return r.milestone;
  }
}
