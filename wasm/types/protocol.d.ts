// teleportal/protocol: the Teleportal wire codec, backed by the C++ core.

/** A value of the lib0 `any` encoding (presence data, RPC payloads). */
export type AnyValue =
  | undefined
  | null
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | AnyValue[]
  | { [key: string]: AnyValue };

export interface UpdateData {
  /** Update-version byte (1 = Y.js V1, 2 = V2; real clients send 2 + a content-encrypted envelope). */
  version: number;
  data: Uint8Array;
}

export type DocPayload =
  | { type: "sync-step-1"; sv: Uint8Array }
  | { type: "sync-step-2"; update: UpdateData }
  | { type: "update"; update: UpdateData }
  | { type: "sync-done" }
  | { type: "auth-message"; permission: "denied" | "allowed"; reason: string };

export type AwarenessPayload =
  | { type: "awareness-update"; update: Uint8Array }
  | { type: "awareness-request" };

export interface AckPayload {
  type: "ack";
  messageId: string;
  /** Retryable NACK, milliseconds. */
  retryAfter?: number;
  /** Permanent NACK. */
  error?: string;
}

export interface PresenceClient {
  awarenessId: number;
  clientId: string;
  userId: string;
  data: { [key: string]: AnyValue } | Uint8Array;
}

export type PresencePayload =
  | { type: "presence-announce"; awarenessId: number }
  | { type: "presence-unannounce"; awarenessId: number }
  | ({ type: "presence-join" } & PresenceClient)
  | ({ type: "presence-leave" } & PresenceClient)
  | { type: "presence-heartbeat"; clients: PresenceClient[] };

export type RpcPayload =
  | { type: "success"; payload: AnyValue }
  | { type: "error"; statusCode: number; details: string; payload: AnyValue };

interface MessageBase {
  encrypted: boolean;
  /** 16 hex chars; over the received bytes (acks: over their canonical encoding). */
  id: string;
}

export type DocMessage = MessageBase & { type: "doc"; document: string; payload: DocPayload };
export type AwarenessMessage = MessageBase & { type: "awareness"; document: string; payload: AwarenessPayload };
export type AckMessage = MessageBase & { type: "ack"; document: null; payload: AckPayload };
export type PresenceMessage = MessageBase & { type: "presence"; document: string; payload: PresencePayload };
export type RpcMessage = MessageBase & {
  type: "rpc";
  document: string;
  payload: RpcPayload;
  rpcMethod: string;
  requestType: "request" | "stream" | "response";
  /** Required for stream and response. */
  originalRequestId: string | null;
};

export type DecodedMessage = DocMessage | AwarenessMessage | AckMessage | PresenceMessage | RpcMessage;

/** What encodeMessage accepts: a decoded message, `id` optional. */
export type MessageInput = DecodedMessage extends infer M
  ? M extends DecodedMessage
    ? Omit<M, "id"> & { id?: string }
    : never
  : never;

/**
 * Errors thrown by this module: `message` is the reference's top-level message
 * (e.g. "Failed to decode update message: Invalid version"), `cause` the inner errors,
 * `code` a stable code (bad_magic, bad_version, truncated, integer_out_of_range,
 * length_out_of_range, invalid_utf8, unknown_message_type, unknown_subtype,
 * bad_presence_subtype, bad_presence_data, bad_rpc_request_type, bad_any_tag, nesting_too_deep,
 * invalid_message, unsupported_envelope_version, non_canonical_envelope,
 * missing_original_request_id, invalid_message_shape).
 */
export interface ProtocolError extends Error {
  code: string;
  cause?: ProtocolError;
}

export declare function decodeMessage(bytes: Uint8Array | ArrayBuffer | ArrayBufferView): DecodedMessage;
export declare function encodeMessage(message: MessageInput): Uint8Array;
export declare function getMessageId(bytes: Uint8Array | ArrayBuffer | ArrayBufferView): string;

/** lib0's `any` encoding of one value (RPC payloads): strings, numbers, booleans, null, undefined, bigints, Uint8Arrays, arrays, plain objects. */
export declare function encodeAny(value: unknown): Uint8Array;
/** Decodes one lib0 `any` value; trailing bytes are ignored. */
export declare function decodeAny(bytes: Uint8Array | ArrayBuffer | ArrayBufferView): unknown;

export declare function isPingMessage(bytes: Uint8Array): boolean;
export declare function isPongMessage(bytes: Uint8Array): boolean;
export declare function isBinaryMessage(bytes: Uint8Array): boolean;
export declare function encodePingMessage(): Uint8Array;
export declare function encodePongMessage(): Uint8Array;

export declare function encodeMessageArray(messages: Array<Uint8Array | MessageInput | { encoded: Uint8Array }>): Uint8Array;
export declare function decodeMessageArray(bytes: Uint8Array | ArrayBuffer | ArrayBufferView): DecodedMessage[];

export declare function encodePubSubMessage(message: Uint8Array, sourceId: string): Uint8Array;
export declare function decodePubSubMessage(bytes: Uint8Array | ArrayBuffer | ArrayBufferView): {
  sourceId: string;
  message: Uint8Array;
};

export interface SidecarCompaction {
  sidecar: Uint8Array;
  index: Array<{ clientId: number; minClock: number; maxClock: number }>;
  hash: Uint8Array;
  sourceHashes: Uint8Array[];
}

export interface ContentEncryptedPayload {
  wireVersion: number;
  structureUpdate: Uint8Array;
  encryptedSidecars: Uint8Array[];
  compaction: SidecarCompaction | undefined;
}

export declare function decodeContentEncryptedPayload(
  bytes: Uint8Array | ArrayBuffer | ArrayBufferView,
  options?: { strict?: boolean },
): ContentEncryptedPayload;
export declare function encodeContentEncryptedPayload(payload: {
  wireVersion?: number;
  structureUpdate: Uint8Array;
  encryptedSidecars?: Uint8Array[];
  compaction?: SidecarCompaction;
}): Uint8Array;
export declare function getEmptyContentEncryptedPayload(): Uint8Array;
