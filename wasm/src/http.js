// teleportal/http: the HTTP/SSE transport (extensions spec section 4). GET /sse opens a stream
// that is one more client of the Server (a Hub peer, like a WebSocket); POST /sse carries that
// client's frames; POST /message is a one-shot client. The core splits bodies into frames and says
// which frame a server frame answers (wasm/bind/bind_server.cpp: tp_http_body, tp_http_sent);
// this file only routes requests, moves bytes and waits.
import { Hub, upgradeTokens, verifyUpgradeRequest } from "./connections.js";
import { decodePubSubMessage, encodeMessageArray, encodePubSubMessage } from "./protocol.js";
import { httpBody, sentFrames } from "./server-core.js";

const encoder = new TextEncoder();

const POWERED_BY = "teleportal";
const SSE_HEADERS = Object.freeze({
  "content-type": "text/event-stream",
  "cache-control": "private, no-cache, no-store, no-transform, must-revalidate, max-age=0",
  "x-accel-buffering": "no",
  "x-powered-by": POWERED_BY,
});
const JSON_TYPE = "application/json;charset=utf-8";
// A client id goes into SSE text and headers: no line breaks, nothing unbounded.
const CLIENT_ID = /^[\w.:@~+-]{1,128}$/;
const CLIENT_ID_RULE = "1 to 128 characters from A-Z a-z 0-9 _ . : @ ~ + -";
const PING_EVENT = encoder.encode("event:ping\nid:ping\ndata: WUpTcGluZw==\n\n"); // base64("YJSping")

/** Defaults: the reference's 5 s ack wait and ping interval; a body as large as a WebSocket message may be. */
const DEFAULTS = Object.freeze({ ackTimeoutMs: 5000, pingIntervalMs: 5000, maxBodyBytes: 16 * 1024 * 1024 });

function errorText(err) {
  return err instanceof Error ? err.message : String(err);
}

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": JSON_TYPE, "x-powered-by": POWERED_BY, ...headers },
  });
}

// Standard padded base64 (SSE data): edge encoding of bytes the core produced.
const base64 =
  typeof Buffer === "function"
    ? (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString("base64")
    : (u8) => {
        let s = "";
        for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
        return btoa(s);
      };

/**
 * The documents a GET /sse joins at once: every `documents` query value, split on commas, trimmed,
 * empties dropped; a `:plaintext` / `:unencrypted` suffix marks one unencrypted; duplicates
 * collapse, the encrypted entry winning (the reference's getDocumentsFromQueryParams).
 * @returns {{document: string, encrypted: boolean}[]}
 */
export function getDocumentsFromQueryParams(url) {
  const byName = new Map();
  for (const value of new URL(url).searchParams.getAll("documents")) {
    for (const part of value.split(",")) {
      let name = part.trim();
      let encrypted = true;
      const m = /:(plaintext|unencrypted)$/.exec(name);
      if (m) {
        name = name.slice(0, m.index);
        encrypted = false;
      }
      if (name === "") continue;
      byName.set(name, (byName.get(name) ?? false) || encrypted);
    }
  }
  return [...byName].map(([document, encrypted]) => ({ document, encrypted }));
}

// Frames the Server sent to HTTP clients this turn: classified by the core in one call per turn
// (not per frame), then written.
let outgoing = [];
function queueSent(peer, frame) {
  if (outgoing.length === 0) queueMicrotask(flushSent);
  outgoing.push(peer, frame);
}
function flushSent() {
  const batch = outgoing;
  outgoing = [];
  const frames = [];
  for (let i = 1; i < batch.length; i += 2) frames.push(batch[i]);
  const kinds = sentFrames(frames);
  for (let i = 0; i < kinds.length; i++) batch[2 * i].deliver(frames[i], kinds[i]);
}

// One HTTP client of the Server (the Hub's peer): frames out are queued, classified, then written
// (`write`); waiters resolve when the Server answers a posted message id (ack or NACK).
class HttpPeer {
  constructor(id, context) {
    this.id = id;
    this.context = context;
    this.ended = false;
    this.waiters = new Map(); // message id -> resolve functions
    this.buffered = 0;
  }
  send(frame) {
    if (this.ended) return 0;
    this.buffered += frame.length;
    queueSent(this, frame.slice()); // the frame may be a view of wasm memory
    return frame.length || 1;
  }
  bufferedAmount() {
    return this.buffered;
  }
  deliver(frame, kind) {
    this.buffered -= frame.length;
    if (this.ended) return;
    this.write(frame, kind);
    if (kind.answers !== null) this.answered(kind.answers);
  }
  /** Resolves true when the Server answers `messageId`, false after `ms` or when the client ends. */
  waitFor(messageId, ms) {
    return new Promise((resolve) => {
      const done = (ok) => {
        clearTimeout(timer);
        const list = this.waiters.get(messageId);
        list?.delete(done);
        if (list?.size === 0) this.waiters.delete(messageId);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), ms);
      const list = this.waiters.get(messageId);
      if (list) list.add(done);
      else this.waiters.set(messageId, new Set([done]));
    });
  }
  answered(messageId) {
    for (const done of [...(this.waiters.get(messageId) ?? [])]) done(true);
  }
  end() {
    if (this.ended) return;
    this.ended = true;
    for (const list of [...this.waiters.values()]) for (const done of [...list]) done(false);
  }
}

