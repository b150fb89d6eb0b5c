// Deployable Worker: `wrangler deploy` (see wrangler.toml). Each room (the token's room claim) gets
// its own Durable Object.
import { TeleportalDurableObject, isHTTPTransportRequest, routeToRoom } from "teleportal/cloudflare";

export class TeleportalRoom extends TeleportalDurableObject {}

export default {
  async fetch(request, env) {
    // WebSocket upgrades and the HTTP/SSE transport (GET/POST /sse, POST /message) alike.
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket" || isHTTPTransportRequest(request)) {
      // The token is verified here and its room claim picks the object: one URL for every room.
      return routeToRoom(request, env.ROOMS, { secret: env.TELEPORTAL_SECRET });
    }
    if (new URL(request.url).pathname === "/metrics") {
      // A room's counters: its object, picked by the token's room claim (a valid token is required).
      return routeToRoom(request, env.ROOMS, { secret: env.TELEPORTAL_SECRET });
    }
    return new Response("Teleportal: connect with a WebSocket", { status: 426 });
  },
};
