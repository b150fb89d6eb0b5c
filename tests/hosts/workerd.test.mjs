import { test } from "node:test";
import assert from "node:assert/strict";
import { defineHostSuite, frames, mintToken, connect, toHex, eventually } from "./suite.mjs";
import { startWorkerdHost } from "./workerd-host.mjs";

defineHostSuite("Cloudflare Workers host (workerd, Durable Objects)", () => startWorkerdHost(), (getHost) => {
  test("a Durable Object exposes its counters at GET /metrics (the names of the Bun and Node server)", async () => {
    const host = getHost();
    const room = `metrics-${Date.now()}`;
    const metricsUrl = host.url("seed", { room }).replace(/^ws:/, "http:").replace("/?", "/metrics?");
    const scrape = async () => {
      const res = await fetch(metricsUrl);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
      const text = await res.text();
      assert.match(text, /# TYPE teleportal_messages_total counter\n/);
      return (name) => Number(text.split("\n").find((l) => l.startsWith(`${name} `))?.slice(name.length + 1) ?? 0);
    };
    const before = await scrape();
    const token = await mintToken({ userId: "m", room });
    const denied = await connect(host.url("seed", { token, room, mode: "response" })).then(() => null, (e) => e);
    assert.equal(denied.status, 403);
    const anonymous = await connect(host.url("seed", { room })).then(() => null, (e) => e);
    assert.equal(anonymous.status, 401);
    const c = await connect(host.url("seed", { token, room }));
    c.send(frames.syncStep1);
    await c.waitDecoded((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6", "sync ack");
    c.send(frames.update);
    await c.waitDecoded((m) => m.type === "ack" && m.payload.messageId === frames.updateId, "update ack");
    await c.close();
    const after = await eventually(async () => {
      const m = await scrape();
      return m("teleportal_clients_active") === 0 ? m : null;
    }, { what: "the client gone" });
    const d = (name) => after(name) - before(name);
    assert.equal(d('teleportal_upgrades_total{outcome="accepted",code="101"}'), 1);
    assert.equal(d('teleportal_upgrades_total{outcome="rejected",code="403"}'), 1);
    assert.equal(d('teleportal_upgrades_total{outcome="rejected",code="401"}'), 1);
    assert.equal(d('teleportal_messages_total{type="doc"}'), 2);
    assert.equal(d("teleportal_acks_total"), 2);
    assert.equal(d("teleportal_clients_connected_total"), 1);
    assert.equal(d('teleportal_websocket_closes_total{code="1000"}'), 1);
    assert.equal(d('teleportal_storage_batches_total{result="committed"}'), 1);
    assert.equal(d('teleportal_storage_operation_duration_seconds_count{operation="commit"}'), 1);
    assert.equal(d("teleportal_documents_opened_total"), 1);
  });

  test("a connection survives hibernation: context restored from the socket attachment", async () => {
    const host = getHost();
    const room = `hib-${Date.now()}`;
    const token = await mintToken({ userId: "sleeper", room });
    const a = await connect(host.url("seed", { token, room }));
    const b = await connect(host.url("seed", { token: await mintToken({ userId: "peer", room }), room }));
    for (const c of [a, b]) {
      c.send(frames.syncStep1);
      await c.waitDecoded((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6", "ack before sleeping");
      c.received.length = 0;
    }
    const before = await host.stats("seed", room);
    assert.equal(before.connects.filter((c) => c.restored && c.context.room === room).length, 0);
    // workerd evicts a Durable Object whose only activity is hibernatable sockets after 10 s idle (15 s leaves margin on a loaded machine).
    await new Promise((r) => setTimeout(r, 15_000));
    // Only `a` speaks after the wake-up: `b` only listens and must still receive relays (its
    // membership came back from its attachment when the fresh object started).
    a.send(frames.syncStep1);
    await a.waitDecoded((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6", "ack after wake-up");
    a.send(frames.update);
    await b.waitFor((f) => toHex(f) === toHex(frames.update), { what: "relay to a listener after wake-up" });
    // Both sockets were re-attached from their attachments by a fresh object (no re-authentication).
    const after = await eventually(async () => {
      const s = await host.stats("seed", room);
      return s.connects.filter((c) => c.restored && c.context.room === room).length >= 2 ? s : null;
    }, { what: "restored connections" });
    assert.ok(after.constructed > before.constructed, "a new object instance served the woken sockets");
    const restored = after.connects.filter((c) => c.restored && c.context.room === room);
    assert.ok(restored.some((c) => c.context.userId === "sleeper" && c.context.custom.plan === "pro"));
    await Promise.all([a.close(), b.close()]);
  });

  test("documents survive eviction: a fresh object restores them from durable storage", async () => {
    const { YClient, until } = await import("./yclient.mjs");
    const host = getHost();
    const room = `persist-${Date.now()}`;
    const url = async (user) => host.url("seed", { token: await mintToken({ userId: user, room }), room });
    const a = await YClient.open(await url("writer"), "notes");
    await a.synced;
    for (let i = 0; i < 40; i++) a.doc.getText("t").insert(a.doc.getText("t").length, `line ${i}\n`);
    a.doc.getMap("m").set("k", "v");
    a.doc.getText("big").insert(0, "x".repeat(1_300_000)); // stored in two 1 MiB parts
    const expected = a.doc.getText("t").toString();
    // The server has everything once the last update is acked.
    await until(() => a.acks.size >= 44, { what: "acks for every update" });
    await a.close();
    const before = await host.stats("seed", room);
    await new Promise((r) => setTimeout(r, 15_000)); // idle object is evicted after 10 s
    const b = await YClient.open(await url("reader"), "notes");
    await b.synced;
    await until(() => b.doc.getText("t").toString() === expected, { what: "state restored from storage" });
    assert.equal(b.doc.getMap("m").get("k"), "v");
    assert.equal(b.doc.getText("big").length, 1_300_000);
    const after = await host.stats("seed", room);
    assert.ok(after.constructed > before.constructed, "served by a new object instance");
    await b.close();
  });

  test("one Worker URL for every room: the verified token's room picks the object", async () => {
    const host = getHost();
    const room = `routed-${Date.now()}`;
    const token = async (userId) => mintToken({ userId, room });
    // The URL names another room (or none): the token decides.
    const a = await connect(host.url("builtin", { token: await token("a"), room: "room-a" }));
    const b = await connect(host.url("builtin", { token: await token("b") }).replace(/&?room=[^&]*/, ""));
    for (const c of [a, b]) {
      c.send(frames.syncStep1);
      await c.waitDecoded((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6", "joined");
    }
    a.send(frames.update);
    await b.waitFor((f) => toHex(f) === toHex(frames.update), { what: "both in the token's room" });
    // A path that is not valid percent-encoding is a clear 400 (the reference answered 500).
    const bad = await connect(host.url("seed", { token: await token("x") }).replace("/?", "/%E0%A4%A?").replace(/&?room=[^&]*/, "")).then(() => null, (e) => e);
    assert.equal(bad?.status, 400);
    assert.match(bad.body, /not valid percent-encoding/);
    // A bad token is refused at the edge, before any object is involved.
    const err = await connect(host.url("builtin", { token: "not-a-token", room })).then(() => null, (e) => e);
    assert.equal(err?.status, 401);
    await Promise.all([a.close(), b.close()]);
  });
}, { backpressure: false });
