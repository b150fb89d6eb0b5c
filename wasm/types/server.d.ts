// teleportal/server
import type { ConnectionContext } from "./websocket-server.js";

import type { DocumentStorage } from "./storage.js";
import type { DecodedMessage } from "./protocol.js";
import type { Cluster } from "./cluster.js";

export interface PermissionCheck {
  /** The connection context given to createClient. */
  context: ConnectionContext;
  /** The bare document name (as clients send it). */
  documentId: string;
  /** The message that made the server ask (the first one for this document on this connection). */
  message: DecodedMessage;
  type: "read" | "write";
}

/** What an RPC handler receives besides the payload (spec ext. 1.3). */
export interface RpcContext extends Record<string, unknown> {
  server: Server;
  /** The namespaced document key: "room/document", or the bare name without a room. */
  documentId: string;
  session: { document: string; documentId: string; encrypted: boolean };
  userId?: string;
  clientId: string;
}

/** A handler's result: `response` is the success payload, or `{type: "error", statusCode?, details?, payload?}`. */
export interface RpcResult {
  response?: unknown;
  /** Each value becomes a stream frame, sent before the response. */
  stream?: AsyncIterable<unknown> | Iterable<unknown>;
  /** The encrypted flag of the success frames (default: the request's). */
  encrypted?: boolean;
}

export interface RpcHandlerEntry {
  /** Serves a request; throwing answers 500 with the error's message. */
  handler(payload: unknown, ctx: RpcContext): RpcResult | Promise<RpcResult>;
  /** Serves incoming stream frames of this method (uploads); `send` writes a frame (bytes or a message object) to the caller. */
  streamHandler?(payload: unknown, ctx: RpcContext, frameId: string, send: (message: Uint8Array | object) => void): void | Promise<void>;
  /** Called once in the Server constructor; what it returns runs at close(). */
  init?(server: Server): void | (() => unknown);
  /** What the caller needs in token mode. Default "write". */
  access?: "read" | "write";
}

export interface MilestoneTrigger {
  id?: string;
  type: "update-count" | "time-based";
  /** Default true. */
  enabled?: boolean;
  config: { updateCount: number } | { interval: number };
  /** The milestone's name (default "Milestone N"). */
  autoName?: string;
}

export interface MilestoneOptions {
  /** Automatic milestones, checked on every document update; they share one counter and clock per document. */
  triggers?: MilestoneTrigger[];
  /** Called once an automatic milestone is stored. */
  onMilestoneCreated?: (milestoneId: string, documentId: string) => void;
}

export interface ServerOptions {
  /**
   * "token" (the default): every message is checked against the connection's verified token
   * claims (`documentAccess`: the built-in upgrade check puts them in the context; a context with
   * only a `token` has it verified with the Server's secret). "none": no checks at all (explicit
   * opt-out, logged at start). Ignored when `checkPermission` is given.
   */
  permissions?: "none" | "token";
  /**
   * The application decides instead of the token: called once per (connection, document) for
   * "read" and once for "write"; the answers are cached for the connection (a refresh asks again).
   * Throwing or rejecting denies.
   */
  checkPermission?: (check: PermissionCheck) => boolean | Promise<boolean>;
  /** The token secret (else the tokenManager's, else TELEPORTAL_SECRET): verifies context tokens and in-band refreshes. */
  tokenManager?: unknown;
  secret?: string | Uint8Array;
  /**
   * Where documents live. Default: SQLite at TELEPORTAL_DB (default ./data/teleportal.sqlite) on
   * Bun and Node. `new MemoryDocumentStorage()` keeps them in memory only.
   */
  storage?: DocumentStorage;
  /** Larger frames get a NACK "message-too-large". Default 10 MiB. */
  maxMessageSize?: number;
  /** A document without connections is unloaded from memory after this long. Default 5000 ms. */
  unloadAfterMs?: number;
  /** Documents one connection may open; the next gets an auth-message denial. Default 1000. */
  maxDocumentsPerConnection?: number;
  /** Stored entries of a document after which storage compacts them into one. Default 64. */
  compactAfter?: number;
  /**
   * Token buckets refilled every tick: messages per second and burst, per connection and per user
   * (every connection of one userId). A limited frame gets a NACK with retryAfter 1000 (ms).
   * Defaults: 1000/s (burst 5000) per connection, 5000/s (burst 20000) per user. `false`: off.
   */
  rateLimit?: false | { perConnection?: number; perConnectionBurst?: number; perUser?: number; perUserBurst?: number };
  /** Longer document names get a NACK. Default 1024 bytes. */
  maxDocumentNameBytes?: number;
  /** Larger awareness updates get a NACK. Default 64 KiB. */
  maxAwarenessBytes?: number;
  /** Connections one document may have; the next gets an auth-message denial. Default 10000. */
  maxConnectionsPerDocument?: number;
  /**
   * Makes this Server one node of a cluster (teleportal/cluster): updates, awareness and presence
   * reach the readers of a document on every node. The nodes must share the storage.
   */
  cluster?: Cluster;
  /**
   * The application's RPC methods (wire method name -> entry); they replace built-in methods of
   * the same name. Payloads are lib0 `any` values.
   */
  rpcHandlers?: Record<string, RpcHandlerEntry>;
  /** A call whose handler has not answered after this long gets a 504. Default 30000 ms (0: no limit). */
  rpcTimeoutMs?: number;
  /**
   * Built-in milestone methods (milestoneList/Get/Create/UpdateName/Delete/Restore) over the
   * storage's MilestoneStorage, and automatic milestones. Default on when the storage stores
   * milestones; `false` turns them off (they answer 501).
   */
  milestones?: boolean | MilestoneOptions;
  /** How often expiry and unloading are checked (0: never by itself; call tick()). Default 1000 ms. */
  tickIntervalMs?: number;
  logger?: (level: string, event: string, fields: Record<string, unknown>) => void;
  /**
   * The lowest level `logger` wants (default "debug": everything). Above "info" the core does not
   * make its per-connection and per-document info events at all.
   */
  logLevel?: "debug" | "info" | "warn" | "error";
}

