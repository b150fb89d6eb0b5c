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
