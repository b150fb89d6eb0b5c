// Node shim: http "upgrade" events + the `ws` package in, Hub calls out. No protocol logic here.
// Usage: httpServer.on("upgrade", (request, socket, head) => handlers.upgrade(request, socket, head))

const STATUS_TEXT = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
  426: "Upgrade Required", 429: "Too Many Requests", 500: "Internal Server Error" };

/** Node's IncomingMessage as a standard Request (what onUpgrade receives on every host). */
function toRequest(message) {
  const host = message.headers.host ?? "localhost";
  const headers = new Headers();
  for (const [k, v] of Object.entries(message.headers)) {
    if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
    else if (v !== undefined) headers.set(k, v);
  }
  return new Request(new URL(message.url ?? "/", `http://${host}`), { method: message.method, headers });
}

async function writeResponse(socket, response) {
  const body = new Uint8Array(await response.arrayBuffer());
  const lines = [`HTTP/1.1 ${response.status} ${response.statusText || STATUS_TEXT[response.status] || ""}`];
  response.headers.forEach((v, k) => { if (k !== "content-length" && k !== "connection") lines.push(`${k}: ${v}`); });
  lines.push(`content-length: ${body.length}`, "connection: close", "", "");
  if (!socket.destroyed) socket.end(Buffer.concat([Buffer.from(lines.join("\r\n")), body]));
}

/**
 * @param {import("../wasm/src/connections.js").Hub} hub
 * @param {typeof import("ws").WebSocketServer} WebSocketServer
 */
export function createNodeHandlers(hub, WebSocketServer, { maxPayload = 16 * 1024 * 1024, pingIntervalMs = 60_000 } = {}) {
  const wss = new WebSocketServer({ noServer: true, maxPayload });
  // Liveness, which Bun does natively (idleTimeout 120 s, sendPings): every interval each socket
  // is pinged, and one that sent no pong since the last ping is dropped (nothing per frame):
  // a peer gone without FIN or RST would otherwise stay connected until TCP gives up.
  const quiet = new WeakSet();
  const heartbeat = pingIntervalMs > 0 ? setInterval(() => {
    for (const ws of wss.clients) {
      if (quiet.has(ws)) ws.terminate();
      else (quiet.add(ws), ws.ping());
    }
  }, pingIntervalMs) : undefined;
  heartbeat?.unref?.();
  wss.on("close", () => clearInterval(heartbeat));
  const extraHeaders = new WeakMap(); // request -> headers for its 101 response
  wss.on("headers", (headers, req) => {
    for (const [k, v] of Object.entries(extraHeaders.get(req) ?? {})) headers.push(`${k}: ${v}`);
  });
  return {
    wss,
    async upgrade(message, socket, head) {
      socket.on("error", (err) => hub.log("warn", "websocket_socket_error", { error: err.message }));
      const auth = await hub.authorize(toRequest(message));
      if (auth.response) return writeResponse(socket, auth.response);
      if (socket.destroyed) return;
      extraHeaders.set(message, auth.headers);
      wss.handleUpgrade(message, socket, head, (ws) => {
        const id = hub.newId();
        ws.on("message", (data) => hub.message(id, data));
        ws.on("pong", () => quiet.delete(ws));
        ws.on("close", (code) => hub.close(id, code));
        ws.on("error", (err) => hub.error(id, err));
        ws._socket?.on("drain", () => hub.drain(id));
        // Frames sent in one tick leave in one write: the socket is corked until the next tick.
        let corked = false;
        const send = (frame) => {
          if (ws.readyState !== ws.OPEN) return 0;
          if (!corked && ws._socket) {
            corked = true;
            ws._socket.cork();
            process.nextTick(() => ((corked = false), ws._socket?.uncork()));
          }
          // Corked writes keep the chunk until the next tick, and the frame may be a view of wasm
          // memory (valid only during this call): ws gets its own copy.
          ws.send(Buffer.from(frame));
          return frame.length || 1;
        };
        hub.open({
          id,
          context: auth.context,
          send,
          close: (code, reason) => ws.close(code, reason),
          terminate: () => ws.terminate(),
          drains: true,
          bufferedAmount: () => ws.bufferedAmount,
        });
      });
    },
  };
}

/**
 * Plain HTTP requests (the HTTP/SSE transport) on node:http: the IncomingMessage as a Request
 * whose body streams and whose signal aborts when the client goes away, and the Response written
 * back as it streams (an SSE body chunk by chunk).
 */
export async function serveFetch(message, res, handler) {
  const abort = new AbortController();
  res.on("close", () => abort.abort());
  const request = toRequest(message);
  const hasBody = message.method !== "GET" && message.method !== "HEAD";
  // The body as a stream read on demand (a handler that stops reading stops the upload).
  const chunks = message[Symbol.asyncIterator]();
  const body = new ReadableStream({
    async pull(controller) {
      const { done, value } = await chunks.next();
      if (done) controller.close();
      else controller.enqueue(new Uint8Array(value));
    },
    cancel: () => message.destroy(),
  });
  const full = new Request(request, { body: hasBody ? body : undefined, duplex: "half", signal: abort.signal });
  const response = await handler(full);
  res.writeHead(response.status, [...response.headers].flat());
  res.flushHeaders();
  if (!response.body) return void res.end();
  const reader = response.body.getReader();
  abort.signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise((r) => res.once("drain", r).once("close", r));
    }
  } catch {
    // the client went away
  }
  res.end();
}
