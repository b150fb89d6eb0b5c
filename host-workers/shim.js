// Cloudflare Workers shim: a Durable Object's WebSocket Hibernation events in, Hub calls out.
// The connection id and context live in the socket attachment (at most 2 KB) so that a socket
// woken after hibernation is restored without re-authentication. No protocol logic here.

const MAX_ATTACHMENT_BYTES = 2048;

/**
 * @param {import("../wasm/src/connections.js").Hub} hub
 * @param {DurableObjectState} state
 */
export function createDurableObjectHandlers(hub, state) {
  const restoring = new Map(); // id -> Promise: concurrent wake-up messages restore once

  const peerOf = (ws, id, context) => ({
    id,
    context,
    send: (frame) => (ws.send(frame), frame.length || 1), // workerd buffers; no backpressure signal
    close: (code, reason) => ws.close(code, reason),
  });

  async function connectionOf(ws) {
    const att = ws.deserializeAttachment();
    if (!att?.id || att.context == null) {
      // State did not survive (no attachment, or the context was over 2 KB): ask the client to
      // reconnect; it re-authenticates and resyncs.
      hub.log("info", "websocket_stale_peer", { client_id: att?.id ?? null });
      closeQuietly(ws, 1012, "state lost after hibernation; reconnect");
      return null;
    }
    if (hub.connections.has(att.id)) return att.id;
    if (!restoring.has(att.id)) {
      restoring.set(att.id, hub.open(peerOf(ws, att.id, att.context), { restored: true }));
    }
    await restoring.get(att.id);
    restoring.delete(att.id);
    return hub.connections.has(att.id) ? att.id : null;
  }

  return {
    async fetch(request) {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("Expected a WebSocket upgrade request", { status: 426 });
      }
      const auth = await hub.authorize(request);
      if (auth.response) return auth.response;
      const [client, server] = Object.values(new WebSocketPair());
      const id = hub.newId();
      state.acceptWebSocket(server);
      const attachment = { id, context: auth.context };
      if (JSON.stringify(attachment).length > MAX_ATTACHMENT_BYTES) {
        hub.log("warn", "websocket_context_too_large", { client_id: id, limit: MAX_ATTACHMENT_BYTES });
        attachment.context = null; // works until the next hibernation, then the client reconnects
      }
      server.serializeAttachment(attachment);
      hub.open(peerOf(server, id, auth.context));
      return new Response(null, { status: 101, webSocket: client, headers: auth.headers });
    },
    async webSocketMessage(ws, message) {
      const id = await connectionOf(ws);
      if (id) hub.message(id, message);
    },
    async webSocketClose(ws, code, reason) {
      const id = ws.deserializeAttachment()?.id;
      closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
      if (id) await hub.close(id);
    },
    async webSocketError(ws, error) {
      const id = ws.deserializeAttachment()?.id;
      if (id) await hub.error(id, error);
    },
  };
}

function closeQuietly(ws, code, reason) {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}

// ---- durable document storage --------------------------------------------------------------------
// Keys: `doc:<key>:<seq>:<part>` hold the entries the core asked to store (envelopes, split into
// 1 MiB parts: SQLite-backed objects cap a value at 2 MiB), `meta:<key>` the bare document name.
// Writes are issued without awaiting in between, so workerd commits each call atomically and in order.
const PART_BYTES = 1 << 20;
const pad = (n) => String(n).padStart(12, "0");

/** @param {DurableObjectStorage} storage */
export function createDurableObjectStorage(storage) {
  const known = new Map(); // key -> { next: seq, keys: string[] }

  function write(key, document, envelope, replace) {
    const k = encodeURIComponent(key);
    const entry = known.get(key) ?? { next: 0, keys: [] };
    if (replace && entry.keys.length > 0) {
      for (let i = 0; i < entry.keys.length; i += 128) storage.delete(entry.keys.slice(i, i + 128));
      entry.keys = [];
    }
    const seq = entry.next++;
    const values = { [`meta:${k}`]: document };
    const parts = Math.max(1, Math.ceil(envelope.length / PART_BYTES));
    for (let p = 0; p < parts; p++) {
      const name = `doc:${k}:${pad(seq)}:${pad(p)}`;
      values[name] = envelope.slice(p * PART_BYTES, (p + 1) * PART_BYTES);
      entry.keys.push(name);
    }
    known.set(key, entry);
    return storage.put(values);
  }

  return {
    append: (key, document, envelope) => write(key, document, envelope, false),
    replace: (key, document, envelope) => write(key, document, envelope, true),
    /** Every stored document: [{ key, document, envelopes }] in write order. */
    async load() {
      const [docs, metas] = await Promise.all([storage.list({ prefix: "doc:" }), storage.list({ prefix: "meta:" })]);
      const byKey = new Map();
      for (const [name, part] of docs) {
        const [, k, seq] = name.split(":");
        const key = decodeURIComponent(k);
        if (!byKey.has(key)) byKey.set(key, new Map());
        const entries = byKey.get(key);
        if (!entries.has(seq)) entries.set(seq, []);
        entries.get(seq).push(new Uint8Array(part));
        const entry = known.get(key) ?? { next: 0, keys: [] };
        entry.keys.push(name);
        entry.next = Math.max(entry.next, Number(seq) + 1);
        known.set(key, entry);
      }
      return Promise.all([...byKey].map(async ([key, entries]) => ({
        key,
        document: metas.get(`meta:${encodeURIComponent(key)}`) ?? key,
        envelopes: await Promise.all([...entries.values()].map(joinParts)),
      })));
    },
  };
}

async function joinParts(parts) {
  return parts.length === 1 ? parts[0] : new Uint8Array(await new Blob(parts).arrayBuffer());
}
