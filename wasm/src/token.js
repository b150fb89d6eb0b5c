// teleportal/token: Teleportal's token API (createTokenManager, TokenManager,
// DocumentAccessBuilder, isTokenExpired, extractContextFromToken) on the C++ core.
// Every decision (JWS checks, claims, patterns, expiry) is made in C++; this file converts
// arguments, reads the clock (Date.now()) and rebuilds Teleportal's result shapes.
// Runtime-neutral: no Node-only imports (works in Node, Bun and workerd).
import { core } from "./core.js";
import { authenticateUpgrade } from "./server-core.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const nowSeconds = () => Date.now() / 1000;

function secretBytes(secret) {
  if (typeof secret === "string") return encoder.encode(secret);
  if (secret instanceof Uint8Array) return secret;
  if (secret instanceof ArrayBuffer) return new Uint8Array(secret);
  if (ArrayBuffer.isView(secret)) {
    return new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength);
  }
  throw new TypeError("secret must be a string or a Uint8Array");
}

// "0code\nmessage" -> [code, message]
function splitFailure(r) {
  const nl = r.indexOf("\n");
  return [r.slice(1, nl), r.slice(nl + 1)];
}

function decodeVerify(r) {
  if (r.charCodeAt(0) === 49 /* "1" */) {
    return { valid: true, payload: JSON.parse(r.slice(1)), error: undefined };
  }
  const [code, error] = splitFailure(r);
  return { valid: false, payload: undefined, error, code };
}

// documentAccess as JSON text for the core; "null" when absent. Values JSON.stringify cannot
// write (BigInt, cycles) make the list unusable: null is returned and callers deny.
function accessText(payload) {
  try {
    const text = JSON.stringify(payload?.documentAccess);
    return text === undefined ? "null" : text;
  } catch {
    return null;
  }
}

const registry =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry((verifier) => verifier.delete())
    : null;

export class TokenManager {
  #secret;
  #expiresIn;
  #issuer;
  #audience;
  #allowMissing;
  #verifier = null;
  #address = 0; // the verifier's address in wasm memory (for the plain export)
  #buffer = 0; // address of the verifier's buffer in wasm memory
  #capacity = 0;
  #view = null; // HEAPU8 over the buffer; empty once memory growth detached it

  /**
   * @param {import("../types/token").TokenOptions} options
   */
  constructor(options) {
    if (!options || typeof options !== "object") throw new TypeError("options are required");
    this.#secret = secretBytes(options.secret).slice();
    this.#expiresIn = options.expiresIn ?? 3600;
    this.#issuer = String(options.issuer ?? "teleportal");
    this.#audience = String(options.audience ?? "teleportal");
    this.#allowMissing = options.allowMissingDocumentAccess === true;
  }

