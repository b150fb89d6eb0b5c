// server.on() events, server.health(), server.metrics() and the handlers' upgrade counters, in one
// Node process with real http + ws sockets and the wasm core.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { getWebsocketHandlers } from "teleportal/websocket-server";
import { Server } from "teleportal/server";
import { createTokenManager } from "teleportal/token";
import { MemoryDocumentStorage } from "teleportal/storage";
import { connect, frames } from "../hosts/suite.mjs";

const access = [{ pattern: "*", permissions: ["read", "write"] }];

async function setup({ storage = new MemoryDocumentStorage(), serverOptions = {}, handlerOptions = {} } = {}) {
  const tokens = createTokenManager({ secret: "obs-secret" });
  const logs = [];
  const logger = (level, event, fields) => logs.push({ level, event, ...fields });
  const server = new Server({ tokenManager: tokens, storage, unloadAfterMs: 0, logger, ...serverOptions });
  const handlers = getWebsocketHandlers({
    tokenManager: tokens,
    onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
    onDisconnect: (id) => server.disconnectClient(id),
    ...handlerOptions,
  });
  const http = createServer();
  http.on("upgrade", (req, socket, head) => handlers.upgrade(req, socket, head));
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  const url = async (user, query = {}) =>
    `ws://127.0.0.1:${http.address().port}/?${new URLSearchParams({ token: await tokens.generateToken(user, "room", access), ...query })}`;
  return { server, handlers, url, logs, close: () => http.close() };
}

const ack = (c, id) => c.waitDecoded((m) => m.type === "ack" && m.payload.messageId === id, `ack ${id}`);

test("server.on: connect, document-load, write, disconnect, document-unload, in that order, with their payloads", async () => {
  const { server, url, close } = await setup();
  const events = [];
  for (const e of ["connect", "disconnect", "document-load", "document-unload", "write", "error"]) {
    server.on(e, (payload) => events.push([e, payload]));
  }
  const c = await connect(await url("alice"));
  c.send(frames.syncStep1);
  await ack(c, "9bc4b470bbcb99a6");
  c.send(frames.update);
  await ack(c, frames.updateId);
  await c.close();
  await new Promise((r) => setTimeout(r, 50));
  await server.flushed();
  assert.deepEqual(events.map(([e]) => e), ["connect", "document-load", "write", "disconnect", "document-unload"]);
  const [, connected] = events[0];
  assert.equal(connected.context.userId, "alice");
  assert.equal(typeof connected.clientId, "string");
  assert.deepEqual(events[1][1], { documentId: "room/doc", entries: 0, skipped: 0 });
  const write = events[2][1];
  assert.deepEqual(write.documents, ["room/doc"]);
  assert.equal(write.entries, 1);
  assert.ok(write.bytes > 0);
  assert.equal(typeof write.ms, "number");
  assert.deepEqual(events[3][1], { clientId: connected.clientId });
  assert.deepEqual(events[4][1], { documentId: "room/doc" });
  assert.throws(() => server.on("nope", () => {}), { message: /unknown event "nope"/ });
  await server.close();
  close();
});

test("server.on('error'): a failing commit is an error event; a throwing listener is logged and nothing breaks; off() removes", async () => {
  const storage = new MemoryDocumentStorage();
  storage.commit = async () => {
    throw new Error("disk full");
  };
  const { server, url, logs, close } = await setup({ storage });
  const errors = [];
  const throwing = () => {
    throw new Error("listener bug");
  };
  server.on("error", (e) => errors.push(e));
  server.on("write", throwing);
  server.on("error", throwing);
  const c = await connect(await url("bob"));
  c.send(frames.syncStep1);
  await ack(c, "9bc4b470bbcb99a6");
  c.send(frames.update);
  const nack = await ack(c, frames.updateId);
  assert.equal(nack.payload.error, "Storage write failed: disk full");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].event, "storage_write_failed");
  assert.equal(errors[0].error, "disk full");
  const failed = logs.filter((l) => l.event === "event_listener_failed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0].listener_event, "error");
  assert.equal(failed[0].error, "listener bug");
  // The server still answers.
  server.off("error", throwing);
  c.send(frames.ping);
  await c.waitFor((f) => Buffer.from(f).toString() === "YJSpong", { what: "pong" });
  const text = server.metrics();
  assert.match(text, /^teleportal_nacks_total\{reason="storage_failed"\} 1$/m);
  assert.match(text, /^teleportal_storage_batches_total\{result="failed"\} 1$/m);
  assert.match(text, /^teleportal_storage_operations_total\{operation="commit",result="error"\} 1$/m);
  assert.match(text, /^teleportal_errors_total 1$/m);
  await c.close();
  await server.close();
  close();
});

