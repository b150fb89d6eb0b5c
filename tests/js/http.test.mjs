// teleportal/http against the `http` vectors (tests/vectors/extensions.json): requests are fetch-API
// Requests handed straight to the handler, as the reference generator did. Deviations from the
// reference are tested as such (README "Deliberate differences").
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { getHTTPHandlers, getDocumentsFromQueryParams } from "teleportal/http";
import { Server } from "teleportal/server";
import { MemoryDocumentStorage } from "teleportal/storage";
import { createTokenManager } from "teleportal/token";
import { decodeMessageArray, encodeMessageArray, decodeMessage } from "teleportal/protocol";

const vectors = JSON.parse(readFileSync(new URL("../vectors/extensions.json", import.meta.url), "utf8")).http;
const hex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b) => Buffer.from(b).toString("hex");
const step = (label) => vectors.steps.find((s) => s.label.startsWith(label));

function request(r, { body, headers = {} } = {}) {
  return new Request(r.url, { method: r.method, headers: { ...r.headers, ...headers }, body: body ?? (r.bodyHex !== undefined ? hex(r.bodyHex) : undefined) });
}

/** Reads an SSE body as text chunks; `until(pred)` waits for the text so far to satisfy pred. */
function sseReader(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const state = { text: "", ended: false, waiters: [] };
  (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true }));
      if (done) break;
      state.text += decoder.decode(value, { stream: true });
      state.waiters = state.waiters.filter((w) => !w());
    }
    state.ended = true;
    state.waiters = state.waiters.filter((w) => !w());
  })();
  state.until = (pred, what = "events", ms = 5000) =>
    new Promise((resolve, reject) => {
      const check = () => (pred(state.text, state.ended) ? (clearTimeout(timer), resolve(state.text), true) : false);
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(state.text)}`)), ms);
      if (!check()) state.waiters.push(check);
    });
  state.cancel = () => reader.cancel();
  return state;
}

// The reference generator's getContext: {userId: ?user, room: "room-1"}; no token claims, so the
// Server runs without permission checks (as the reference server does).
function vectorSetup(extra = {}) {
  const server = new Server({ storage: new MemoryDocumentStorage(), permissions: "none", logger: () => {} });
  const handler = getHTTPHandlers({
    server,
    getContext: (req) => ({ userId: new URL(req.url).searchParams.get("user"), room: "room-1" }),
    logger: () => {},
    ...extra,
  });
  return { server, handler };
}

const sseEvents = (text) => text.split("\n\n").filter(Boolean).map((e) => e + "\n\n");

test("http vectors: GET /sse, the client sink's POST, replies on the stream in the reference's order and bytes", async () => {
  const { server, handler } = vectorSetup();
  const open = step("GET /sse (no client id");
  const res = await handler(request(open.request));
  assert.equal(res.status, 200);
  const id = res.headers.get("x-teleportal-client-id");
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  for (const [k, v] of Object.entries(open.response.headers)) {
    if (k !== "x-teleportal-client-id") assert.equal(res.headers.get(k), v, k);
  }
  const sse = sseReader(res);
  const expected = vectors.sseStream.map((c) => c.text.replace(vectors.clientId, id));
  await sse.until((t) => t === expected[0], "client-id event");
  assert.equal(server.clientCount, 1);

  // The client sink's batch (sync-step-1 + update): 200 once both are acknowledged.
  const post = step("POST /sse (client sink batch");
  const reply = await handler(request(post.request, { headers: { "x-teleportal-client-id": id } }));
  assert.equal(reply.status, 200);
  assert.equal(await reply.text(), post.response.body);
  assert.equal(reply.headers.get("content-type"), post.response.headers["content-type"]);
  assert.equal(reply.headers.get("x-powered-by"), "teleportal");
  assert.equal(reply.headers.get("x-teleportal-client-id"), id);
  // sync-step-2, sync-step-1, ack of the sync-step-1, ack of the update: the vector's 4 events.
  const text = await sse.until((t) => sseEvents(t).length >= 5, "replies");
  assert.deepEqual(sseEvents(text).slice(0, 5), expected.slice(0, 5));

  // An rpc from the stream's own user: answered on the stream (our core has no RPC handlers:
  // 501), acknowledged with the vector's ack event.
  const rpc = step("POST /sse with an rpc");
  const own = new Request(`http://x/sse?user=alice&client-id=${id}`, { method: "POST", body: hex(rpc.request.bodyHex) });
  const ok = await handler(own);
  assert.equal(ok.status, 200);
  await sse.until((t) => t.includes(expected[6]), "rpc ack event");
  const rpcReply = sseEvents(sse.text).find((e) => e.startsWith("event:message") && !e.includes(expected[6]) && !expected.includes(e));
  const m = decodeMessage(Buffer.from(rpcReply.split("data: ")[1].trim(), "base64"));
  assert.equal(m.type, "rpc");
  assert.equal(m.payload.statusCode, 501);

  // Abort of the GET: the stream ends and the client leaves the Server.
  sse.cancel();
  await eventually(() => server.clientCount === 0, "client disconnected");
  await server.close();
});

