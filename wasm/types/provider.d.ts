// teleportal/provider: a Y.js provider for browsers, Bun and Node speaking the Teleportal wire protocol.
import type * as Y from "yjs";
import type { Awareness } from "y-protocols/awareness";
import type { ObservableV2 } from "lib0/observable";
import type { PresenceClient } from "./protocol.js";

/** Close code a server uses when a token expired without an in-band refresh. */
export declare const TOKEN_EXPIRED: 4401;

export type ProviderStatus = "connecting" | "connected" | "disconnected" | "closed";

/** Reported through "error" events; never thrown at the caller. */
export declare class ProviderError extends Error {
  /**
   * nack: the server refused a frame (ack with `error`); denied: an auth-message denial for a
   * document; refresh: an in-band token was refused; token: getToken failed or the token
   * expired; protocol: an undecodable frame or update from the server.
   */
  type: "nack" | "denied" | "refresh" | "token" | "protocol";
  document?: string;
  /** The id of the refused frame (nack, refresh). */
  messageId?: string;
  /** The server's own words (nack, denied, refresh). */
  reason?: string;
}

export interface ProviderOptions {
  /** WebSocket URL of the server; the token is added as `?token=`. */
  url: string | URL;
  /** A fixed token. */
  token?: string;
  /** Called before every connect and before the current token expires. */
  getToken?: () => string | Promise<string>;
  /** A WebSocket class (default globalThis.WebSocket; on Node 20 pass the `ws` package's). */
  WebSocket?: new (url: string) => WebSocket;
  /** Connect at once (default true). */
  connect?: boolean;
  /** Longest wait before local updates are sent, ms (default 20; an animation frame sends sooner). */
  batchMs?: number;
  /** First reconnect delay, ms (default 250), doubled per failure up to maxDelay. */
  minDelay?: number;
  /** Longest reconnect delay, ms (default 10000); each delay is drawn from [d/2, d]. */
  maxDelay?: number;
  /** Ms between "YJSping" frames (default 15000); silence for two intervals drops the connection. */
  pingInterval?: number;
  /** Ms before expiry at which getToken is called (default 60000, at most a quarter of the lifetime). */
  refreshMargin?: number;
  /**
   * Tried in order on each connect, starting at the last one that opened (default
   * ["websocket", "http"]: HTTP/SSE — GET /sse + POST /sse — when the WebSocket fails).
   */
  transports?: Array<"websocket" | "http">;
  /** Ms a transport may take to open (default websocket 5000, http 10000). */
  transportTimeouts?: { websocket?: number; http?: number };
  /** On a fallback transport: ms before a WebSocket is tried again (default 30000, doubling up to 300000). */
  upgradeProbeInterval?: number;
  /** fetch() for the HTTP transport (default globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface DocumentEvents {
  synced: (synced: boolean) => void;
  error: (error: ProviderError) => void;
  "peer-join": (peer: PresenceClient) => void;
  "peer-leave": (peer: PresenceClient) => void;
}

/** One document on a provider's connection. */
export declare class TeleportalDocument extends ObservableV2<DocumentEvents> {
  readonly provider: TeleportalProvider;
  readonly name: string;
  readonly doc: Y.Doc;
  readonly awareness: Awareness;
  /** True while the document is in sync with the server over the current connection. */
  readonly isSynced: boolean;
  /** Resolves when the document is in sync (a new promise after each disconnect); rejects on a denial. */
  readonly synced: Promise<void>;
  /** The document's milestones (version history) on the server. */
  readonly milestones: MilestoneClient;
}

/** An RPC error response: message `RPC error (<statusCode>): <details>`. */
export declare class RpcError extends Error {
  readonly statusCode: number;
  readonly details: string;
  readonly payload: unknown;
}

export interface RpcRequestOptions {
  /** Default 30000 ms, then `RPC request timeout: <method>`. */
  timeout?: number;
  /** The request frame's encrypted flag (default false). */
  encrypted?: boolean;
  /** Each stream chunk the server sends before the response. */
  onStream?: (chunk: unknown) => void;
}

/** Requests to the server's RPC methods; payloads are lib0 `any` values. */
export declare class RpcClient {
  /** Sends `{method, ...payload}` (once connected) and resolves with the response payload; rejects with an RpcError. */
  request(document: string, method: string, payload?: Record<string, unknown>, options?: RpcRequestOptions): Promise<unknown>;
  /** Rejects everything pending with `RpcClient destroyed`. */
  destroy(): void;
}

export interface Milestone {
  id: string;
  name: string;
  /** The namespaced document key ("room/document"). */
  documentId: string;
  createdAt: number;
  deletedAt?: number;
  lifecycleState?: "active" | "deleted" | "archived" | "expired";
  expiresAt?: number;
  createdBy: { type: "user" | "system"; id: string };
}

/** Failures reject with `[milestone] Failed to <operation>: <inner message>` (the RpcError as cause). */
export declare class MilestoneClient {
  list(options?: { includeDeleted?: boolean; snapshotIds?: string[]; timeout?: number }): Promise<Milestone[]>;
  /** The stored snapshot: a Y.js V2 update of the whole document (plaintext documents). */
  getSnapshot(id: string, options?: { timeout?: number }): Promise<Uint8Array>;
  /** Stores the document's current state; the server names it "Version N" when `name` is absent. */
  create(name?: string, options?: { timeout?: number }): Promise<Milestone>;
  updateName(id: string, name: string, options?: { timeout?: number }): Promise<Milestone>;
  /** Soft delete; a second delete removes it for good. */
  delete(id: string, options?: { timeout?: number }): Promise<void>;
  /** Undoes a soft delete (the document's content is unchanged). */
  restore(id: string, options?: { timeout?: number }): Promise<Milestone>;
}

export interface ProviderEvents {
  status: (status: ProviderStatus) => void;
  error: (error: ProviderError) => void;
  /** A refreshed token was acknowledged by the server. */
  token: (token: string) => void;
  /** An upgrade probe found the WebSocket working again: the connection moves to it. */
  upgrade: (transport: "websocket") => void;
}

/** A connection to a Teleportal server carrying any number of documents. */
export declare class TeleportalProvider extends ObservableV2<ProviderEvents> {
  constructor(options: ProviderOptions);
  readonly status: ProviderStatus;
  readonly url: URL;
  /** The transport of the open connection, null while not connected. */
  readonly transport: "websocket" | "http" | null;
  /** The token in use (the last one getToken returned). */
  readonly token: string | undefined;
  readonly documents: Map<string, TeleportalDocument>;
  /** Starts syncing a document on this connection (returns the existing handle if open). */
  open(name: string, options?: { doc?: Y.Doc; awareness?: Awareness }): TeleportalDocument;
  /** Stops syncing a document (removes its awareness state and unannounces presence). */
  close(name: string): void;
  connect(): void;
  /** Closes the connection and stays offline until connect(). */
  disconnect(): void;
  /** Closes every document and the connection for good. */
  destroy(): void;
  /** Resolves once every local change is acknowledged (waits through reconnects); rejects after timeout ms. */
  flush(options?: { timeout?: number }): Promise<void>;
  /** Calls getToken now and sends the new token in-band on the open connection. */
  refreshToken(): Promise<void>;
  /** RPC requests on this connection (waiting for it when offline). */
  readonly rpc: RpcClient;
}

/** The exp and iat claims of a JWT, unverified (to schedule a refresh). */
export declare function tokenTimes(token: string): { exp?: number; iat?: number };
