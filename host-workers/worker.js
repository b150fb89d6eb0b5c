// Deployable Worker: `wrangler deploy` (see wrangler.toml). Each room gets its own Durable Object.
import { TeleportalDurableObject, routeToRoom } from "teleportal/cloudflare";

export class TeleportalRoom extends TeleportalDurableObject {}

export default {
  async fetch(request, env) {
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      return routeToRoom(request, env.ROOMS);
    }
    return new Response("Teleportal: connect with a WebSocket", { status: 426 });
  },
};
