// teleportal/cloudflare: a Durable Object that hosts one room's connections and Server, using the
// WebSocket Hibernation API, and a router that sends each upgrade to its room's object.
import { Hub, upgradeTokens, verifyUpgradeRequest } from "./connections.js";
import { getHTTPHandlers, isHTTPTransportRequest } from "./http.js";
import { Server } from "./server.js";
import { createDurableObjectHandlers } from "../dist/hosts/workers.js";
import { createDurableObjectStorage } from "./storage/durable-object.js";
import { CONTENT_TYPE } from "./metrics.js";

const ROOM_HEADER = "x-teleportal-room";

export { isHTTPTransportRequest };

/**
 * Picks the Durable Object for an upgrade: one object per room, so load spreads across objects
 * while every client of a room meets in the same one. With a secret (or tokenManager) the token is
 * verified here, at the edge, and its `room` claim picks the object: one Worker URL serves every
 * room and a bad token never wakes an object. Without one (an app that authenticates in its own
 * onUpgrade) the room comes from `?room=`, else the URL path.
 * @param {Request} request
 * @param {DurableObjectNamespace} namespace
 * @param {{ secret?: string | Uint8Array, tokenManager?: object }} [options]
 */
export function routeToRoom(request, namespace, options = {}) {
  let room;
  const tokens = options.secret || options.tokenManager ? upgradeTokens(options) : null;
  if (tokens) {
    const verdict = verifyUpgradeRequest(tokens, request);
    if (verdict.response) return verdict.response;
    room = typeof verdict.context.room === "string" ? verdict.context.room : "";
  } else {
    const url = new URL(request.url);
    room = url.searchParams.get("room");
    if (room === null) {
      try {
        room = decodeURIComponent(url.pathname.replace(/^\/+/, ""));
      } catch {
        return new Response("Bad Request: the room in the URL path is not valid percent-encoding", { status: 400 });
      }
    }
  }
  const routed = new Request(request);
  routed.headers.set(ROOM_HEADER, room);
  return namespace.get(namespace.idFromName(room || "default")).fetch(routed);
}

// The object of room A never serves a token for room B: its documents would live apart from every
// other client of room B. (With token routing the two always agree.)
function sameRoom(context, request) {
  const routed = request.headers.get(ROOM_HEADER);
  if (routed === null || typeof context?.room !== "string" || context.room === "" || context.room === routed) return;
  return new Response(`Forbidden: the token is for room "${context.room}", not "${routed}"`, { status: 403 });
}

/**
 * Extend this (or use it as is) and export it as your Durable Object class. Override
 * `handlerOptions()` to pass onUpgrade / onConnect / onDisconnect hooks like getWebsocketHandlers
 * (`this.server` is the object's Server); `serverOptions()` configures that Server (its
 * `storage` defaults to this object's durable storage). Permissions are checked on every message
 * (the token's documentAccess); the token secret comes from the TELEPORTAL_SECRET binding.
 */
export class TeleportalDurableObject {
  constructor(state, env) {
    this.state = state;
    this.env = env;
    // Documents live in the object's SQLite storage and are loaded when a client first opens them.
    this.documents = createDurableObjectStorage(state.storage);
    this.server = new Server({
      storage: this.documents,
      secret: env?.TELEPORTAL_SECRET,
      tickIntervalMs: 0, // no timer (it would keep the object awake): alarms and events drive time
      ...this.serverOptions(),
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
    this.handlers = createDurableObjectHandlers(this.hub, this.server, state);
    // GET/POST /sse and POST /message: clients of the same Hub and Server (an open stream keeps
    // the object awake). An onUpgrade hook, when given, decides their context too.
    const onUpgrade = this.hub.options.onUpgrade;
    this.http = getHTTPHandlers({
      server: this.server,
      hub: this.hub,
      secret: env?.TELEPORTAL_SECRET,
      acceptContext: sameRoom,
      getContext: onUpgrade ? async (request) => (await onUpgrade(request))?.context ?? {} : undefined,
    });
  }

  /** @returns {import("../types/websocket-server").WebsocketHandlersOptions | {}} */
  handlerOptions() {
    return {};
  }

  serverOptions() {
    return {};
  }

  async fetch(request) {
    // This object's counters (the same names as GET /metrics of the Bun and Node server). The
    // Worker routes GET /metrics like an upgrade (routeToRoom: the token's room picks the object).
    if (request.method === "GET" && new URL(request.url).pathname.endsWith("/metrics") && request.headers.get("upgrade") === null) {
      return new Response(this.server.metrics(this.hub.metricSamples()), { headers: { "content-type": CONTENT_TYPE } });
    }
    if (!isHTTPTransportRequest(request)) return this.handlers.fetch(request);
    const response = await this.http(request);
    const next = this.server.tick(); // token expiry and unloads of the HTTP clients' documents
    if (next !== null) await this.state.storage.setAlarm(next);
    return response;
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

  alarm() {
    return this.handlers.alarm();
  }
}
