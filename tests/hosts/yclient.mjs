// A client that behaves like the real Teleportal provider on the wire (spec section 6 item 14):
// connect -> sync-step-1 with its state vector, then presence-announce; answers the server's
// sync-step-1 with a sync-step-2; applies sync-step-2/update envelopes to a real Y.Doc; sends its
// own changes as V2 updates inside content-encrypted envelopes; treats sync-done as "synced" and
// auth-message as a fatal error.
import * as Y from "yjs";
import {
  decodeContentEncryptedPayload,
  decodeMessage,
  encodeContentEncryptedPayload,
  encodeMessage,
} from "teleportal/protocol";
import { connect } from "./suite.mjs";

const REMOTE = Symbol("remote");

export class YClient {
  constructor(client, document, doc = new Y.Doc()) {
    this.client = client;
    this.document = document;
    this.doc = doc;
    this.errors = [];
    this.acks = new Map(); // messageId -> ack payload
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
    this.fatal = null;
    client.ws.on("message", (data) => this.#onFrame(new Uint8Array(data)));
    doc.on("updateV2", (update, origin) => {
      if (origin !== REMOTE) this.#send({ type: "update", update: { version: 2, data: this.#wrap(update) } });
    });
  }

  static async open(url, document, doc) {
    const c = new YClient(await connect(url), document, doc);
    c.#send({ type: "sync-step-1", sv: Y.encodeStateVector(c.doc) });
    c.#send({ type: "presence-announce", awarenessId: c.doc.clientID }, "presence");
    return c;
  }

  #wrap(update) {
    return encodeContentEncryptedPayload({ structureUpdate: update, encryptedSidecars: [] });
  }

  #send(payload, type = "doc") {
    this.client.send(encodeMessage({ type, document: this.document, encrypted: false, payload }));
  }

  #onFrame(frame) {
    let m;
    try {
      m = decodeMessage(frame);
    } catch (err) {
      this.errors.push(err.message);
      return;
    }
    if (m.type === "ack") {
      this.acks.set(m.payload.messageId, m.payload);
      if (m.payload.error) this.errors.push(m.payload.error);
      return;
    }
    if (m.type !== "doc" || m.document !== this.document) return;
    const p = m.payload;
    if (p.type === "sync-step-1") {
      const update = Y.encodeStateAsUpdateV2(this.doc, p.sv);
      this.#send({ type: "sync-step-2", update: { version: 2, data: this.#wrap(update) } });
    } else if (p.type === "sync-step-2" || p.type === "update") {
      const { structureUpdate } = decodeContentEncryptedPayload(p.update.data);
      if (structureUpdate.length > 0) Y.applyUpdateV2(this.doc, structureUpdate, REMOTE);
    } else if (p.type === "sync-done") {
      this.markSynced();
    } else if (p.type === "auth-message") {
      this.fatal = p.reason;
    }
  }

  close() {
    return this.client.close();
  }
}

/**
 * The document as the server has it, read without writing anything: connects, sends sync-step-1
 * with an empty state vector and applies the sync-step-2 it gets to a new Y.Doc.
 */
export async function readDocument(url, document, { timeout = 30_000 } = {}) {
  const c = await connect(url);
  c.send(encodeMessage({ type: "doc", document, encrypted: false, payload: { type: "sync-step-1", sv: Y.encodeStateVector(new Y.Doc()) } }));
  const frame = await c.waitFor((f) => {
    try {
      const m = decodeMessage(f);
      return m.type === "doc" && m.document === document && m.payload.type === "sync-step-2";
    } catch {
      return false;
    }
  }, { timeout, what: `the state of ${document}` });
  const { structureUpdate } = decodeContentEncryptedPayload(decodeMessage(frame).payload.update.data);
  const doc = new Y.Doc();
  if (structureUpdate.length > 0) Y.applyUpdateV2(doc, structureUpdate); // empty: nothing stored
  await c.close();
  return doc;
}

export async function until(pred, { timeout = 5000, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export { Y };