test("server.health: ok, a rejecting ping, a ping that never answers (bounded), the cluster's ping", async () => {
  const storage = new MemoryDocumentStorage();
  const server = new Server({ storage, tickIntervalMs: 0 });
  assert.deepEqual(await server.health(), { ok: true, checks: { storage: "ok" } });
  storage.ping = async () => {
    throw new Error("connection refused");
  };
  assert.deepEqual(await server.health(), { ok: false, checks: { storage: "connection refused" } });
  storage.ping = () => new Promise(() => {});
  assert.deepEqual(await server.health({ timeoutMs: 50 }), { ok: false, checks: { storage: "no answer within 50 ms" } });
  await server.close();
  const cluster = { nodeId: "n", onMessage() {}, publish() {}, subscribe: async () => {}, unsubscribe: async () => {}, ping: async () => { throw new Error("redis down"); } };
  const clustered = new Server({ storage: new MemoryDocumentStorage(), cluster, tickIntervalMs: 0 });
  assert.deepEqual(await clustered.health(), { ok: false, checks: { storage: "ok", cluster: "redis down" } });
  await clustered.close();
});

test("metrics: one HELP and TYPE per family, upgrade outcomes 101 / 401 / 403, closes by code, histogram buckets", async () => {
  const { server, handlers, url, close } = await setup({
    handlerOptions: {
      acceptContext: (context, request) =>
        new URL(request.url, "http://x").searchParams.get("deny") ? new Response("Forbidden", { status: 403 }) : undefined,
    },
  });
  const forbidden = await connect(await url("carol", { deny: "1" })).then(() => null, (e) => e);
  assert.equal(forbidden.status, 403);
  const anonymous = await connect((await url("x")).replace(/token=[^&]+/, "token=bad")).then(() => null, (e) => e);
  assert.equal(anonymous.status, 401);
  const c = await connect(await url("carol"));
  c.send(frames.syncStep1);
  await ack(c, "9bc4b470bbcb99a6");
  c.send(frames.update);
  await ack(c, frames.updateId);
  c.ws.close(4000, "app");
  await c.closed;
  await new Promise((r) => setTimeout(r, 50));
  const text = server.metrics(handlers.metricSamples());
  const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]);
  assert.equal(new Set(families).size, families.length);
  assert.equal([...text.matchAll(/^# HELP /gm)].length, families.length);
  assert.match(text, /^teleportal_upgrades_total\{outcome="accepted",code="101"\} 1$/m);
  assert.match(text, /^teleportal_upgrades_total\{outcome="rejected",code="401"\} 1$/m);
  assert.match(text, /^teleportal_upgrades_total\{outcome="rejected",code="403"\} 1$/m);
  assert.match(text, /^teleportal_websocket_closes_total\{code="4000"\} 1$/m);
  assert.match(text, /^# TYPE teleportal_storage_operation_duration_seconds histogram$/m);
  assert.match(text, /^teleportal_storage_operation_duration_seconds_bucket\{operation="commit",le="0.001"\} \d+$/m);
  assert.match(text, /^teleportal_storage_operation_duration_seconds_bucket\{operation="commit",le="\+Inf"\} 1$/m);
  assert.match(text, /^teleportal_storage_operation_duration_seconds_count\{operation="commit"\} 1$/m);
  assert.match(text, /^teleportal_storage_operation_duration_seconds_sum\{operation="commit"\} [\d.e-]+$/m);
  assert.match(text, /^teleportal_messages_total\{type="doc"\} 2$/m);
  assert.match(text, /^teleportal_acks_total 2$/m);
  assert.match(text, /^teleportal_clients_active 0$/m);
  await server.close();
  close();
});
