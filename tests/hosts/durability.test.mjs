// Durable documents on the real servers: SIGKILL in a write storm (Bun and Node), unload and
// reload, failing storage. Every acknowledged update must survive; nothing unstored is relayed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { getWebsocketHandlers } from "teleportal/websocket-server";
import { Server } from "teleportal/server";
import { MemoryDocumentStorage } from "teleportal/storage";
import { createTokenManager } from "teleportal/token";
import { runStorm } from "./storm.mjs";
import { connect, frames, mintToken, SECRET, toHex } from "./suite.mjs";
import { YClient, until, Y } from "./yclient.mjs";

for (const runtime of ["bun", "node"]) {
  test(`${runtime}: SIGKILL during a write storm, 20 rounds: every acknowledged update is there`, { timeout: 240_000 }, async () => {
    const result = await runStorm({ runtime, rounds: 20 });
    assert.deepEqual(result.lost, [], "acknowledged updates missing after a restart");
    assert.ok(result.acked > 100, `the storm wrote something (${result.acked} acknowledged of ${result.sent} sent)`);
  });
}

async function inProcess(serverOptions) {
  const server = new Server({ tokenManager: createTokenManager({ secret: SECRET }), tickIntervalMs: 50, logger: () => {}, ...serverOptions });
  const handlers = getWebsocketHandlers({
    secret: SECRET,
    onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
    onDisconnect: (id) => server.disconnectClient(id),
  });
  const http = createServer();
  http.on("upgrade", (req, socket, head) => handlers.upgrade(req, socket, head));
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  const url = async (userId, room = "room-1") => `ws://127.0.0.1:${http.address().port}/?token=${await mintToken({ userId, room })}`;
  return { server, url, async stop() { await handlers.shutdown(); await server.close(); http.close(); } };
}

test("documents unload when their last client leaves and reload with the same state", async () => {
  const storage = new MemoryDocumentStorage();
  const srv = await inProcess({ storage, unloadAfterMs: 0 });
  const a = await YClient.open(await srv.url("a"), "notes");
  await a.synced;
  a.doc.getText("t").insert(0, "kept across unloads");
  a.doc.getMap("m").set("n", 42);
  await until(() => a.acks.size >= 3, { what: "acks" });
  const sv = Y.encodeStateVector(a.doc);
  await a.close();
  await until(() => srv.server.documentCount === 0, { what: "the document unloads" });
  assert.ok(storage.keys().includes("room-1/notes"));
  const b = await YClient.open(await srv.url("b"), "notes");
  await b.synced;
  await until(() => b.doc.getText("t").toString() === "kept across unloads", { what: "reloaded content" });
  assert.deepEqual(Y.encodeStateVector(b.doc), sv, "same state vector after the reload");
  assert.equal(b.doc.getMap("m").get("n"), 42);
  assert.equal(srv.server.documentCount, 1);
  await b.close();
  await srv.stop();
});

test("a failing storage write NACKs the update, relays nothing, and the server keeps serving", async () => {
  const storage = new MemoryDocumentStorage();
  let failing = false;
  const flaky = {
    load: (key) => storage.load(key),
    commit: (writes) => {
      if (failing) throw new Error("SQLITE_FULL: database or disk is full");
      return storage.commit(writes);
    },
    compact: (key, merge) => storage.compact(key, merge),
    delete: (key) => storage.delete(key),
  };
  const srv = await inProcess({ storage: flaky });
  const writer = await connect(await srv.url("w"));
  const reader = await connect(await srv.url("r"));
  for (const c of [writer, reader]) {
    c.send(frames.syncStep1);
    await c.waitDecoded((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6");
  }
  failing = true;
  writer.send(frames.update);
  const nack = await writer.waitDecoded((m) => m.type === "ack" && m.payload.messageId === frames.updateId, "NACK");
  assert.equal(nack.payload.error, "Storage write failed: SQLITE_FULL: database or disk is full");
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(!reader.received.some((f) => toHex(f) === toHex(frames.update)), "nothing unstored was relayed");
  failing = false;
  writer.received.length = 0;
  writer.send(frames.update);
  await reader.waitFor((f) => toHex(f) === toHex(frames.update), { what: "relay once stored" });
  const ack = await writer.waitDecoded((m) => m.type === "ack" && m.payload.messageId === frames.updateId, "ack");
  assert.equal(ack.payload.error, undefined);
  assert.equal(storage.load("room-1/doc").length, 1);
  await Promise.all([writer.close(), reader.close()]);
  await srv.stop();
});

test("a failing load NACKs with retryAfter and the next attempt succeeds", async () => {
  const storage = new MemoryDocumentStorage();
  let fail = true;
  const srv = await inProcess({
    storage: { ...Object.fromEntries(["commit", "compact", "delete"].map((k) => [k, storage[k].bind(storage)])),
      load: async (key) => { if (fail) throw new Error("database is locked"); return storage.load(key); } },
  });
  const c = await connect(await srv.url("a"));
  c.send(frames.syncStep1);
  const nack = await c.waitDecoded((m) => m.type === "ack", "NACK");
  assert.equal(nack.payload.error, "Failed to load document: database is locked");
  assert.equal(nack.payload.retryAfter, 1000);
  fail = false;
  c.received.length = 0;
  c.send(frames.syncStep1);
  await c.waitDecoded((m) => m.type === "doc" && m.payload.type === "sync-step-2", "served after the retry");
  await c.close();
  await srv.stop();
});
