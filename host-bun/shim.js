// Bun shim: Bun.serve's fetch/websocket events in, Hub calls out. No protocol logic here.
// Usage (as in the docs): fetch(req, server) { return handlers.upgrade(req, server) },
//                         websocket: handlers.websocket

// The Hub's peer for one socket: methods on the prototype, so an idle connection costs one small
// object (not a closure per method).
class BunPeer {
  constructor(ws, server) {
    this.ws = ws;
    this.server = server; // the Bun.serve instance, for publishes that include every subscriber
  }
  get id() {
    return this.ws.data.id;
  }
  get context() {
    return this.ws.data.context;
  }
  send(frame) {
    return this.ws.send(frame); // bytes sent, -1 queued (backpressure), 0 dropped
  }
  close(code, reason) {
    this.ws.close(code, reason);
  }
  terminate() {
    this.ws.terminate();
  }
  bufferedAmount() {
    return this.ws.getBufferedAmount?.() ?? 0;
  }
  get drains() {
    return true; // Bun calls websocket.drain
  }
  // Several frames to one socket in one write (sends outside Bun's own callbacks, e.g. after a
  // commit, are not corked otherwise: one syscall per frame).
  cork(fn) {
    return this.ws.cork(fn);
  }
  // Native fan-out: one write per subscriber, done by Bun (slow subscribers are closed by
  // closeOnBackpressureLimit below).
  subscribe(topic) {
    this.ws.subscribe(topic);
  }
  unsubscribe(topic) {
    this.ws.unsubscribe(topic);
  }
  publish(topic, frame, includeSelf) {
    if (includeSelf) this.server.publish(topic, frame);
    else this.ws.publish(topic, frame);
  }
}

/** @param {import("../wasm/src/connections.js").Hub} hub */
export function createBunHandlers(hub) {
  let bunServer = null;
  const finish = (request, server, auth) => {
    if (auth.response) return auth.response;
    const data = { id: hub.newId(), context: auth.context };
    if (server.upgrade(request, { data, headers: auth.headers })) return undefined;
    return new Response("Expected a WebSocket upgrade request", { status: 426 });
  };
  return {
    /**
     * @returns {Response | undefined | Promise<Response | undefined>} undefined once Bun has taken
     * over the socket; a Promise only when an onUpgrade hook runs
     */
    upgrade(request, server) {
      bunServer = server;
      const auth = hub.authorize(request);
      return auth instanceof Promise ? auth.then((a) => finish(request, server, a)) : finish(request, server, auth);
    },
    websocket: {
      backpressureLimit: hub.maxBuffered,
      closeOnBackpressureLimit: true,
      open: (ws) => hub.open(new BunPeer(ws, bunServer)),
      message: (ws, message) => hub.message(ws.data.id, message),
      close: (ws, code) => hub.close(ws.data.id, code),
      drain: (ws) => hub.drain(ws.data.id),
    },
  };
}
