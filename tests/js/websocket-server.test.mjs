// getWebsocketHandlers / tokenAuthenticatedWebsocketHandler / Server in one Node process with
// real http + ws sockets: options paths the host suite does not cover.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { getWebsocketHandlers, tokenAuthenticatedWebsocketHandler } from "teleportal/websocket-server";
import { Server } from "teleportal/server";
import { createTokenManager } from "teleportal/token";
import { MemoryDocumentStorage } from "teleportal/storage";
import { connect, frames, toHex } from "../hosts/suite.mjs";

async function listen(handlers) {
  const http = createServer();
  http.on("upgrade", (req, socket, head) => handlers.upgrade(req, socket, head));
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  return { url: (q) => `ws://127.0.0.1:${http.address().port}/?${new URLSearchParams(q)}`, close: () => http.close() };
}

test("tokenAuthenticatedWebsocketHandler: claims win over hook context; the server relays", async () => {
  const tokenManager = createTokenManager({ secret: "tah-secret" });
  const server = new Server({ tokenManager, storage: new MemoryDocumentStorage() });
  const seen = [];
  const handlers = tokenAuthenticatedWebsocketHandler({
    server,
    tokenManager,
    hooks: {
      onUpgrade: async () => ({ context: { extra: "from-hook", userId: "hook-loses" }, headers: { "x-extra": "1" } }),
      onConnect: async ({ context, id }) => seen.push({ id, context }),
    },
  });
  const srv = await listen(handlers);
  const access = [{ pattern: "*", permissions: ["read", "write"] }];
  const a = await connect(srv.url({ token: await tokenManager.generateToken("alice", "r1", access) }));
  const b = await connect(srv.url({ token: await tokenManager.generateToken("bob", "r1", access) }));
  assert.equal(a.headers["x-extra"], "1");
  assert.equal(seen[0].context.userId, "alice");
  assert.equal(seen[0].context.extra, "from-hook");
  assert.deepEqual(server.getClient(seen[0].id).context, seen[0].context);
  for (const c of [a, b]) {
    c.send(frames.syncStep1);
    await c.waitDecoded((m) => m.type === "ack");
  }
  a.send(frames.update);
  await b.waitFor((f) => toHex(f) === toHex(frames.update), { what: "relay" });
  const refused = await connect(srv.url({ token: await createTokenManager({ secret: "other" }).generateToken("x", "r1", access) })).then(() => null, (e) => e);
  assert.equal(refused.status, 401);
  await Promise.all([a.close(), b.close()]);
  srv.close();
});

test("getWebsocketHandlers({ tokenManager }): the built-in check uses the manager's secret; read-only is enforced", async () => {
  const tokenManager = createTokenManager({ secret: "manager-secret" });
  const server = new Server({ storage: new MemoryDocumentStorage() }) // token mode is the default;
  const handlers = getWebsocketHandlers({
    tokenManager,
    onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
    onDisconnect: (id) => server.disconnectClient(id),
  });
  const srv = await listen(handlers);
  const reader = await connect(srv.url({ token: await tokenManager.generateToken("r", "room", [{ pattern: "doc", permissions: ["read"] }]) }));
  reader.send(frames.update);
  const denied = await reader.waitDecoded((m) => m.payload.type === "auth-message", "denial");
  assert.equal(denied.payload.reason, "Insufficient permissions to access document doc");
  await reader.close();
  srv.close();
});

