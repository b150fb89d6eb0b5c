// The provider's connection lifecycle against a scripted server (ws on loopback, frames decoded and
// built by the C++ codec in teleportal/protocol): the in-band token refresh frame, its ack and
// NACK, the 4401 close, getToken failures, reconnect backoff with jitter, ping timeout, batching.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { WebSocketServer } from "ws";
import { decodeContentEncryptedPayload, decodeMessage, encodeMessage, getEmptyContentEncryptedPayload } from "teleportal/protocol";
// The provider's own copy of Y.js (the package's dev dependency): one Y.js in this process.
import * as Y from "../../wasm/node_modules/yjs/dist/yjs.mjs";
import { TOKEN_EXPIRED, TeleportalProvider, tokenTimes } from "teleportal/provider";
import { mintToken, next, provider, record, until, within } from "./helpers.mjs";

const servers = [];
after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

/**
 * A server that syncs like ours (empty documents) and hands auth-messages to `onAuth`.
 * `accept(request)` may refuse upgrades.
 */
async function scriptedServer({ onAuth = (_m, { ack }) => ack(), accept = () => true, deny = [] } = {}) {
  const state = { tokens: [], attempts: [], frames: [], sockets: [], closes: [], silent: false };
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    verifyClient: (info, done) => {
      state.attempts.push(Date.now());
      done(accept(info.req), 401, "Unauthorized");
    },
  });
  servers.push(wss);
  wss.on("connection", (ws, req) => {
    state.tokens.push(new URL(req.url, "http://x").searchParams.get("token"));
    state.sockets.push(ws);
    ws.on("close", (code, reason) => state.closes.push([code, reason.toString()]));
    ws.on("message", (data) => {
      if (state.silent) return;
      const bytes = new Uint8Array(data);
      if (Buffer.from(bytes).toString() === "YJSping") return ws.send(Buffer.from("YJSpong"));
      const m = decodeMessage(bytes);
      state.frames.push({ m, bytes });
      const send = (msg) => ws.send(encodeMessage(msg));
      const ack = (error) =>
        send({ type: "ack", document: null, encrypted: false, payload: { type: "ack", messageId: m.id, ...(error ? { error } : {}) } });
      const doc = (payload) => send({ type: "doc", document: m.document, encrypted: false, payload });
      if (m.type === "doc" && deny.includes(m.document)) {
        doc({ type: "auth-message", permission: "denied", reason: `Insufficient permissions to access document ${m.document}` });
      } else if (m.type === "doc" && m.payload.type === "sync-step-1") {
        doc({ type: "sync-step-2", update: { version: 2, data: getEmptyContentEncryptedPayload() } });
        doc({ type: "sync-step-1", sv: Uint8Array.of(0) });
        ack();
      } else if (m.type === "doc" && m.payload.type === "sync-step-2") {
        doc({ type: "sync-done" });
        ack();
      } else if (m.type === "doc" && m.payload.type === "auth-message") {
        onAuth(m, { ack, doc, ws });
      } else {
        ack();
      }
    });
  });
  await new Promise((r) => wss.on("listening", r));
  return { ...state, state, url: `ws://127.0.0.1:${wss.address().port}/?room=r`, wss };
}

/** getToken that mints token n with userId "u" and the given lifetimes (seconds) in turn. */
function tokenSource(lifetimes) {
  const issued = [];
  const getToken = async () => {
    const t = await mintToken({ userId: "u", n: issued.length }, { secret: "s", expiresIn: lifetimes[Math.min(issued.length, lifetimes.length - 1)] });
    issued.push(t);
    return t;
  };
  return { issued, getToken };
}

const authFrames = (srv) => srv.state.frames.filter(({ m }) => m.type === "doc" && m.payload.type === "auth-message");

test("refresh before expiry: a doc auth-message (allowed, reason = new JWT) on the open connection; ack -> token event", async () => {
  const srv = await scriptedServer();
  const { issued, getToken } = tokenSource([2, 3600]); // the first token expires in 2 s
  const p = provider(srv.url, { getToken });
  const log = record(p);
  const d = p.open("notes");
  await within(d.synced, 3000, "sync");
  assert.equal(srv.state.tokens[0], issued[0], "?token= carries getToken's token");
  await until(() => log.tokens.length === 1, { timeout: 4000, what: "the refresh" });
  const [{ m, bytes }] = authFrames(srv);
  assert.equal(m.document, "notes");
  assert.deepEqual(m.payload, { type: "auth-message", permission: "allowed", reason: issued[1] });
  // Wire bytes: header for "notes", doc (0), auth-message (4), permission 1, vs(token).
  const header = Buffer.from("594a530105" + Buffer.from("notes").toString("hex") + "0000", "hex");
  assert.equal(Buffer.from(bytes.subarray(0, header.length + 2)).toString("hex"), header.toString("hex") + "0401");
  assert.equal(log.tokens[0], issued[1]);
  assert.equal(p.token, issued[1]);
  assert.ok(tokenTimes(issued[1]).exp - tokenTimes(issued[1]).iat === 3600);
  assert.equal(srv.state.tokens.length, 1, "no reconnect for a refresh");
  assert.deepEqual(log.errors, []);
  p.destroy();
});