test("http vectors: deviation (spec 5 item 1): a POST whose user is not the stream's is refused with 403, nothing is processed", async () => {
  const { server, handler } = vectorSetup();
  const res = await handler(new Request("http://x/sse?user=alice&client-id=alice-stream"));
  const sse = sseReader(res);
  await sse.until((t) => t.includes("event:client-id"));
  const rpc = step("POST /sse with an rpc");
  // The reference serves mallory's rpc as alice ("userId":"alice" in the whoami answer).
  const mallory = await handler(new Request("http://x/sse?user=mallory&client-id=alice-stream", { method: "POST", body: hex(rpc.request.bodyHex) }));
  assert.equal(mallory.status, 403);
  assert.equal(mallory.headers.get("content-type"), "application/json;charset=utf-8");
  assert.deepEqual(await mallory.json(), { error: "Forbidden", message: "The token's user or room is not the stream's" });
  // Same user, other room: refused too.
  const otherRoom = getHTTPHandlers({ server, getContext: () => ({ userId: "alice", room: "room-2" }), logger: () => {} });
  handler.streams.forEach((peer, k) => otherRoom.streams.set(k, peer));
  assert.equal((await otherRoom(new Request("http://x/sse?client-id=alice-stream", { method: "POST", body: hex(rpc.request.bodyHex) }))).status, 403);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(sseEvents(sse.text).filter((e) => e.startsWith("event:message")), [], "nothing reached alice's stream");
  // alice's own POST is processed.
  const alice = await handler(new Request("http://x/sse?user=alice&client-id=alice-stream", { method: "POST", body: hex(rpc.request.bodyHex) }));
  assert.equal(alice.status, 200);
  await sse.until((t) => t.includes("id:e13b696f99290fad"), "ack of alice's rpc");
  sse.cancel();
  await server.close();
});

test("http vectors: 400 without a client id, 400 for an undecodable body (deviation: the reference rejects), 404s", async () => {
  const { server, handler } = vectorSetup();
  const none = step("POST /sse without x-teleportal-client-id");
  const res = await handler(request(none.request));
  assert.equal(res.status, 400);
  assert.equal(await res.text(), none.response.body);
  for (const [k, v] of Object.entries(none.response.headers)) assert.equal(res.headers.get(k), v, k);

  const open = await handler(new Request("http://x/sse?user=alice&client-id=c1"));
  const sse = sseReader(open);
  const bad = step("POST /sse whose body holds a YJSping frame");
  const undecodable = await handler(request(bad.request, { headers: { "x-teleportal-client-id": "c1" } }));
  assert.equal(undecodable.status, 400);
  assert.deepEqual(await undecodable.json(), { error: "Invalid message array", message: bad.threw[0] });
  const garbage = await handler(new Request("http://x/sse?user=alice&client-id=c1", { method: "POST", body: hex("0d594a53") }));
  assert.equal(garbage.status, 400);
  assert.equal((await garbage.json()).error, "Invalid message array");
  const notYjs = await handler(new Request("http://x/sse?user=alice&client-id=c1", { method: "POST", body: hex("03616263") }));
  assert.deepEqual(await notYjs.json(), { error: "Invalid message array", message: "Invalid message" });
  // An empty body is an empty array: nothing to wait for.
  assert.equal((await handler(new Request("http://x/sse?user=alice&client-id=c1", { method: "POST", body: new Uint8Array(0) }))).status, 200);

  // A client id goes into the SSE text: one with a line break (event injection) is refused.
  const injected = await handler(new Request("http://x/sse?user=alice&client-id=a%0Aevent:x"));
  assert.equal(injected.status, 400);
  assert.equal((await injected.json()).error, "Invalid client ID");

  for (const label of ["GET /nope", "PUT /sse", "GET /sse/"]) {
    const s = step(label);
    const r = await handler(request(s.request));
    assert.equal(r.status, 404, label);
    assert.equal(await r.text(), "Not Found");
  }
  const fallback = getHTTPHandlers({ server, getContext: () => ({}), fetch: () => new Response("mine", { status: 418 }) });
  assert.equal((await fallback(new Request("http://x/other"))).status, 418);
  sse.cancel();
  await server.close();
});