test("a throwing onDisconnect never skips the server's cleanup", async () => {
  const server = new Server({ storage: new MemoryDocumentStorage() });
  const handlers = getWebsocketHandlers({
    onUpgrade: () => ({ context: { userId: "u" } }),
    onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
    onDisconnect: () => {
      throw new Error("hook failure");
    },
    logger: () => {},
  });
  const srv = await listen(handlers);
  const c = await connect(srv.url({}));
  assert.equal(server.clientCount, 1);
  await c.close();
  for (let i = 0; i < 50 && server.clientCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(server.clientCount, 0);
  srv.close();
});

test("Server.createClient rejects bad arguments clearly", async () => {
  const server = new Server({ storage: new MemoryDocumentStorage() });
  await assert.rejects(server.createClient({}, {}, "x"), /transport must have send/);
  const t = { send() {}, onMessage: () => () => {} };
  await assert.rejects(server.createClient(t, {}, ""), /client id/);
  await assert.rejects(server.createClient(t, { big: 1n }, "y"), /JSON-serialisable/);
  await server.createClient(t, {}, "z");
  await assert.rejects(server.createClient(t, {}, "z"), /already exists/);
});

test("frames sent while a slow onConnect runs are delivered once it finishes, in order", async () => {
  const server = new Server({ storage: new MemoryDocumentStorage(), permissions: "none", logger: () => {} });
  const handlers = getWebsocketHandlers({
    onUpgrade: () => ({ context: { userId: "u", room: "r" } }),
    onConnect: async ({ transport, context, id }) => {
      await new Promise((r) => setTimeout(r, 200)); // e.g. a database lookup
      await server.createClient(transport, context, id);
    },
    onDisconnect: (id) => server.disconnectClient(id),
  });
  const srv = await listen(handlers);
  const c = await connect(srv.url({}));
  c.send(frames.syncStep1);
  c.send(frames.ping);
  await c.waitFor((f) => toHex(f) === toHex(frames.pong), { what: "pong" });
  await c.waitDecoded((m) => m.type === "ack", "ack of the sync-step-1");
  // The pong may overtake the document's replies (they wait for its load, spec 3.6 allows it);
  // the document's own replies keep their order.
  const { decodeMessage } = await import("teleportal/protocol");
  const doc = c.received.filter((f) => toHex(f) !== toHex(frames.pong)).map((f) => decodeMessage(f).payload.type);
  assert.deepEqual(doc, ["sync-step-2", "sync-step-1", "ack"]);
  assert.equal(c.received.length, 4, "the three replies and the pong");
  await c.close();
  srv.close();
});

test("frames a transport keeps stay intact, also when a send disconnects a client mid fan-out", async () => {
  const server = new Server({ storage: new MemoryDocumentStorage(), permissions: "none", logger: () => {} });
  const transport = (id, onFrame) => {
    const listeners = new Set();
    return {
      id,
      received: [],
      send(frame) {
        this.received.push(frame); // kept, never copied here
        onFrame?.(frame);
      },
      onMessage: (l) => (listeners.add(l), () => listeners.delete(l)),
      deliver: (frame) => listeners.forEach((l) => l(frame)),
    };
  };
  let dropped = false;
  const quitter = transport("quitter", (frame) => {
    // A relay reaches this client first: it leaves at once (a core call while the fan-out runs).
    if (!dropped && toHex(frame) === toHex(frames.update)) (dropped = true), server.disconnectClient("quitter");
  });
  const reader = transport("reader");
  const writer = transport("writer");
  for (const t of [quitter, reader, writer]) await server.createClient(t, { room: "r" }, t.id);
  for (const t of [quitter, reader, writer]) t.deliver(frames.syncStep1);
  await server.flushed();
  writer.deliver(frames.update);
  await server.flushed();
  assert.ok(dropped, "the quitter got the relay and left");
  assert.ok(reader.received.some((f) => toHex(f) === toHex(frames.update)), "the reader got the update, intact");
  const snapshot = reader.received.map(toHex);
  writer.deliver(frames.syncStep1); // more core calls: what the transports kept does not change
  await server.flushed();
  assert.deepEqual(reader.received.slice(0, snapshot.length).map(toHex), snapshot);
  await server.close();
});

test("the token manager's allowMissingDocumentAccess reaches the Server's permission gate", async () => {
  for (const allow of [false, true]) {
    const tokenManager = createTokenManager({ secret: "compat-secret", allowMissingDocumentAccess: allow });
    const server = new Server({ tokenManager, storage: new MemoryDocumentStorage(), logger: () => {} });
    const handlers = getWebsocketHandlers({
      // The seed's context: userId, room and the token, no documentAccess.
      onUpgrade: async (request) => ({ context: { userId: "legacy", room: "r", token: new URL(request.url).searchParams.get("token") } }),
      onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
      onDisconnect: (id) => server.disconnectClient(id),
    });
    const srv = await listen(handlers);
    const { SignJWT } = await import("jose");
    const legacy = await new SignJWT({ userId: "legacy", room: "r" }).setProtectedHeader({ alg: "HS256" })
      .setIssuer("teleportal").setAudience("teleportal").setExpirationTime("1h").sign(new TextEncoder().encode("compat-secret"));
    const c = await connect(srv.url({ token: legacy }));
    c.send(frames.syncStep1);
    const reply = await c.waitDecoded((m) => m.type === "ack" || m.payload.type === "auth-message", "reply");
    assert.equal(reply.type === "ack", allow, allow ? "allowed with the compatibility switch" : "denied by default");
    await c.close();
    srv.close();
    await server.close();
  }
});

test("a flooding client gets retryAfter NACKs; another client keeps being served", async () => {
  const tokenManager = createTokenManager({ secret: "rate-secret" });
  const server = new Server({ tokenManager, storage: new MemoryDocumentStorage(), logger: () => {}, tickIntervalMs: 100,
    rateLimit: { perConnection: 20, perConnectionBurst: 20, perUser: 1000, perUserBurst: 1000 } });
  const handlers = getWebsocketHandlers({
    tokenManager,
    onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
    onDisconnect: (id) => server.disconnectClient(id),
  });
  const srv = await listen(handlers);
  const access = [{ pattern: "*", permissions: ["read", "write"] }];
  const flood = await connect(srv.url({ token: await tokenManager.generateToken("flood", "r", access) }));
  const calm = await connect(srv.url({ token: await tokenManager.generateToken("calm", "r", access) }));
  for (let i = 0; i < 200; i++) flood.send(frames.syncStep1);
  const nack = await flood.waitDecoded((m) => m.type === "ack" && m.payload.retryAfter !== undefined, "a retryAfter NACK");
  assert.equal(nack.payload.retryAfter, 1000);
  calm.send(frames.syncStep1);
  await calm.waitDecoded((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6", "the calm client is served");
  await new Promise((r) => setTimeout(r, 300)); // buckets refill
  flood.received.length = 0;
  flood.send(frames.ping);
  flood.send(frames.syncStep1);
  await flood.waitDecoded((m) => m.type === "ack" && m.payload.retryAfter === undefined, "served again after the refill");
  await Promise.all([flood.close(), calm.close()]);
  srv.close();
  await server.close();
});
