// Relay benchmark fixture: @y/websocket-server's own server (its src/server.js, unchanged in
// behaviour: http + ws, setupWSConnection, room = URL path, no persistence) but listening on an
// ephemeral port. Uses the `ws` that @y/websocket-server itself depends on.
// Prints {"port": N} once listening.
import http from "node:http";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { setupWSConnection } from "@y/websocket-server/utils";

const require = createRequire(fileURLToPath(import.meta.resolve("@y/websocket-server/utils")));
const WebSocket = require("ws");

const wss = new WebSocket.Server({ noServer: true });
wss.on("connection", setupWSConnection);
const server = http.createServer((_req, res) => res.end("okay"));
server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: server.address().port })));