test("http vectors: 504 body; immediately when no stream has the id, after ackTimeoutMs when the Server never answers", async () => {
  const nobody = step("POST /sse for a client id with no open SSE stream");
  const { server, handler } = vectorSetup();
  const res = await handler(request(nobody.request));
  assert.equal(res.status, 504);
  assert.equal(await res.text(), nobody.response.body);
  for (const [k, v] of Object.entries(nobody.response.headers)) assert.equal(res.headers.get(k), v, k);
  await server.close();

  // A permission-denied frame is never acknowledged (base spec 4.2): the POST waits, then 504.
  const tokens = createTokenManager({ secret: "http-504" });
  const strict = new Server({ storage: new MemoryDocumentStorage(), tokenManager: tokens, logger: () => {} });
  const h = getHTTPHandlers({ server: strict, tokenManager: tokens, ackTimeoutMs: 300, logger: () => {} });
  const token = await tokens.generateToken("reader", "room-1", [{ pattern: "doc", permissions: ["read"] }]);
  const sse = sseReader(await h(new Request(`http://x/sse?token=${token}&client-id=r1`)));
  await sse.until((t) => t.includes("client-id"));
  const update = hex("594a530103646f63000002021f011b000003e501000108000184080620776f726c6406000000010105000000");
  const denied = await h(new Request(`http://x/sse?token=${token}&client-id=r1`, { method: "POST", body: encodeMessageArray([update]) }));
  assert.equal(denied.status, 504);
  assert.deepEqual(await denied.json(), { error: "Failed to receive acknowledgment", message: "ACK timeout for message 91650e2e13870ee0" });
  // The denial itself arrives on the stream.
  await sse.until((t) => t.includes("event:message"), "denial");
  sse.cancel();
  await strict.close();
});

test("http vectors: POST /message streams one single-frame message array per server frame", async () => {
  const { server, handler } = vectorSetup();
  // The document holds the update of the client sink's batch first (as in the generator run).
  const first = await handler(new Request("http://x/sse?user=alice&client-id=w"));
  const sse = sseReader(first);
  await sse.until((t) => t.includes("client-id"));
  const batch = step("POST /sse (client sink batch");
  assert.equal((await handler(request(batch.request, { headers: { "x-teleportal-client-id": "w" } }))).status, 200);
  sse.cancel();
  const msg = step("POST /message");
  const res = await handler(request(msg.request, { headers: { "x-teleportal-client-id": "ignored" } }));
  assert.equal(res.status, 200);
  for (const [k, v] of Object.entries(msg.response.headers)) {
    if (k !== "x-teleportal-client-id") assert.equal(res.headers.get(k), v, k);
  }
  assert.notEqual(res.headers.get("x-teleportal-client-id"), "ignored");
  const body = new Uint8Array(await res.arrayBuffer());
  assert.equal(toHex(body), msg.response.bodyHex);
  assert.deepEqual(decodeMessageArray(body).map((m) => m.payload.type), ["sync-step-2", "sync-step-1", "ack"]);
  await eventually(() => server.clientCount === 0, "the /message client left");
  await server.close();
});

test("http: pings every pingIntervalMs with the vector's text; initial documents join without sync traffic", async () => {
  const { server, handler } = vectorSetup({ pingIntervalMs: 50 });
  const ping = vectors.sseStream.find((c) => c.text.startsWith("event:ping")).text;
  const res = await handler(new Request("http://x/sse?user=bob&client-id=listener&documents=doc:plaintext"));
  const sse = sseReader(res);
  await sse.until((t) => t.split(ping).length > 2, "two pings");
  // Another client writes "doc": the listener gets the relay without having sent anything.
  const writer = sseReader(await handler(new Request("http://x/sse?user=alice&client-id=writer")));
  await writer.until((t) => t.includes("client-id"));
  const batch = step("POST /sse (client sink batch");
  assert.equal((await handler(request(batch.request, { headers: { "x-teleportal-client-id": "writer" } }))).status, 200);
  const update = Buffer.from(hex(batch.request.bodyMessages[1].hex)).toString("base64");
  await sse.until((t) => t.includes(`data: ${update}\n\n`), "relayed update");
  // A second stream with an id in use is refused.
  const dup = await handler(new Request("http://x/sse?user=bob&client-id=listener"));
  assert.equal(dup.status, 409);
  assert.equal((await dup.json()).error, "Client ID already in use");
  sse.cancel();
  writer.cancel();
  await server.close();
});