// GET /sse: frames become `message` events on a text/event-stream body.
class SsePeer extends HttpPeer {
  constructor(id, context, onEnd) {
    super(id, context);
    this.onEnd = onEnd;
    // Queued bytes count against the Hub's backpressure limit (a slow reader is closed like a
    // slow WebSocket): desiredSize is minus what waits in the stream.
    this.readable = new ReadableStream(
      {
        start: (controller) => (this.controller = controller),
        cancel: () => this.close(1000, "stream cancelled"), // the client went away
      },
      { highWaterMark: 0, size: (chunk) => chunk.byteLength },
    );
  }
  bufferedAmount() {
    return this.buffered + Math.max(0, -(this.controller.desiredSize ?? 0));
  }
  enqueue(bytes) {
    if (this.ended) return;
    try {
      this.controller.enqueue(bytes);
    } catch {
      this.close(1000, "stream closed");
    }
  }
  write(frame, kind) {
    this.enqueue(encoder.encode(`event:message\nid:${kind.id}\ndata: ${base64(frame)}\n\n`));
  }
  // The Server or the Hub closes the client (token expired, backpressure, shutdown), or the client
  // went away: the stream ends and the Server forgets the client.
  close(code, reason) {
    if (this.ended) return;
    this.end();
    try {
      this.controller.close();
    } catch {
      // already closed or errored
    }
    this.onEnd(code, reason);
  }
}

// POST /message: frames are collected; the response is their message array.
class CollectPeer extends HttpPeer {
  frames = [];
  write(frame) {
    this.frames.push(frame);
  }
  close() {
    this.end();
  }
}

/**
 * @param {import("../types/http").HTTPHandlersOptions} options
 * @returns {(request: Request) => Promise<Response>}
 */