test("a refused refresh is an error event; the connection stays", async () => {
  const srv = await scriptedServer({ onAuth: (_m, { ack }) => ack("Token refresh refused: the new token is for another user or room") });
  const { getToken } = tokenSource([3600]);
  const p = provider(srv.url, { getToken });
  const d = p.open("notes");
  await d.synced;
  const [[err], [docErr]] = await Promise.all([next(p, "error"), next(d, "error"), p.refreshToken()]);
  assert.equal(err.type, "refresh");
  assert.equal(err.message, "Token refresh refused: the new token is for another user or room");
  assert.equal(err.document, "notes");
  assert.equal(docErr, err);
  assert.equal(p.status, "connected");
  p.destroy();
});

test("a reference-style server that answers the auth-message with a denial: reported as a refused refresh, not a refused document", async () => {
  const srv = await scriptedServer({
    onAuth: (m, { doc }) => doc({ type: "auth-message", permission: "denied", reason: `Insufficient permissions to access document ${m.document}` }),
  });
  const { getToken } = tokenSource([3600]);
  const p = provider(srv.url, { getToken });
  const d = p.open("notes");
  await d.synced;
  const [[err]] = await Promise.all([next(p, "error"), p.refreshToken()]);
  assert.equal(err.type, "refresh");
  assert.equal(err.message, "Token refresh refused: Insufficient permissions to access document notes");
  assert.equal(d.isSynced, true);
  p.destroy();
});

test("a denial outside a refresh rejects synced and is an error event", async () => {
  const srv = await scriptedServer({ deny: ["secret"] });
  const p = provider(srv.url, { token: await mintToken({}, { secret: "s" }) });
  const d = p.open("secret");
  const errored = next(d, "error");
  const refused = await within(d.synced.then(() => null, (e) => e), 3000, "synced settles");
  const [err] = await errored;
  assert.equal(refused, err, "synced rejects with the same error");
  assert.equal(err.type, "denied");
  assert.equal(err.message, 'Access to "secret" denied: Insufficient permissions to access document secret');
  assert.equal(d.isSynced, false);
  p.destroy();
});

test(`close ${TOKEN_EXPIRED} (token expired): getToken again, reconnect with the new token, resync`, async () => {
  const srv = await scriptedServer();
  const { issued, getToken } = tokenSource([3600]);
  const p = provider(srv.url, { getToken });
  const d = p.open("notes");
  await d.synced;
  const reconnected = next(p, "status", { filter: (s) => s === "connected" });
  srv.state.sockets[0].close(TOKEN_EXPIRED, "token expired");
  await within(reconnected, 3000, "reconnect");
  await within(d.synced, 3000, "resync");
  assert.equal(issued.length, 2);
  assert.deepEqual(srv.state.tokens, issued);
  const step1s = srv.state.frames.filter(({ m }) => m.type === "doc" && m.payload.type === "sync-step-1");
  assert.equal(step1s.length, 2, "sync-step-1 again after the reconnect");
  p.destroy();
});

test(`close ${TOKEN_EXPIRED} with a fixed token: an error event says what to do`, async () => {
  const srv = await scriptedServer();
  const p = provider(srv.url, { token: await mintToken({}, { secret: "s" }) });
  await p.open("notes").synced;
  const errored = next(p, "error");
  srv.state.sockets[0].close(TOKEN_EXPIRED, "token expired");
  const [err] = await errored;
  assert.equal(err.type, "token");
  assert.equal(err.message, "The server closed the connection: the token expired (set getToken to refresh it)");
  p.destroy();
});

