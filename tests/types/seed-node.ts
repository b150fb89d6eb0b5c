// The documentation's Node example (with the upgrade event on the http server).
import { createServer } from "http";
import { getWebsocketHandlers } from "teleportal/websocket-server";
import { getHTTPHandlers } from "teleportal/http";
import { Server } from "teleportal/server";
import { decodeMessage } from "teleportal/protocol";
import { mergeUpdatesV2 } from "teleportal/updates";

const server = new Server();
const handlers = getWebsocketHandlers({
  onConnect: async ({ transport, context, id }) => {
    await server.createClient(transport, context, id);
  },
  onDisconnect: async (id) => {
    await server.disconnectClient(id);
  },
});

// The HTTP/SSE transport on the same port and Hub.
const http = getHTTPHandlers({ server, secret: "dev-secret", hub: handlers.hub });
const httpServer = createServer((req, res) => {
  void http.node(req, res);
});
httpServer.on("upgrade", (request, socket, head) => {
  handlers.upgrade(request, socket, head);
});
httpServer.listen(3000);

const m = decodeMessage(new Uint8Array([0x59, 0x4a, 0x53, 0x70, 0x69, 0x6e, 0x67]));
const merged: Uint8Array = mergeUpdatesV2([new Uint8Array(13)]);
console.log(m.type, merged.length);

// Observability (README): metrics text with the handlers' samples, health, events.
httpServer.on("request", async (req, res) => {
  if (req.url === "/metrics") {
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    res.end(server.metrics(handlers.metricSamples()));
  } else if (req.url === "/health") {
    const { ok, checks } = await server.health({ timeoutMs: 1000 });
    res.writeHead(ok ? 200 : 503).end(JSON.stringify(checks.storage));
  }
});
server.on("write", ({ documents, entries, bytes, ms }) => console.log(documents.join(","), entries, bytes, ms));
server.on("error", (e) => console.error(e.event, e.error));
const onLoad = (e: { documentId: string; entries: number }) => console.log(e.documentId, e.entries);
server.on("document-load", onLoad).off("document-load", onLoad);