export function getHTTPHandlers(options) {
  const { server } = options;
  if (!server || typeof server.createClient !== "function") throw new TypeError("getHTTPHandlers needs a Server");
  const settings = { ...DEFAULTS, ...pick(options, Object.keys(DEFAULTS)) };
  const hub =
    options.hub ??
    new Hub({
      onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
      onDisconnect: (id) => server.disconnectClient(id),
      logger: options.logger,
      maxBufferedBytes: options.maxBufferedBytes,
    });
  const log = (level, event, fields) => hub.log(level, event, fields);
  const tokens = options.getContext ? null : upgradeTokens(options);
  /** @type {Map<string, SsePeer>} */
  const streams = new Map();

  // Scale-out: a POST may land on another node than its stream. The POST's node forwards the body
  // with the poster's user and room on the stream's channel; the stream's node checks the user,
  // processes and answers on the POST's reply channel. Channel keys hold no "/", so they are
  // never document keys (those always do).
  const cluster = options.cluster ?? null;
  const clientKey = (id) => `http-client:${id}`;
  const replyKey = (id) => `http-reply:${id}`;
  /** @type {Map<string, (answer: any) => void>} */
  const replies = new Map();
  cluster?.onMessage((key, message) => {
    if (!key.startsWith("http-")) return;
    let envelope;
    let meta;
    try {
      envelope = decodePubSubMessage(message);
      meta = JSON.parse(envelope.sourceId);
    } catch {
      return;
    }
    if (key.startsWith("http-reply:")) return replies.get(key.slice("http-reply:".length))?.(meta);
    const peer = streams.get(key.slice("http-client:".length));
    if (peer && !peer.ended && typeof meta?.reply === "string") void remotePost(peer, meta, envelope.message);
  });

  async function remotePost(peer, meta, body) {
    const answer = (result) => quietly(() => cluster.publish(replyKey(meta.reply), encodePubSubMessage(new Uint8Array(0), JSON.stringify(result))));
    if (!sameUser(peer.context, meta)) return answer({ status: 403 });
    const decoded = httpBody(body);
    if (decoded.error !== undefined) return answer({ status: 400, error: decoded.error });
    const missing = await deliverAll(peer, decoded.frames);
    return answer(missing === null ? { status: 200 } : { status: 504, missing });
  }

  // The answer of the node holding stream `id`, or null when none answered in time.
  async function forward(id, context, body) {
    const postId = hub.newId();
    let timer;
    const answered = new Promise((resolve) => {
      replies.set(postId, resolve);
      timer = setTimeout(() => resolve(null), settings.ackTimeoutMs + 2000);
    });
    try {
      await cluster.subscribe(replyKey(postId));
      const meta = { userId: context.userId ?? null, room: context.room ?? null, reply: postId };
      await cluster.publish(clientKey(id), encodePubSubMessage(body, JSON.stringify(meta)));
      return await answered;
    } catch (err) {
      log("error", "http_cluster_forward_failed", { client_id: id, error: errorText(err) });
      return null;
    } finally {
      clearTimeout(timer);
      replies.delete(postId);
      quietly(() => cluster.unsubscribe(replyKey(postId)));
    }
  }

  // The context of a request: the built-in token check (Authorization: Bearer or ?token=), or the
  // application's getContext. A refusal is a Response (returned, never thrown).
  async function authenticate(request) {
    let context;
    if (options.getContext) {
      try {
        context = await options.getContext(request);
      } catch (err) {
        if (err instanceof Response) return { response: err };
        log("warn", "http_auth", { status_code: 401, error: errorText(err) });
        return { response: new Response("Unauthorized", { status: 401, headers: { "x-powered-by": POWERED_BY } }) };
      }
      if (context instanceof Response) return { response: context };
      if (context === null || typeof context !== "object") context = {};
    } else {
      const verdict = verifyUpgradeRequest(tokens, request);
      if (verdict.response) {
        log("info", "http_auth", { status_code: verdict.response.status, error: verdict.error });
        return { response: verdict.response };
      }
      context = verdict.context;
    }
    const refused = options.acceptContext?.(context, request);
    if (refused instanceof Response) return { response: refused };
    return { context };
  }

  function clientIdOf(request, url) {
    return request.headers.get("x-teleportal-client-id") || url.searchParams.get("client-id") || "";
  }

  async function openStream(request, url) {
    const auth = await authenticate(request);
    if (auth.response) return auth.response;
    const id = clientIdOf(request, url) || hub.newId();
    if (!CLIENT_ID.test(id)) return json(400, { error: "Invalid client ID", message: CLIENT_ID_RULE });
    if (streams.has(id) || server.getClient(id)) {
      log("warn", "http_sse_reader", { status_code: 409, client_id: id, error: "client id in use" });
      return json(409, { error: "Client ID already in use", message: `A client with id ${id} is connected` });
    }
    let pings = null;
    const peer = new SsePeer(id, auth.context, () => {
      clearInterval(pings);
      if (streams.get(id) === peer) streams.delete(id);
      if (cluster) quietly(() => cluster.unsubscribe(clientKey(id)));
      hub.close(id);
    });
    streams.set(id, peer);
    // POSTs landing on other nodes reach this stream through its channel.
    if (cluster) await Promise.resolve(quietly(() => cluster.subscribe(clientKey(id))));
    peer.enqueue(encoder.encode(`event:client-id\nid:client-id\ndata: ${id}\n\n`));
    pings = setInterval(() => peer.enqueue(PING_EVENT), settings.pingIntervalMs);
    request.signal?.addEventListener("abort", () => peer.close(1000, "abort"), { once: true });
    await hub.open(peer);
    if (!peer.ended) {
      const documents = await (options.getInitialDocuments ?? ((r) => getDocumentsFromQueryParams(r.url)))(request);
      if (documents?.length) server.rejoin(id, documents.map((d) => (typeof d === "string" ? d : d.document)));
    }
    return new Response(peer.readable, { status: 200, headers: { ...SSE_HEADERS, "x-teleportal-client-id": id } });
  }

  // Frames in, each non-ack frame's answer awaited; false with the first id left unanswered.
  async function deliverAll(peer, frames) {
    const waits = [];
    for (const f of frames) if (f.needsAnswer) waits.push(peer.waitFor(f.id, settings.ackTimeoutMs).then((ok) => ok || f.id));
    for (const f of frames) hub.message(peer.id, f.frame);
    const results = await Promise.all(waits);
    return results.find((r) => r !== true) ?? null;
  }

  async function readFrames(request) {
    const body = await readBody(request, settings.maxBodyBytes);
    if (body.tooLarge) {
      return { response: json(400, { error: "Request body too large", message: `${body.tooLarge} > ${settings.maxBodyBytes} bytes` }) };
    }
    const decoded = httpBody(body.bytes);
    if (decoded.error !== undefined) return { response: json(400, { error: "Invalid message array", message: decoded.error }) };
    return { frames: decoded.frames, body: body.bytes };
  }

  async function postStream(request, url) {
    const auth = await authenticate(request);
    if (auth.response) return auth.response;
    const id = clientIdOf(request, url);
    const fail = (status, body, headers) => {
      log(status >= 500 ? "error" : "warn", "http_sse_writer", { method: "POST", status_code: status, client_id: id, error: body.message ?? body.error });
      return json(status, body, headers);
    };
    if (!id) return fail(400, { error: "No client ID provided" });
    if (!CLIENT_ID.test(id)) return fail(400, { error: "Invalid client ID", message: CLIENT_ID_RULE });
    const headers = { "x-teleportal-client-id": id };
    const peer = streams.get(id);
    // Frames are processed as the stream's client: only its own user may send them (spec 5 item 1).
    if (peer && !sameUser(peer.context, auth.context)) {
      return fail(403, { error: "Forbidden", message: "The token's user or room is not the stream's" }, headers);
    }
    const read = await readFrames(request);
    if (read.response) return read.response;
    if ((!peer || peer.ended) && cluster) {
      const answer = await forward(id, auth.context, read.body);
      if (answer?.status === 200) return json(200, { message: "ok" }, headers);
      if (answer?.status === 403) return fail(403, { error: "Forbidden", message: "The token's user or room is not the stream's" }, headers);
      const missing = answer?.missing ?? read.frames.find((f) => f.needsAnswer)?.id;
      if (missing === undefined) return json(200, { message: "ok" }, headers);
      return fail(504, { error: "Failed to receive acknowledgment", message: `ACK timeout for message ${missing}` }, headers);
    }
    if (!peer || peer.ended) {
      const first = read.frames.find((f) => f.needsAnswer);
      if (first) return fail(504, { error: "Failed to receive acknowledgment", message: `ACK timeout for message ${first.id}` }, headers);
      return json(200, { message: "ok" }, headers);
    }
    const missing = await deliverAll(peer, read.frames);
    if (missing !== null) return fail(504, { error: "Failed to receive acknowledgment", message: `ACK timeout for message ${missing}` }, headers);
    return json(200, { message: "ok" }, headers);
  }

  async function postMessage(request) {
    const auth = await authenticate(request);
    if (auth.response) return auth.response;
    const read = await readFrames(request);
    if (read.response) return read.response;
    const id = hub.newId();
    const peer = new CollectPeer(id, auth.context);
    await hub.open(peer);
    try {
      await deliverAll(peer, read.frames);
      await new Promise((r) => queueMicrotask(r)); // frames sent in the answering turn are written
    } finally {
      await hub.close(id);
      peer.end();
    }
    return new Response(encodeMessageArray(peer.frames), {
      status: 200,
      headers: { "content-type": "application/octet-stream", "x-powered-by": POWERED_BY, "x-teleportal-client-id": id },
    });
  }

  async function route(request, url) {
    try {
      if (url.pathname === "/sse" && request.method === "GET") return await openStream(request, url);
      if (url.pathname === "/sse" && request.method === "POST") return await postStream(request, url);
      if (url.pathname === "/message" && request.method === "POST") return await postMessage(request);
    } catch (err) {
      log("error", "http_request_failed", { method: request.method, path: url.pathname, error: errorText(err) });
      return json(500, { error: "Internal Server Error" });
    }
    return null;
  }

  const handler = async function handleHTTP(request) {
    const url = new URL(request.url);
    const response = await route(request, url);
    if (response === null) return options.fetch ? options.fetch(request) : new Response("Not Found", { status: 404 });
    // A POST refused before its body was read (401, 403, a bad client id): the body is read and
    // dropped, up to the body limit. Answered unread, the connection cannot be reused, and a
    // client that sends its next request on it sees that request fail (workerd, undici).
    if (request.body && !request.bodyUsed) await readBody(request, settings.maxBodyBytes).catch(() => {});
    return response;
  };
  handler.hub = hub;
  handler.streams = streams;
  /** node:http: serves an IncomingMessage / ServerResponse pair (streams the SSE body). */
  handler.node = async (req, res) => (await import("../dist/hosts/node.js")).serveFetch(req, res, handler);
  /** Ends every open stream (their clients leave the Server). */
  handler.close = async () => {
    const open = [...streams.values()];
    for (const peer of open) peer.close(1001, "server shutting down");
    await Promise.all(open.map((peer) => hub.close(peer.id)));
  };
  return handler;
}

/** Whether a request is one getHTTPHandlers answers (GET/POST /sse, POST /message). */
export function isHTTPTransportRequest(request) {
  const { pathname } = new URL(request.url);
  return (pathname === "/sse" && (request.method === "GET" || request.method === "POST")) || (pathname === "/message" && request.method === "POST");
}

// The POST's user must be the stream's: same userId and same room.
function sameUser(stream, post) {
  return (stream?.userId ?? null) === (post?.userId ?? null) && (stream?.room ?? null) === (post?.room ?? null);
}

// A cluster call whose failure is logged by the cluster itself: never an unhandled rejection.
function quietly(call) {
  try {
    return Promise.resolve(call()).catch(() => {});
  } catch {
    return undefined;
  }
}

function pick(o, keys) {
  const out = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

// The whole body, stopping (unread) once it is larger than `limit`.
async function readBody(request, limit) {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) return { tooLarge: declared };
  if (!request.body) return { bytes: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      reader.cancel().catch(() => {});
      return { tooLarge: total };
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return { bytes: chunks[0] };
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { bytes };
}