  /**
   * Internal to this package (getWebsocketHandlers' built-in check): extracts the token of an
   * upgrade request (?token= or Authorization: Bearer) and verifies it in one core call. The secret
   * never leaves the manager.
   */
  [Symbol.for("teleportal.token.authenticateUpgrade")](url, authorization) {
    return authenticateUpgrade(url, authorization, this.#secret, true, this.#issuer, this.#audience, nowSeconds());
  }

  /**
   * Internal to this package: what a Server needs to verify tokens itself (a `token` in a
   * connection context, an in-band refresh). The secret stays inside the package.
   */
  [Symbol.for("teleportal.token.serverConfig")]() {
    return { secret: this.#secret, issuer: this.#issuer, audience: this.#audience, allowMissingDocumentAccess: this.#allowMissing };
  }

  #getVerifier() {
    if (this.#verifier === null) {
      this.#verifier = new core.TokenVerifier(this.#secret, this.#issuer, this.#audience);
      this.#address = this.#verifier.address();
      registry?.register(this, this.#verifier);
    }
    return this.#verifier;
  }

  // One verification: the token is encoded straight into wasm memory and the result read back
  // from it (no per-character conversions, no embind dispatch; see wasm/bind/bind_token.cpp).
  #verify(token) {
    const v = this.#getVerifier();
    const need = token.length * 3 + 256;
    if (need > this.#capacity) {
      this.#capacity = Math.max(need, 2048);
      this.#buffer = v.reserve(this.#capacity);
      this.#view = null;
    }
    let view = this.#view;
    if (view === null || view.length === 0) {
      view = this.#view = core.HEAPU8.subarray(this.#buffer, this.#buffer + this.#capacity);
    }
    const { written } = encoder.encodeInto(token, view);
    const n = core._tp_token_verify_in_place(this.#address, written, nowSeconds());
    // The call may have grown (and so detached) the memory.
    if (view.length === 0) view = this.#view = core.HEAPU8.subarray(this.#buffer, this.#buffer + this.#capacity);
    if (view[0] === 49 /* "1" */) {
      return { valid: true, payload: JSON.parse(decoder.decode(view.subarray(1, n))), error: undefined };
    }
    return decodeVerify(decoder.decode(view.subarray(0, n)));
  }

  #mint(userId, room, documentAccess, options) {
    const expiresIn = options?.expiresIn ?? this.#expiresIn;
    if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn)) {
      throw new TypeError("expiresIn must be a finite number of seconds");
    }
    const access = JSON.stringify(documentAccess ?? []);
    const r = core.tokenMint(
      this.#secret,
      String(userId),
      String(room),
      access === undefined ? "[]" : access,
      expiresIn,
      String(options?.issuer ?? this.#issuer),
      String(options?.audience ?? this.#audience),
      nowSeconds(),
    );
    if (r.charCodeAt(0) === 49) return r.slice(1);
    const [code, message] = splitFailure(r);
    const error = new Error(message);
    error.code = code;
    throw error;
  }

  /** Mints a token: {userId, room, documentAccess, exp, iat, iss, aud}, HS256. */
  async generateToken(userId, room, documentAccess = [], options) {
    return this.#mint(userId, room, documentAccess, options);
  }

  /**
   * Mints a token from `(userId, room, documentPatterns, options?)` like Teleportal, or from a
   * payload-like object `({userId, room, documentAccess}, options?)`.
   */
  async createToken(userId, room, documentPatterns, options) {
    if (userId !== null && typeof userId === "object") {
      const p = userId;
      return this.#mint(p.userId, p.room, p.documentAccess ?? [], room);
    }
    const access = (documentPatterns ?? []).map(({ pattern, permissions }) => ({
      pattern,
      permissions,
    }));
    return this.#mint(userId, room, access, options);
  }

  /** A token whose documentAccess is [{pattern: "*", permissions: ["admin"]}]. */
  async createAdminToken(userId, room, options) {
    return this.#mint(userId, room, [{ pattern: "*", permissions: ["admin"] }], options);
  }

  /** Verifies a token; never rejects. Errors carry jose's message and a stable `code`. */
  async verifyToken(token) {
    try {
      if (token instanceof Uint8Array) token = decoder.decode(token);
      if (typeof token !== "string") return decodeVerify(core.tokenNotAString());
      return this.#verify(token);
    } catch (e) {
      return { valid: false, payload: undefined, error: String(e?.message ?? e), code: "internal" };
    }
  }

  hasDocumentPermission(payload, documentName, requiredPermission, options) {
    const allowMissing = options?.allowMissingDocumentAccess ?? this.#allowMissing;
    return hasDocumentPermission(payload, documentName, requiredPermission, {
      allowMissingDocumentAccess: allowMissing,
    });
  }

  getDocumentPermissions(payload, documentName) {
    return getDocumentPermissions(payload, documentName);
  }
}

/** Teleportal's factory. */
export function createTokenManager(options) {
  return new TokenManager(options);
}

/**
 * True when the token grants `requiredPermission` on `documentName`. A payload without
 * documentAccess is denied unless `options.allowMissingDocumentAccess` (the reference allows).
 */
export function hasDocumentPermission(payload, documentName, requiredPermission, options) {
  const text = accessText(payload);
  if (text === null) return false;
  return core.tokenHasPermission(
    text,
    String(documentName),
    String(requiredPermission),
    options?.allowMissingDocumentAccess === true,
  );
}

/** The de-duplicated permissions the token grants on `documentName` ([] when excluded). */
export function getDocumentPermissions(payload, documentName) {
  const text = accessText(payload);
  if (text === null) return [];
  return JSON.parse(core.tokenGetPermissions(text, String(documentName)));
}

/** Expired when `exp` <= now (seconds, floored), like verifyToken; see README for deviations. */
export function isTokenExpired(payload) {
  const exp = payload?.exp;
  const kind = exp === undefined ? 0 : typeof exp === "number" ? 1 : 2;
  return core.tokenIsExpired(kind, kind === 1 ? exp : 0, nowSeconds());
}

/** {userId, room} of a payload. */
export function extractContextFromToken(payload) {
  return { userId: payload?.userId, room: payload?.room };
}

const ALL = () => ["read", "write", "comment", "suggest", "admin"];

/** Fluent builder of documentAccess lists; each call appends one entry. */
export class DocumentAccessBuilder {
  #list = [];
  allow(pattern, permissions) {
    this.#list.push({ pattern, permissions });
    return this;
  }
  deny(pattern) {
    return this.allow(`!${pattern}`, ALL());
  }
  allowAll(permissions = ["read", "write", "comment", "suggest"]) {
    return this.allow("*", permissions);
  }
  readOnly(pattern) {
    return this.allow(pattern, ["read"]);
  }
  write(pattern) {
    return this.allow(pattern, ["read", "write"]);
  }
  fullAccess(pattern) {
    return this.allow(pattern, ["read", "write", "comment", "suggest"]);
  }
  admin(pattern) {
    return this.allow(pattern, ["admin"]);
  }
  commentOnly(pattern) {
    return this.allow(pattern, ["read", "comment"]);
  }
  suggestOnly(pattern) {
    return this.allow(pattern, ["read", "comment", "suggest"]);
  }
  ownDocuments(userId, permissions = ALL()) {
    return this.allow(`${userId}/*`, permissions);
  }
  denyDocument(documentName) {
    return this.deny(documentName);
  }
  build() {
    return this.#list;
  }
}
