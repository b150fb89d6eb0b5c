// teleportal/websocket-server
import type { TokenManager } from "./token.js";

/** Any JSON-like object; it reaches onConnect and the Server unchanged. */
export interface ConnectionContext {
  userId?: string;
  room?: string;
  token?: string;
  [key: string]: unknown;
}

/** The core's view of one socket: frames in (onMessage), frames out (send), close. */
export interface Transport<Context = ConnectionContext> {
  readonly id: string;
  readonly context: Context;
  readonly closed: boolean;
  /** Sends one encoded frame; false when the connection is gone. */
  send(frame: Uint8Array): boolean;
  close(code?: number, reason?: string): void;
  onMessage(listener: (frame: Uint8Array) => void): () => void;
  onClose(listener: () => void): () => void;
}

export interface WebsocketHandlersOptions<Context = ConnectionContext> {
  /** Called once the socket is open. If it throws, only this connection is closed (1011). */
  onConnect: (ctx: { transport: Transport<Context>; context: Context; id: string; restored?: boolean }) => Promise<void> | void;
  /** Called exactly once per connection that reached onConnect, however it ended. */
  onDisconnect?: (id: string) => Promise<void> | void;
  /**
   * Decides the upgrade. Return a context (and extra response headers), or throw a Response to
   * reject with it as is; any other error rejects with 401. Without onUpgrade, the built-in token
   * check runs: token from ?token= or Authorization: Bearer, verified claims become the context.
   */
  onUpgrade?: (request: Request) => Promise<{ context?: Context; headers?: HeadersInit }> | { context?: Context; headers?: HeadersInit };
  /** Observability only: called for every incoming frame; errors are logged. */
  onMessage?: (ctx: { id: string; context: Context; message: Uint8Array }) => Promise<void> | void;
  /** Built-in token check: the secret (else env TELEPORTAL_SECRET), issuer and audience ("teleportal"). */
  secret?: string | Uint8Array;
  issuer?: string;
  audience?: string;
  tokenManager?: TokenManager;
  /** Last word on an accepted upgrade: return a Response to refuse this context after all. */
  acceptContext?: (context: Context, request: Request) => Response | undefined | void;
  /** Bytes a slow client may have queued before it is disconnected (1013). Default 16 MiB. */
  maxBufferedBytes?: number;
  /**
   * Node: every socket is pinged this often, and one that sent no pong since the last ping
   * is dropped (default 60000; 0 turns it off). Bun does the same natively (idleTimeout 120 s).
   */
  pingIntervalMs?: number;
  logger?: (level: "debug" | "info" | "warn" | "error", event: string, fields: Record<string, unknown>) => void;
  /** The lowest level `logger` wants (default "debug"); above "info" no info events are made. */
  logLevel?: "debug" | "info" | "warn" | "error";
}

export interface WebsocketHandlers {
  /** The connection hub behind these handlers (share it with teleportal/http's getHTTPHandlers). */
  readonly hub: unknown;
  /** Bun: upgrade(request, server). Node: upgrade(request, socket, head) from http "upgrade". */
  upgrade(request: Request, server: { upgrade(req: Request, options?: unknown): boolean }): Promise<Response | undefined>;
  upgrade(request: import("node:http").IncomingMessage, socket: import("node:stream").Duplex, head: Uint8Array): Promise<void>;
  /** Bun.serve's `websocket` option. */
  websocket: {
    open(ws: unknown): void;
    message(ws: unknown, message: string | Uint8Array): void;
    close(ws: unknown, code: number, reason: string): void;
    drain(ws: unknown): void;
  };
  /** Closes every connection; onDisconnect runs for each. */
  shutdown(code?: number, reason?: string): Promise<void>;
  /**
   * What only the host sees, as samples for Server#metrics(extra): `upgrades_total{outcome,code}`
   * (accepted 101, rejected 401/403/...) and `websocket_closes_total{code}`.
   */
  metricSamples(): [string, number][];
}

export declare const CloseCode: Readonly<{ normal: 1000; internalError: 1011; tryAgainLater: 1013; serviceRestart: 1012 }>;

export declare function getWebsocketHandlers<Context = ConnectionContext>(
  options: WebsocketHandlersOptions<Context>,
): WebsocketHandlers;

export declare function tokenAuthenticatedWebsocketHandler<Context = ConnectionContext>(options: {
  server: import("./server.js").Server;
  tokenManager: TokenManager;
  hooks?: Partial<WebsocketHandlersOptions<Context>>;
}): WebsocketHandlers;
