// teleportal/cloudflare
import type { WebsocketHandlersOptions } from "./websocket-server.js";
import type { Server, ServerOptions } from "./server.js";

/** Sends an upgrade to its room's Durable Object (room from ?room=, else the URL path). */
export declare function routeToRoom(
  request: Request,
  namespace: { idFromName(name: string): unknown; get(id: unknown): { fetch(request: Request): Promise<Response> } },
): Promise<Response>;

/** A Durable Object hosting one room with the WebSocket Hibernation API. */
export declare class TeleportalDurableObject {
  constructor(state: unknown, env: { TELEPORTAL_SECRET?: string; [key: string]: unknown });
  readonly server: Server;
  handlerOptions(): Partial<WebsocketHandlersOptions>;
  serverOptions(): ServerOptions;
  fetch(request: Request): Promise<Response>;
  webSocketMessage(ws: unknown, message: string | ArrayBuffer): Promise<void>;
  webSocketClose(ws: unknown, code: number, reason: string, wasClean: boolean): Promise<void>;
  webSocketError(ws: unknown, error: unknown): Promise<void>;
}
