// Relay benchmark fixture: our server on Node (http + ws via getWebsocketHandlers' Node path).
// Prints {"port": N} once listening.
import { createServer } from "node:http";
import { makeHandlers } from "./ours-app.js";

const { handlers } = makeHandlers();
const http = createServer((_req, res) => res.end("ok"));
http.on("upgrade", (request, socket, head) => handlers.upgrade(request, socket, head));
http.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: http.address().port })));
