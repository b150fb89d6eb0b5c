// teleportal/cloudflare
import type { WebsocketHandlersOptions } from "./websocket-server.js";
import type { Server, ServerOptions } from "./server.js";

/**
 * Sends an upgrade to its room's Durable Object. With `secret` (or `tokenManager`) the token is
 * verified at the edge (401 otherwise) and its `room` claim picks the object; without, the room
 * comes from ?room=, else the URL path (400 when the path is not valid percent-encoding).
 */
export declare function routeToRoom(
  request: Request,
  namespace: { idFromName(name: string): unknown; get(id: unknown): { fetch(request: Request): Promise<Response> } },
  options?: { secret?: string | Uint8Array; tokenManager?: unknown },
): Response | Promise<Response>;

/** Whether a request belongs to the HTTP/SSE transport (GET/POST /sse, POST /message): route it like an upgrade. */
export { isHTTPTransportRequest } from "./http.js";

/**
 * A Durable Object hosting one room with the WebSocket Hibernation API; it also serves the
 * HTTP/SSE transport (teleportal/http) for that room through the same Hub and Server.
 */
export declare class TeleportalDurableObject {
  constructor(state: unknown, env: { TELEPORTAL_SECRET?: string; [key: string]: unknown });
  readonly server: Server;
  handlerOptions(): Partial<WebsocketHandlersOptions>;
  serverOptions(): ServerOptions;
  fetch(request: Request): Promise<Response>;
  webSocketMessage(ws: unknown, message: string | ArrayBuffer): Promise<void>;
  webSocketClose(ws: unknown, code: number, reason: string, wasClean: boolean): Promise<void>;
  webSocketError(ws: unknown, error: unknown): Promise<void>;
  /** Token expiry and document unloading run on the object's alarm. */
  alarm(): Promise<void>;
}
