// Types for teleportal/token (Teleportal-compatible token API on the C++/wasm core).

export type Permission = "admin" | "write" | "read" | "comment" | "suggest";

export type DocumentAccess = {
  /** Exact name, "*", "prefix/*", a glob where only "*" is special, or "!pattern" to exclude. */
  pattern: string;
  permissions: Permission[];
};

export type TokenPayload = {
  userId: string;
  room: string;
  documentAccess: DocumentAccess[];
  exp?: number;
  iat?: number;
  iss?: string;
  aud?: string;
  /** Every other claim of the token is kept as well. */
  [claim: string]: unknown;
};

export type TokenOptions = {
  /** A string is used as its UTF-8 bytes; bytes are used as they are. Must not be empty. */
  secret: string | Uint8Array;
  /** Lifetime of minted tokens in seconds (default 3600). */
  expiresIn?: number;
  /** Minted `iss` and the issuer verifyToken requires (default "teleportal"). */
  issuer?: string;
  /** Minted `aud` and the audience verifyToken requires (default "teleportal"). */
  audience?: string;
  /**
   * Restores the reference's fail-open: a payload without documentAccess is granted everything
   * by hasDocumentPermission. Default false (denied).
   */
  allowMissingDocumentAccess?: boolean;
};

export type MintOptions = {
  expiresIn?: number;
  issuer?: string;
  audience?: string;
};

export type PermissionOptions = {
  /** See TokenOptions.allowMissingDocumentAccess. */
  allowMissingDocumentAccess?: boolean;
};

/** Stable error codes, in the order verification checks run. */
export type TokenErrorCode =
  | "not_a_string"
  | "invalid_compact_jws"
  | "header_invalid"
  | "crit_invalid"
  | "crit_unrecognized"
  | "crit_missing"
  | "b64_invalid"
  | "alg_invalid"
  | "alg_not_allowed"
  | "payload_not_ascii"
  | "signature_decode"
  | "key_empty"
  | "signature_invalid"
  | "payload_decode"
  | "unencoded_payload"
  | "claims_invalid"
  | "iss_missing"
  | "aud_missing"
  | "iss_invalid"
  | "aud_invalid"
  | "iat_invalid"
  | "nbf_invalid"
  | "nbf_in_future"
  | "exp_invalid"
  | "expired"
  | "internal";

export type TokenVerificationResult =
  | { valid: true; payload: TokenPayload; error: undefined }
  | {
      valid: false;
      payload: undefined;
      /** jose's message, as Teleportal reports it (e.g. '"exp" claim timestamp check failed'). */
      error: string;
      code: TokenErrorCode;
    };

export declare class TokenManager {
  constructor(options: TokenOptions);
  generateToken(
    userId: string,
    room: string,
    documentAccess?: DocumentAccess[],
    options?: MintOptions,
  ): Promise<string>;
  createToken(
    userId: string,
    room: string,
    documentPatterns: Array<{ pattern: string; permissions: Permission[] }>,
    options?: MintOptions,
  ): Promise<string>;
  createToken(
    payload: { userId: string; room: string; documentAccess?: DocumentAccess[] },
    options?: MintOptions,
  ): Promise<string>;
  createAdminToken(userId: string, room: string, options?: MintOptions): Promise<string>;
  /** Never rejects, whatever `token` is. */
  verifyToken(token: unknown): Promise<TokenVerificationResult>;
  hasDocumentPermission(
    payload: Partial<TokenPayload>,
    documentName: string,
    requiredPermission: Permission | string,
    options?: PermissionOptions,
  ): boolean;
  getDocumentPermissions(payload: Partial<TokenPayload>, documentName: string): Permission[];
}

export declare function createTokenManager(options: TokenOptions): TokenManager;

export declare function hasDocumentPermission(
  payload: Partial<TokenPayload>,
  documentName: string,
  requiredPermission: Permission | string,
  options?: PermissionOptions,
): boolean;

export declare function getDocumentPermissions(
  payload: Partial<TokenPayload>,
  documentName: string,
): Permission[];

/** exp <= floor(Date.now() / 1000), consistent with verifyToken. */
export declare function isTokenExpired(payload: Partial<TokenPayload>): boolean;

export declare function extractContextFromToken(payload: Partial<TokenPayload>): {
  userId: string;
  room: string;
};

export declare class DocumentAccessBuilder {
  allow(pattern: string, permissions: Permission[]): this;
  deny(pattern: string): this;
  allowAll(permissions?: Permission[]): this;
  readOnly(pattern: string): this;
  write(pattern: string): this;
  fullAccess(pattern: string): this;
  admin(pattern: string): this;
  commentOnly(pattern: string): this;
  suggestOnly(pattern: string): this;
  ownDocuments(userId: string, permissions?: Permission[]): this;
  denyDocument(documentName: string): this;
  build(): DocumentAccess[];
}
