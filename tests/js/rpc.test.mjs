// RPC handlers (the Server's rpcHandlers option) and milestones (built into the core) through the
// wasm module in Node: the reference's rpc-handlers transcript byte for byte, streaming, errors,
// timeouts, clients that leave; milestones over a real WebSocket with the provider's milestone
// client, surviving a server restart on a SQLite file; automatic milestones.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import * as Y from "yjs";
import { Server } from "teleportal/server";
import { getWebsocketHandlers } from "teleportal/websocket-server";
import { createTokenManager } from "teleportal/token";
import { MemoryDocumentStorage, openSqliteStorage } from "teleportal/storage";
import { decodeAny, decodeMessage, encodeAny, encodeMessage, getMessageId } from "teleportal/protocol";
import { TeleportalProvider } from "teleportal/provider";

const dir = mkdtempSync(join(tmpdir(), "tp-rpc-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const hex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b) => Buffer.from(b).toString("hex");
const serverVectors = JSON.parse(readFileSync(new URL("../vectors/server.json", import.meta.url), "utf8"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A transport the test drives: frames in with `push`, frames out collected in `sent`. */
function fakeTransport(id = "client-1") {
  const listeners = [];
  const sent = [];
  const waiters = [];
  return {
    id,
    sent,
    send(frame) {
      sent.push(new Uint8Array(frame));
      for (const w of waiters.splice(0)) w();
    },
    onMessage(listener) {
      listeners.push(listener);
      return () => listeners.splice(listeners.indexOf(listener), 1);
    },
    push(frame) {
      for (const l of listeners) l(frame);
    },
    /** Resolves once `n` frames were sent in total. */
    async count(n, timeout = 3000) {
      const end = Date.now() + timeout;
      while (sent.length < n) {
        if (Date.now() > end) throw new Error(`only ${sent.length} of ${n} frames: ${sent.map(toHex).join(" ")}`);
        await new Promise((r) => {
          waiters.push(r);
          setTimeout(r, 20);
        });
      }
      return sent.slice(0, n);
    },
  };
}

function rpcFrame(method, payload, { document = "doc", requestType = "request", originalRequestId = null, encrypted = false } = {}) {
  return encodeMessage({ type: "rpc", document, encrypted, rpcMethod: method, requestType, originalRequestId, payload: { type: "success", payload } });
}

const quiet = () => {};

test("rpcHandlers: the reference's rpc-handlers transcript (success, stream then response, throw, RpcError) byte for byte", { timeout: 30_000 }, async () => {
  const scenario = serverVectors.scenarios.find((s) => s.name === "rpc-handlers");
  const server = new Server({
    permissions: "none",
    storage: new MemoryDocumentStorage(),
    logger: quiet,
    rpcHandlers: {
      echo: { handler: async (payload) => ({ response: { echoed: payload } }) },
      count: {
        handler: async () => ({
          response: { total: 2 },
          stream: (async function* () {
            yield { i: 0 };
            yield { i: 1 };
          })(),
        }),
      },
      boom: {
        handler: async () => {
          throw new Error("kaboom");
        },
      },
      refuse: { handler: async () => ({ response: { type: "error", statusCode: 409, details: "conflict", payload: { why: 1 } } }) },
    },
  });
  const t = fakeTransport();
  let context;
  let compared = 0;
  for (const step of scenario.steps) {
    if (step.action === "upgrade") context = step.result.context;
    if (step.action === "open") await server.createClient(t, context, "A");
    if (step.action !== "send") continue;
    const before = t.sent.length;
    const want = step.effects.filter((e) => e.hex).map((e) => e.hex);
    t.push(hex(step.hex));
    const got = (await t.count(before + want.length)).slice(before).map(toHex);
    assert.deepEqual(got, want, step.label);
    compared++;
  }
  assert.equal(compared, 4);
  await server.close();
});

test("rpcHandlers: ctx, stream handlers, non-Error throws, encrypted override, init and cleanup", { timeout: 30_000 }, async () => {
  const seen = [];
  let inits = 0;
  let cleanups = 0;
  const server = new Server({
    permissions: "none",
    storage: new MemoryDocumentStorage(),
    logger: quiet,
    rpcHandlers: {
      whoami: {
        access: "read",
        handler: (payload, ctx) => {
          seen.push(ctx);
          return { response: { documentId: ctx.documentId, userId: ctx.userId, clientId: ctx.clientId, claim: ctx.plan }, encrypted: true };
        },
        init: (s) => {
          inits++;
          assert.ok(s instanceof Server);
          return () => cleanups++;
        },
      },
      upload: {
        handler: () => ({ response: null }),
        streamHandler: async (payload, ctx, frameId, send) => {
          if (payload.fail) throw "not an error";
          send(rpcFrame("upload", { got: payload.n, frameId }, { requestType: "stream", originalRequestId: frameId }));
        },
      },
      odd: {
        handler: () => {
          throw 42;
        },
      },
    },
  });
  assert.equal(inits, 1);
  const t = fakeTransport();
  await server.createClient(t, { userId: "alice", room: "room-1", plan: "pro" }, "A");
  const who = rpcFrame("whoami", {});
  t.push(who);
  const [response, ack] = (await t.count(2)).map(decodeMessage);
  assert.equal(response.encrypted, true);
  assert.deepEqual(response.payload.payload, { documentId: "room-1/doc", userId: "alice", clientId: "A", claim: "pro" });
  assert.equal(ack.payload.messageId, getMessageId(who));
  assert.equal(seen[0].server, server);
  assert.equal(seen[0].session.encrypted, false);
  assert.equal(seen[0].room, "room-1");

  // An upload chunk: the handler's own frame, then the ack of the chunk.
  const chunk = rpcFrame("upload", { n: 1 }, { requestType: "stream", originalRequestId: "feedfacefeedface" });
  t.push(chunk);
  const [echo, chunkAck] = (await t.count(4)).slice(2).map(decodeMessage);
  assert.deepEqual(echo.payload.payload, { got: 1, frameId: getMessageId(chunk) });
  assert.equal(chunkAck.payload.messageId, getMessageId(chunk));
  // A throwing stream handler: 500 "Stream processing error" for a non-Error, to the frame's originalRequestId.
  t.push(rpcFrame("upload", { fail: true }, { requestType: "stream", originalRequestId: "feedfacefeedface" }));
  const [failed] = (await t.count(6)).slice(4).map(decodeMessage);
  assert.equal(failed.originalRequestId, "feedfacefeedface");
  assert.deepEqual(failed.payload, { type: "error", statusCode: 500, details: "Stream processing error", payload: undefined });
  // A handler throwing a non-Error: 500 "Internal error".
  t.push(rpcFrame("odd", {}));
  const [odd] = (await t.count(8)).slice(6).map(decodeMessage);
  assert.equal(odd.payload.statusCode, 500);
  assert.equal(odd.payload.details, "Internal error");
  // Unknown: 501 with the method.
  t.push(rpcFrame("nope", {}));
  const [nope] = (await t.count(10)).slice(8).map(decodeMessage);
  assert.deepEqual(nope.payload, { type: "error", statusCode: 501, details: "Unknown RPC method: nope", payload: { method: "nope" } });
  await server.close();
  assert.equal(cleanups, 1);
  assert.throws(() => new Server({ storage: new MemoryDocumentStorage(), rpcHandlers: { x: {} } }), /rpcHandlers.x.handler must be a function/);
  assert.throws(() => new Server({ storage: new MemoryDocumentStorage(), rpcHandlers: { x: { handler() {}, access: "admin" } } }), /access/);
});

test("rpcHandlers: a client that leaves before the answer, and a handler that never answers", { timeout: 30_000 }, async () => {
  let release;
  const logs = [];
  const server = new Server({
    permissions: "none",
    storage: new MemoryDocumentStorage(),
    logger: (level, event) => logs.push(event),
    rpcTimeoutMs: 150,
    tickIntervalMs: 20,
    rpcHandlers: {
      slow: { handler: () => new Promise((r) => (release = r)) },
      never: { handler: () => new Promise(() => {}) },
    },
  });
  const a = fakeTransport("a");
  await server.createClient(a, { userId: "a" }, "a");
  a.push(rpcFrame("slow", {}));
  while (!release) await sleep(5);
  await server.disconnectClient("a");
  release({ response: { late: true } }); // nobody to answer: dropped
  await sleep(30);
  assert.equal(a.sent.length, 0);

  const b = fakeTransport("b");
  await server.createClient(b, { userId: "b" }, "b");
  const never = rpcFrame("never", {});
  b.push(never);
  const [timeout, ack] = (await b.count(2, 2000)).map(decodeMessage);
  assert.equal(timeout.payload.statusCode, 504);
  assert.equal(timeout.payload.details, "RPC handler did not answer within 150 ms");
  assert.equal(ack.payload.messageId, getMessageId(never));
  assert.ok(logs.includes("rpc_timeout"));
  await server.disconnectClient("b");
  await server.close(); // a handler that never settles does not hold close()
});

test("rpc permissions in token mode: 403 without an ack for writes; registered read methods pass", { timeout: 30_000 }, async () => {
  const tokenManager = createTokenManager({ secret: "rpc-perm-secret" });
  const server = new Server({
    tokenManager,
    storage: new MemoryDocumentStorage(),
    logger: quiet,
    rpcHandlers: { peek: { access: "read", handler: () => ({ response: "ok" }) }, poke: { handler: () => ({ response: "ok" }) } },
  });
  const t = fakeTransport();
  await server.createClient(t, { userId: "r", room: "room-1", documentAccess: [{ pattern: "doc", permissions: ["read"] }] }, "r");
  t.push(rpcFrame("poke", {}));
  t.push(rpcFrame("milestoneCreate", { name: "x", snapshot: new Uint8Array([0]) }));
  t.push(rpcFrame("peek", {}));
  const got = (await t.count(4)).map(decodeMessage);
  assert.deepEqual(got[0].payload, { type: "error", statusCode: 403, details: "Permission denied", payload: undefined });
  assert.deepEqual(got[1].payload, { type: "error", statusCode: 403, details: "Permission denied", payload: undefined });
  assert.deepEqual(got[2].payload, { type: "success", payload: "ok" });
  assert.equal(got[3].type, "ack"); // only for peek
  await sleep(30);
  assert.equal(t.sent.length, 4);
  await server.close();
});

test("the core's any codec: encodeAny/decodeAny round-trip the rpc vectors' payloads", { timeout: 30_000 }, () => {
  const v = { s: "str", i: 42, f: 0.1, big: 2n ** 40n, n: null, u: undefined, b: new Uint8Array([1, 2]), a: [1, "x"], t: true };
  const back = decodeAny(encodeAny(v));
  assert.deepEqual(back, v);
  assert.equal(toHex(encodeAny(1700000001000)), "7b4278bcfe56be8000");
});

// ---- milestones over a real WebSocket --------------------------------------------------------

async function startServer(options) {
  const server = new Server({ logger: quiet, ...options });
  const handlers = getWebsocketHandlers({
    // Without a token manager the server runs with permissions "none": every connection is "u".
    ...(options.tokenManager ? { tokenManager: options.tokenManager } : { onUpgrade: () => ({ context: { userId: "u" } }) }),
    onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
    onDisconnect: (id) => server.disconnectClient(id),
  });
  const http = createServer();
  http.on("upgrade", (req, socket, head) => handlers.upgrade(req, socket, head));
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  return {
    server,
    url: `ws://127.0.0.1:${http.address().port}/`,
    async stop() {
      await server.close();
      await new Promise((r) => http.close(r));
    },
  };
}

function provider(url, token) {
  return new TeleportalProvider({ url, token, WebSocket, minDelay: 20, maxDelay: 200, batchMs: 5 });
}

const textOf = (update) => {
  const d = new Y.Doc();
  Y.applyUpdateV2(d, update);
  return d.getText("t").toString();
};

test("milestones over WebSocket: create, list, get, rename, delete, restore; they survive a restart on a SQLite file", { timeout: 30_000 }, async () => {
  const path = join(dir, "milestones.sqlite");
  const tokenManager = createTokenManager({ secret: "milestone-secret" });
  const token = await tokenManager.generateToken("alice", "room-1", [{ pattern: "*", permissions: ["read", "write"] }]);
  const readerToken = await tokenManager.generateToken("bob", "room-1", [{ pattern: "*", permissions: ["read"] }]);

  let storage = await openSqliteStorage({ path });
  let s = await startServer({ tokenManager, storage });
  let p = provider(s.url, token);
  let d = p.open("notes");
  await d.synced;
  d.doc.getText("t").insert(0, "hello");
  await p.flush();
  const v1 = await d.milestones.create("v1");
  assert.equal(v1.name, "v1");
  assert.equal(v1.documentId, "room-1/notes");
  assert.deepEqual(v1.createdBy, { type: "user", id: "alice" });
  assert.match(v1.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(Math.abs(v1.createdAt - Date.now()) < 5000);
  d.doc.getText("t").insert(5, " world");
  await p.flush();
  const v2 = await d.milestones.create();
  assert.equal(v2.name, "Version 2");
  assert.notEqual(v2.id, v1.id);
  // A reader lists but may not create.
  const r = provider(s.url, readerToken);
  const rd = r.open("notes");
  await rd.synced;
  assert.equal((await rd.milestones.list()).length, 2);
  await assert.rejects(rd.milestones.create("nope"), { message: "[milestone] Failed to create: RPC error (403): Permission denied" });
  r.destroy();
  p.destroy();
  await s.stop();
  await storage.close();

  // A new server process on the same file.
  storage = await openSqliteStorage({ path });
  s = await startServer({ tokenManager, storage });
  p = provider(s.url, token);
  d = p.open("notes");
  await d.synced;
  assert.equal(d.doc.getText("t").toString(), "hello world");
  let list = await d.milestones.list();
  assert.deepEqual(list.map((m) => [m.id, m.name]), [[v1.id, "v1"], [v2.id, "Version 2"]]);
  assert.equal(list[0].createdAt, v1.createdAt);
  assert.equal(list[0].deletedAt, undefined);
  assert.equal(textOf(await d.milestones.getSnapshot(v1.id)), "hello");
  assert.equal(textOf(await d.milestones.getSnapshot(v2.id)), "hello world");
  const renamed = await d.milestones.updateName(v1.id, "v1-final");
  assert.equal(renamed.name, "v1-final");
  await d.milestones.delete(v2.id);
  list = await d.milestones.list();
  assert.deepEqual(list.map((m) => m.name), ["v1-final"]);
  list = await d.milestones.list({ includeDeleted: true });
  assert.equal(list[1].lifecycleState, "deleted");
  assert.ok(list[1].deletedAt > 0);
  await assert.rejects(d.milestones.getSnapshot(v2.id), { message: "[milestone] Failed to get: RPC error (404): Milestone not found" });
  await assert.rejects(d.milestones.updateName(v2.id, "x"), { message: "[milestone] Failed to updateName: RPC error (404): Milestone not found" });
  await assert.rejects(d.milestones.updateName("no-such-id", "x"), { message: "[milestone] Failed to updateName: RPC error (500): Milestone not found" });
  await assert.rejects(d.milestones.restore("no-such-id"), { message: "[milestone] Failed to restore: RPC error (500): Failed to restore milestone" });
  const restored = await d.milestones.restore(v2.id);
  assert.equal(restored.lifecycleState, "active");
  assert.equal(restored.name, "Version 2");
  // restore never touches the content
  assert.equal(d.doc.getText("t").toString(), "hello world");
  assert.equal(textOf(await d.milestones.getSnapshot(v2.id)), "hello world");
  await d.milestones.delete(v2.id);
  await d.milestones.delete(v2.id); // for good
  list = await d.milestones.list({ includeDeleted: true });
  assert.deepEqual(list.map((m) => m.id), [v1.id]);
  // A raw create without a snapshot is refused (spec ext. 5.7).
  const err = await p.rpc.request("notes", "milestoneCreate", { name: "empty" }).catch((x) => x);
  assert.equal(err.message, "RPC error (400): Validation failed");
  assert.deepEqual(err.payload, { issues: [{ message: "snapshot must be the document's state as bytes", path: ["snapshot"] }] });
  p.destroy();
  await s.stop();
  await storage.close();

  // And once more: what the second server changed is what the third one reads.
  storage = await openSqliteStorage({ path });
  s = await startServer({ tokenManager, storage });
  p = provider(s.url, token);
  d = p.open("notes");
  await d.synced;
  list = await d.milestones.list({ includeDeleted: true });
  assert.deepEqual(list.map((m) => [m.name, m.lifecycleState]), [["v1-final", undefined]]);
  // The default name never repeats one the document has.
  await d.milestones.updateName(v1.id, "Version 5");
  assert.equal((await d.milestones.create()).name, "Version 6");
  p.destroy();
  await s.stop();
  await storage.close();
});

test("automatic milestones: triggers from the milestones option, onMilestoneCreated, a raw V2 snapshot", { timeout: 30_000 }, async () => {
  const created = [];
  const s = await startServer({
    permissions: "none",
    storage: new MemoryDocumentStorage(),
    milestones: {
      triggers: [{ id: "every-3", type: "update-count", config: { updateCount: 3 }, autoName: "Auto" }],
      onMilestoneCreated: (id, documentId) => created.push({ id, documentId }),
    },
  });
  const p = provider(s.url);
  const d = p.open("auto");
  await d.synced;
  for (const ch of "abcdef") {
    d.doc.getText("t").insert(d.doc.getText("t").length, ch);
    await p.flush();
  }
  const list = await d.milestones.list();
  assert.deepEqual(list.map((m) => [m.name, m.createdBy.type, m.createdBy.id]), [["Auto", "system", "auto"], ["Auto", "system", "auto"]]);
  assert.deepEqual(created.map((c) => c.documentId), ["auto", "auto"]);
  assert.deepEqual(created.map((c) => c.id), list.map((m) => m.id));
  // Spec ext. 5.3 fixed: the snapshot is a V2 update the client can apply.
  assert.equal(textOf(await d.milestones.getSnapshot(list[0].id)), "abc");
  assert.equal(textOf(await d.milestones.getSnapshot(list[1].id)), "abcdef");
  p.destroy();
  await s.stop();
  assert.throws(() => new Server({ storage: new MemoryDocumentStorage(), milestones: { triggers: [{ type: "event-based", config: {} }] } }), /event-based/);
  const plain = { load: () => [], commit() {} };
  assert.throws(() => new Server({ storage: plain, milestones: true }), /MilestoneStorage/);
  const off = new Server({ storage: plain, permissions: "none", logger: quiet }); // no milestones: 501
  const t = fakeTransport();
  await off.createClient(t, {}, "x");
  t.push(rpcFrame("milestoneList", {}));
  const [r] = (await t.count(2)).map(decodeMessage);
  assert.equal(r.payload.statusCode, 501);
  await off.close();
});

test("the provider's RPC client: identical requests in flight both get their answer; timeouts and destroy", { timeout: 30_000 }, async () => {
  let release;
  const s = await startServer({
    permissions: "none",
    storage: new MemoryDocumentStorage(),
    rpcHandlers: {
      gate: { handler: () => new Promise((r) => (release = r)).then(() => ({ response: "open" })) },
      hang: { handler: () => new Promise(() => {}) },
      chunks: { handler: () => ({ response: "end", stream: [1, 2, 3] }) },
      same: { handler: async (payload) => (await sleep(20), { response: payload.n }) },
      // An application method replaces the built-in one of the same name.
      milestoneList: { access: "read", handler: () => new Promise(() => {}) },
    },
  });
  const p = provider(s.url);
  const d = p.open("doc");
  await d.synced;
  // Spec ext. 5.8: byte-identical requests share an id; the reference's client times one out.
  const one = p.rpc.request("doc", "same", { n: 1 }, { timeout: 2000 });
  const two = p.rpc.request("doc", "same", { n: 1 }, { timeout: 2000 });
  assert.deepEqual(await Promise.all([one, two]), [1, 1]);
  const streamed = [];
  assert.equal(await p.rpc.request("doc", "chunks", {}, { onStream: (c) => streamed.push(c) }), "end");
  assert.deepEqual(streamed, [1, 2, 3]);
  await assert.rejects(p.rpc.request("doc", "hang", {}, { timeout: 100 }), { message: "RPC request timeout: hang" });
  await assert.rejects(d.milestones.list({ timeout: 100 }), { message: "[milestone] Failed to list: RPC request timeout: milestoneList" });
  const pending = p.rpc.request("doc", "gate", {});
  while (!release) await sleep(5);
  p.destroy();
  await assert.rejects(pending, { message: "RpcClient destroyed" });
  release();
  await s.stop();
});
