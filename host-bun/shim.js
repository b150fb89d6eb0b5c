// Bun shim: Bun.serve's fetch/websocket events in, Hub calls out. No protocol logic here.
// Usage (as in the docs): fetch(req, server) { return handlers.upgrade(req, server) },
//                         websocket: handlers.websocket

/** @param {import("../wasm/src/connections.js").Hub} hub */
export function createBunHandlers(hub) {
  let bunServer = null; // the Bun.serve instance, for publishes that include every subscriber
  const peerOf = (ws) => ({
    id: ws.data.id,
    context: ws.data.context,
    send: (frame) => ws.send(frame), // bytes sent, -1 queued (backpressure), 0 dropped
    close: (code, reason) => ws.close(code, reason),
    bufferedAmount: () => ws.getBufferedAmount?.() ?? 0,
    // Several frames to one socket in one write (sends outside Bun's own callbacks, e.g. after a
    // commit, are not corked otherwise: one syscall per frame).
    cork: (fn) => ws.cork(fn),
    // Native fan-out: one write per subscriber, done by Bun (slow subscribers are closed by
    // closeOnBackpressureLimit below).
    subscribe: (topic) => ws.subscribe(topic),
    unsubscribe: (topic) => ws.unsubscribe(topic),
    publish: (topic, frame, includeSelf) => (includeSelf ? bunServer.publish(topic, frame) : ws.publish(topic, frame)),
  });

  return {
    /** @returns {Promise<Response | undefined>} undefined once Bun has taken over the socket */
    async upgrade(request, server) {
      bunServer = server;
      const auth = await hub.authorize(request);
      if (auth.response) return auth.response;
      const data = { id: hub.newId(), context: auth.context };
      if (server.upgrade(request, { data, headers: auth.headers })) return undefined;
      return new Response("Expected a WebSocket upgrade request", { status: 426 });
    },
    websocket: {
      backpressureLimit: hub.maxBuffered,
      closeOnBackpressureLimit: true,
      open: (ws) => hub.open(peerOf(ws)),
      message: (ws, message) => hub.message(ws.data.id, message),
      close: (ws) => hub.close(ws.data.id),
      drain: () => {},
    },
  };
}
