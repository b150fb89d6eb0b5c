// The documentation's Bun example must type-check against our .d.ts files as written.
import { getWebsocketHandlers } from "teleportal/websocket-server";
import { Server } from "teleportal/server";
import { createTokenManager } from "teleportal/token";

const server = new Server({});
const tokenManager = createTokenManager({ secret: "your-secret-key", expiresIn: 3600 });

const handlers = getWebsocketHandlers({
  onUpgrade: async (request) => {
    const url = new URL(request.url);
    const token = url.searchParams.get("token") || request.headers.get("authorization")?.replace("Bearer ", "");
    if (!token) {
      throw new Response("No token provided", { status: 401 });
    }
    const result = await tokenManager.verifyToken(token);
    if (!result.valid || !result.payload) {
      throw new Response("Invalid token", { status: 401 });
    }
    return { context: { userId: result.payload.userId, room: result.payload.room, token } };
  },
  onConnect: async ({ transport, context, id }) => {
    await server.createClient(transport, context, id);
  },
  onDisconnect: async (id) => {
    await server.disconnectClient(id);
  },
});

Bun.serve({
  fetch(req, server) {
    if (req.headers.get("upgrade") === "websocket") {
      return handlers.upgrade(req, server);
    }
    return new Response("Not found", { status: 404 });
  },
  websocket: handlers.websocket,
  port: 3000,
});
