// teleportal/cloudflare: a Durable Object that hosts one room's connections and Server, using the
// WebSocket Hibernation API, and a router that sends each upgrade to its room's object.
import { Hub } from "./connections.js";
import { Server } from "./server.js";
import { createDurableObjectHandlers, createDurableObjectStorage } from "../dist/hosts/workers.js";

/**
 * Picks the Durable Object for a request: one object per room, so load spreads across objects
 * while every client of a room meets in the same one. Room from `?room=`, else the URL path.
 */
export function routeToRoom(request, namespace) {
  const url = new URL(request.url);
  const room = url.searchParams.get("room") ?? decodeURIComponent(url.pathname.replace(/^\/+/, ""));
  const routed = new Request(request);
  routed.headers.set(ROOM_HEADER, room || "default");
  return namespace.get(namespace.idFromName(room || "default")).fetch(routed);
}

const ROOM_HEADER = "x-teleportal-room";

// A token for room B must not open documents inside room A's object: its documents would live
// apart from every other client of room B.
function sameRoom(context, request) {
  const routed = request.headers.get(ROOM_HEADER);
  if (routed === null || typeof context?.room !== "string" || context.room === "" || context.room === routed) return;
  return new Response(`Forbidden: the token is for room "${context.room}", not "${routed}"`, { status: 403 });
}

/**
 * Extend this (or use it as is) and export it as your Durable Object class. Override
 * `handlerOptions()` to pass onUpgrade / onConnect / onDisconnect hooks like getWebsocketHandlers
 * (`this.server` is the object's Server); `serverOptions()` configures that Server (its
 * `storage` defaults to this object's durable storage).
 * The token secret comes from the TELEPORTAL_SECRET binding.
 */
export class TeleportalDurableObject {
  constructor(state, env) {
    this.state = state;
    this.env = env;
    // Accepted updates survive eviction and hibernation in the object's storage; they are loaded
    // before the first event is delivered.
    this.documents = createDurableObjectStorage(state.storage);
    this.server = new Server({ storage: this.documents, ...this.serverOptions() });
    state.blockConcurrencyWhile(async () => {
      for (const { key, document, envelopes } of await this.documents.load()) {
        this.server.restoreDocument(key, document, envelopes);
      }
    });
    // Without hooks every connection joins this object's Server. With an onConnect hook the hook
    // decides (as with getWebsocketHandlers); the Server still drops clients whose socket closed.
    this.hub = new Hub({
      secret: env?.TELEPORTAL_SECRET,
      onConnect: ({ transport, context, id }) => this.server.createClient(transport, context, id),
      onDisconnect: (id) => this.server.disconnectClient(id),
      acceptContext: sameRoom,
      ...this.handlerOptions(),
    });
    this.handlers = createDurableObjectHandlers(this.hub, state);
  }

  /** @returns {import("../types/websocket-server").WebsocketHandlersOptions | {}} */
  handlerOptions() {
    return {};
  }

  serverOptions() {
    return {};
  }

  fetch(request) {
    return this.handlers.fetch(request);
  }

  webSocketMessage(ws, message) {
    return this.handlers.webSocketMessage(ws, message);
  }

  webSocketClose(ws, code, reason) {
    return this.handlers.webSocketClose(ws, code, reason);
  }

  webSocketError(ws, error) {
    return this.handlers.webSocketError(ws, error);
  }
}
