// teleportal/server
import type { ConnectionContext } from "./websocket-server.js";

export interface ServerOptions {
  /** "token": each message is checked against the context's documentAccess (a verified token
   *  payload); "none" (the default without a tokenManager): no per-document checks. */
  permissions?: "none" | "token";
  tokenManager?: unknown;
  /** Larger frames get a NACK "message-too-large". Default 10 MiB. */
  maxMessageSize?: number;
  logger?: (level: string, event: string, fields: Record<string, unknown>) => void;
}

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
  close(): Promise<void>;
}