test("http vectors: getDocumentsFromQueryParams", () => {
  for (const c of vectors.getDocumentsFromQueryParams) assert.deepEqual(getDocumentsFromQueryParams(c.url), c.result, c.url);
});

test("http vectors: built-in token check; refusals are returned (deviation: the reference rejects with them)", async () => {
  const tokens = createTokenManager({ secret: "http-tokens" });
  const server = new Server({ storage: new MemoryDocumentStorage(), tokenManager: tokens, logger: () => {} });
  const handler = getHTTPHandlers({ server, tokenManager: tokens, logger: () => {} });
  const token = await tokens.generateToken("alice", "room-1", [{ pattern: "*", permissions: ["read", "write"] }]);
  for (const c of vectors.tokenAuthenticated) {
    const url = c.request.url.replace(/token=[^&]+/, `token=${c.request.url.includes("abc.def.ghi") ? "abc.def.ghi" : token}`);
    const headers = { ...c.request.headers };
    if (headers.authorization) headers.authorization = `Bearer ${token}`;
    const res = await handler(new Request(url, { method: c.request.method, headers }));
    if (c.rejectedWith) {
      assert.equal(res.status, c.rejectedWith.status, c.label);
      assert.ok((await res.text()).length > 0);
      continue;
    }
    if (c.request.url.endsWith("/health")) {
      assert.equal(res.status, 404, "monitoring routes are not ours (serve.js has /health)");
      continue;
    }
    assert.equal(res.status, 200, c.label);
    for (const [k, v] of Object.entries(c.response.headers)) assert.equal(res.headers.get(k), v, `${c.label}: ${k}`);
    const sse = sseReader(res);
    await sse.until((t) => t.startsWith(c.response.firstEvent));
    sse.cancel();
  }
  // A token of another secret, and a POST without a token: 401 before anything else.
  const other = await createTokenManager({ secret: "other" }).generateToken("alice", "room-1", []);
  assert.equal((await handler(new Request(`http://x/sse?token=${other}`))).status, 401);
  assert.equal((await handler(new Request("http://x/sse", { method: "POST", body: new Uint8Array(0) }))).status, 401);
  // No secret anywhere: every request is refused (secure by default).
  const saved = process.env.TELEPORTAL_SECRET;
  delete process.env.TELEPORTAL_SECRET;
  try {
    const bare = getHTTPHandlers({ server, logger: () => {} });
    assert.equal((await bare(new Request("http://x/sse"))).status, 401);
    assert.equal((await bare(new Request(`http://x/sse?token=${token}`))).status, 401);
  } finally {
    if (saved !== undefined) process.env.TELEPORTAL_SECRET = saved;
  }
  await eventually(() => server.clientCount === 0, "streams closed");
  await server.close();
});

test("http: a body over maxBodyBytes is refused with 400 and never processed", async () => {
  const { server, handler } = vectorSetup({ maxBodyBytes: 64 });
  const sse = sseReader(await handler(new Request("http://x/sse?user=a&client-id=big")));
  await sse.until((t) => t.includes("client-id"));
  const res = await handler(new Request("http://x/sse?user=a&client-id=big", { method: "POST", body: new Uint8Array(65) }));
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), { error: "Request body too large", message: "65 > 64 bytes" });
  // Streamed without a content-length.
  const stream = new ReadableStream({ start(c) { c.enqueue(new Uint8Array(40)); c.enqueue(new Uint8Array(40)); c.close(); } });
  const chunked = await handler(new Request("http://x/sse?user=a&client-id=big", { method: "POST", body: stream, duplex: "half" }));
  assert.equal(chunked.status, 400);
  sse.cancel();
  await server.close();
});

async function eventually(pred, what, ms = 3000) {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
