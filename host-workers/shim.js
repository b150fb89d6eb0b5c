// Cloudflare Workers shim: a Durable Object's WebSocket Hibernation events in, Hub/Server calls out.
// Each socket's attachment (at most 2 KB) keeps its connection id, context and the documents it
// joined, so that after the object was evicted every socket is re-attached and re-joined before
// the next event: a client that only listens keeps receiving relays. No protocol logic here.

const MAX_ATTACHMENT_BYTES = 2048;

/**
 * @param {import("../wasm/src/connections.js").Hub} hub
 * @param {import("../wasm/src/server.js").Server} server
 * @param {DurableObjectState} state
 */
export function createDurableObjectHandlers(hub, server, state) {
  const sockets = new Map(); // connection id -> WebSocket

  const peerOf = (ws, id, context) => ({
    id,
    context,
    // workerd buffers (no backpressure signal); the frame may be a view of wasm memory: a copy goes.
    send: (frame) => (ws.send(frame.slice()), frame.length || 1),
    close: (code, reason) => ws.close(code, reason),
  });

  // The core said `id` joined `document`: remember it in the socket's attachment.
  server.onJoin = (id, document) => {
    const ws = sockets.get(id);
    const att = ws?.deserializeAttachment();
    if (!att?.docs || att.docs.includes(document)) return;
    att.docs.push(document);
    if (JSON.stringify(att).length > MAX_ATTACHMENT_BYTES) {
      hub.log("warn", "websocket_attachment_full", { client_id: id, limit: MAX_ATTACHMENT_BYTES });
      att.docs = null; // restored without memberships: the client is asked to reconnect instead
    }
    ws.serializeAttachment(att);
  };

  // After eviction: every socket comes back, with its memberships, before any event is handled.
  state.blockConcurrencyWhile(async () => {
    for (const ws of state.getWebSockets()) {
      const att = ws.deserializeAttachment();
      if (!att?.id || att.context == null || !Array.isArray(att.docs)) {
        hub.log("info", "websocket_stale_peer", { client_id: att?.id ?? null });
        closeQuietly(ws, 1012, "state lost after hibernation; reconnect");
        continue;
      }
      sockets.set(att.id, ws);
      await hub.open(peerOf(ws, att.id, att.context), { restored: true });
      server.rejoin(att.id, att.docs);
    }
    schedule();
  });

  function schedule() {
    const next = server.tick();
    if (next !== null) state.storage.setAlarm(next);
  }

  return {
    async fetch(request) {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("Expected a WebSocket upgrade request", { status: 426 });
      }
      const auth = await hub.authorize(request);
      if (auth.response) return auth.response;
      const [client, socket] = Object.values(new WebSocketPair());
      const id = hub.newId();
      state.acceptWebSocket(socket);
      const attachment = { id, context: auth.context, docs: [] };
      if (JSON.stringify(attachment).length > MAX_ATTACHMENT_BYTES) {
        hub.log("warn", "websocket_context_too_large", { client_id: id, limit: MAX_ATTACHMENT_BYTES });
        attachment.context = null; // works until the next hibernation, then the client reconnects
      }
      socket.serializeAttachment(attachment);
      sockets.set(id, socket);
      await hub.open(peerOf(socket, id, auth.context));
      schedule();
      return new Response(null, { status: 101, webSocket: client, headers: auth.headers });
    },
    async webSocketMessage(ws, message) {
      const id = ws.deserializeAttachment()?.id;
      if (!id || !hub.connections.has(id)) return closeQuietly(ws, 1012, "state lost after hibernation; reconnect");
      server.tick();
      hub.message(id, message);
      schedule();
    },
    async webSocketClose(ws, code, reason) {
      const id = ws.deserializeAttachment()?.id;
      closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
      if (id) {
        sockets.delete(id);
        await hub.close(id, code);
      }
    },
    async webSocketError(ws, error) {
      const id = ws.deserializeAttachment()?.id;
      if (id) await hub.error(id, error);
    },
    async alarm() {
      schedule();
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