/** The payload of each server.on() event. */
export interface ServerEvents {
  /** A client was attached (createClient). */
  connect: { clientId: string; context: ConnectionContext };
  /** A client left (disconnectClient, or its transport closed). */
  disconnect: { clientId: string };
  /** A document was loaded from storage (`documentId` is the storage key: room/name). */
  "document-load": { documentId: string; entries: number; skipped: number };
  /** A document without clients was unloaded from memory. */
  "document-unload": { documentId: string };
  /** A batch of accepted updates was committed (then acknowledged): the keys it wrote, entries, bytes and the commit's duration. */
  write: { documents: string[]; entries: number; bytes: number; ms: number };
  /**
   * Any error-level event: storage writes and loads that failed (storage_write_failed,
   * storage_load_failed), compactions, invalid stored entries, permission callbacks that threw,
   * cluster calls. `event` is the log event's name; its fields follow (snake_case, as logged).
   */
  error: { event: string; error?: string; [field: string]: unknown };
}

export interface HealthReport {
  ok: boolean;
  /** "ok", or the error (also "no answer within N ms") per check; `cluster` only with a cluster. */
  checks: { storage: string; cluster?: string };
}

/** A sample: [Prometheus name with labels, without the "teleportal_" prefix, value]. */
export type MetricSample = [string, number];

export interface TransportLike {
  id?: string;
  send(frame: Uint8Array): unknown;
  onMessage(listener: (frame: Uint8Array) => void): () => void;
  onClose?(listener: () => void): () => void;
  close?(code?: number, reason?: string): void;
}

export declare class Server {
  constructor(options?: ServerOptions);
  readonly clientCount: number;
  createClient(transport: TransportLike, context?: ConnectionContext, id?: string): Promise<void>;
  disconnectClient(id: string): Promise<void>;
  getClient(id: string): { id: string; context: ConnectionContext; transport: TransportLike } | undefined;
  /** Documents loaded in memory. */
  readonly documentCount: number;
  /** Resolves when every accepted update is committed and acknowledged. */
  flushed(): Promise<void>;
  /** Runs expiry and unloading now; returns when it next has work (ms since the epoch) or null. */
  tick(now?: number): number | null;
  /** Re-joins a restored connection to documents (after hibernation). */
  rejoin(id: string, documents: string[]): void;
  /** Disconnects every client, commits what is pending, closes storage the Server opened. */
  close(): Promise<void>;
  /** Listens to an event; a listener that throws is logged (event_listener_failed) and ignored. */
  on<E extends keyof ServerEvents>(event: E, listener: (payload: ServerEvents[E]) => void): this;
  off<E extends keyof ServerEvents>(event: E, listener: (payload: ServerEvents[E]) => void): this;
  /** The counters as Prometheus text 0.0.4 (Content-Type: text/plain; version=0.0.4; charset=utf-8), plus `extra` samples. */
  metrics(extra?: MetricSample[]): string;
  /** The counters as samples (the core's, storage operations and their duration histogram). */
  metricSamples(): MetricSample[];
  /** Pings storage and the cluster, each bounded by `timeoutMs` (default 2000). */
  health(options?: { timeoutMs?: number }): Promise<HealthReport>;
}
