// teleportal/http: the HTTP/SSE transport (GET /sse, POST /sse, POST /message).
import type { TokenManager } from "./token.js";
import type { Server } from "./server.js";
import type { ConnectionContext } from "./websocket-server.js";

export interface HTTPHandlersOptions<Context = ConnectionContext> {
  /** The Server every SSE stream and /message request joins as a client (the WebSocket path's Server). */
  server: Server;
  /**
   * Replaces the built-in token check: returns the connection context, or returns/throws a
   * Response to refuse with it as is (any other error: 401). Without it, the token comes from
   * `Authorization: Bearer` or `?token=` and its verified claims (plus `token`) are the context.
   */
  getContext?: (request: Request) => Context | Response | Promise<Context | Response>;
  /** Built-in token check: the secret (else env TELEPORTAL_SECRET), issuer and audience ("teleportal"). */
  secret?: string | Uint8Array;
  issuer?: string;
  audience?: string;
  tokenManager?: TokenManager;
  /** Last word on an authenticated request: return a Response to refuse this context after all. */
  acceptContext?: (context: Context, request: Request) => Response | undefined | void;
  /** Documents a new stream joins at once; default: the `documents` query (getDocumentsFromQueryParams). */
  getInitialDocuments?: (request: Request) => Array<string | { document: string; encrypted?: boolean }> | Promise<Array<string | { document: string; encrypted?: boolean }>>;
  /** Requests that are not GET/POST /sse or POST /message; default: 404 "Not Found". */
  fetch?: (request: Request) => Response | Promise<Response>;
  /** How long POST /sse and /message wait for the Server's answer to each frame (5000 ms). */
  ackTimeoutMs?: number;
  /** Interval of the stream's `ping` events (5000 ms). */
  pingIntervalMs?: number;
  /** Largest request body; larger ones get 400 (16 MiB, the runtimes' WebSocket message limit). */
  maxBodyBytes?: number;
  /**
   * The Hub of getWebsocketHandlers (`handlers.hub`): HTTP clients then go through its onConnect /
   * onDisconnect hooks and its shutdown. Default: a Hub of its own that joins `server`.
   */
  hub?: unknown;
  /**
   * The Server's cluster (teleportal/cluster): a POST /sse landing on another node than its stream
   * is forwarded to the stream's node (which checks the poster's user and answers). Without it a
   * POST for a stream this node does not hold gets 504 at once.
   */
  cluster?: import("./cluster.js").Cluster;
  /** Bytes a slow stream may have queued before it is closed. Default 16 MiB. */
  maxBufferedBytes?: number;
  logger?: (level: "debug" | "info" | "warn" | "error", event: string, fields: Record<string, unknown>) => void;
}

export interface HTTPHandler {
  (request: Request): Promise<Response>;
  /** node:http: serves a request (`createServer((req, res) => handler.node(req, res))`), streaming the SSE body. */
  node(req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse): Promise<void>;
  /** Ends every open stream; their clients leave the Server. */
  close(): Promise<void>;
}

/**
 * Routes: GET /sse (text/event-stream: client-id, message and ping events), POST /sse (a message
 * array for the stream named by x-teleportal-client-id or ?client-id=; only the stream's own user
 * may post: 403 otherwise; 200 {"message":"ok"} once the Server answered every frame, else 504),
 * POST /message (one-shot: the response body is the message array of what the Server sent).
 * Refusals are returned as Responses (401, 400, 403, 409), never thrown.
 */
export declare function getHTTPHandlers<Context = ConnectionContext>(options: HTTPHandlersOptions<Context>): HTTPHandler;

/** Whether a request is one getHTTPHandlers answers (GET/POST /sse, POST /message). */
export declare function isHTTPTransportRequest(request: Request): boolean;

/** The reference's `documents` query rule: split on commas, `:plaintext`/`:unencrypted` suffixes, encrypted wins. */
export declare function getDocumentsFromQueryParams(url: string | URL): { document: string; encrypted: boolean }[];
