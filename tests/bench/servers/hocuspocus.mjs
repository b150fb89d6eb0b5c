// Relay benchmark fixture: Hocuspocus' own Server (http + crossws), no extensions (no
// persistence, no auth hook). Under Bun (where Server's crossws Node adapter refuses to run) the
// same Hocuspocus instance is wired straight to Bun.serve's websocket hooks, as Server wires it
// to crossws (crossws' Bun adapter wraps the socket in a proxy Bun's methods refuse as `this`). Default configuration, except HOCUSPOCUS_FLUSH_DELAY=false turns
// off 4.x's update coalescing (flushDelay: 0 merges the updates of one event-loop turn into one
// broadcast), and HOCUSPOCUS_JWT_SECRET adds the usual onAuthenticate: the connection's token is
// verified as an HS256 JWT (issuer and audience "teleportal") with jose, as a Hocuspocus
// deployment with tokens does. Prints {"port": N} once listening. Runs under Node and Bun.
import { Hocuspocus, Server } from "@hocuspocus/server";

const flush = process.env.HOCUSPOCUS_FLUSH_DELAY;
const extra = flush === undefined ? {} : { flushDelay: flush === "false" ? false : Number(flush) };
const jwtSecret = process.env.HOCUSPOCUS_JWT_SECRET;
if (jwtSecret) {
  const { jwtVerify } = await import("jose");
  const key = new TextEncoder().encode(jwtSecret);
  extra.onAuthenticate = async ({ token }) => {
    const { payload } = await jwtVerify(token, key, { issuer: "teleportal", audience: "teleportal", algorithms: ["HS256"] });
    return { user: payload.userId };
  };
}
if (globalThis.Bun) {
  const hocuspocus = new Hocuspocus({ quiet: true, ...extra });
  const bun = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request, server) => (server.upgrade(request, { data: { request } }) ? undefined : new Response("upgrade expected", { status: 426 })),
    websocket: {
      open(ws) {
        const socket = { send: (data) => ws.send(data), close: (code, reason) => ws.close(code, reason), get readyState() { return ws.readyState; } };
        ws.data.connection = hocuspocus.handleConnection(socket, ws.data.request);
      },
      message: (ws, message) => ws.data.connection.handleMessage(new Uint8Array(message)),
      close: (ws, code, reason) => ws.data.connection.handleClose({ code, reason }),
    },
  });
  console.log(JSON.stringify({ port: bun.port }));
} else {
  const server = new Server({ port: 0, address: "127.0.0.1", quiet: true, stopOnSignals: false, ...extra });
  await server.listen();
  console.log(JSON.stringify({ port: server.address.port }));
}