test("getToken failures are error events and retried with backoff until it works", async () => {
  const srv = await scriptedServer();
  let calls = 0;
  const getToken = async () => {
    if (++calls < 3) throw new Error("token service down");
    return mintToken({}, { secret: "s" });
  };
  const p = provider(srv.url, { getToken });
  const log = record(p);
  const d = p.open("notes");
  await within(d.synced, 3000, "sync after getToken recovers");
  assert.equal(calls, 3);
  assert.deepEqual(log.errors.map((e) => [e.type, e.message]), [
    ["token", "Could not get a token: token service down"],
    ["token", "Could not get a token: token service down"],
  ]);
  p.destroy();
});

test("reconnect delays double from minDelay up to maxDelay, each drawn from [d/2, d]", async () => {
  const srv = await scriptedServer({ accept: () => false });
  const p = provider(srv.url, { token: "t", minDelay: 40, maxDelay: 320 });
  await until(() => srv.state.attempts.length >= 9, { timeout: 5000, what: "nine attempts" });
  p.destroy();
  const gaps = srv.state.attempts.slice(1).map((t, i) => t - srv.state.attempts[i]);
  const expected = [40, 80, 160, 320, 320, 320];
  gaps.slice(0, 6).forEach((gap, i) => {
    assert.ok(gap >= expected[i] / 2 - 5 && gap <= expected[i] + 40, `gap ${i}: ${gap} ms for d = ${expected[i]}`);
  });
  // Without jitter every delay on the plateau would be 320 ms (+ connect time).
  assert.ok(gaps.slice(4, 8).some((g) => g < 300), `jitter on the plateau: ${gaps.join(", ")}`);
  assert.equal(p.status, "closed");
});

test("a connection that stays silent for two ping intervals is dropped and re-established", async () => {
  const srv = await scriptedServer();
  const p = provider(srv.url, { token: await mintToken({}, { secret: "s" }), pingInterval: 60 });
  const d = p.open("notes");
  await d.synced;
  srv.state.silent = true; // no pongs, no acks: a half-open connection
  await until(() => srv.state.closes.length === 1, { timeout: 2000, what: "the client to give up" });
  assert.deepEqual(srv.state.closes[0], [4000, "ping timeout"]);
  srv.state.silent = false;
  await within(d.synced, 3000, "resync on a new connection");
  assert.equal(srv.state.tokens.length, 2);
  p.destroy();
});

test("disconnect() while getToken is pending opens no socket; connect() opens exactly one", async () => {
  const srv = await scriptedServer();
  let release;
  const p = provider(srv.url, { getToken: () => new Promise((r) => (release = r)) });
  await until(() => release, { what: "getToken called" });
  p.disconnect();
  release(await mintToken({}, { secret: "s" }));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(srv.state.attempts.length, 0);
  assert.equal(p.status, "disconnected");
  p.options.getToken = () => mintToken({}, { secret: "s" });
  p.connect();
  await within(p.open("notes").synced, 3000, "sync after connect()");
  assert.equal(srv.state.attempts.length, 1);
  p.destroy();
  assert.equal(p.status, "closed");
});

test("without a WebSocket class (Node 20) construction fails with a message that says what to pass",
  { skip: typeof globalThis.WebSocket === "function" && "this runtime has a global WebSocket" }, () => {
    assert.throws(() => new TeleportalProvider({ url: "ws://127.0.0.1:1/" }),
      { name: "TypeError", message: "No WebSocket class: pass { WebSocket } (for example the ws package's) on Node 20" });
  });

test("an invalid URL fails at construction, not in a later reconnect", () => {
  assert.throws(() => provider("not a url"), { name: "TypeError", message: /Invalid URL/ });
});

test("local changes are batched: 200 edits in one task go out as one merged update per document", async () => {
  const srv = await scriptedServer();
  const p = provider(srv.url, { token: await mintToken({}, { secret: "s" }), batchMs: 30 });
  const docs = [p.open("a"), p.open("b")];
  await Promise.all(docs.map((d) => d.synced));
  for (let i = 0; i < 100; i++) for (const d of docs) d.doc.getText("t").insert(i, String(i % 10));
  await within(p.flush(), 3000, "acks");
  const updates = srv.state.frames.filter(({ m }) => m.type === "doc" && m.payload.type === "update");
  assert.deepEqual(updates.map(({ m }) => m.document), ["a", "b"]);
  for (const { m } of updates) {
    assert.equal(m.payload.update.version, 2);
    const copy = new Y.Doc();
    Y.applyUpdateV2(copy, decodeContentEncryptedPayload(m.payload.update.data).structureUpdate);
    assert.equal(copy.getText("t").toString(), docs[0].doc.getText("t").toString());
  }
  p.destroy();
});
