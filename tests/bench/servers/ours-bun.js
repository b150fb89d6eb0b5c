// Relay benchmark fixture: our server on Bun (Bun.serve + getWebsocketHandlers + Server).
// Prints {"port": N} once listening.
import { makeHandlers } from "./ours-app.js";

const { handlers } = makeHandlers();
const bun = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req, srv) {
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") return handlers.upgrade(req, srv);
    return new Response("ok");
  },
  websocket: handlers.websocket,
});
console.log(JSON.stringify({ port: bun.port }));
