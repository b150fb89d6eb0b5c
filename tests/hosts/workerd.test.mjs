import { test } from "node:test";
import assert from "node:assert/strict";
import { defineHostSuite, frames, mintToken, connect, toHex, eventually } from "./suite.mjs";
import { startWorkerdHost } from "./workerd-host.mjs";

defineHostSuite("Cloudflare Workers host (workerd, Durable Objects)", () => startWorkerdHost(), (getHost) => {
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
    // workerd evicts a Durable Object whose only activity is hibernatable sockets after 10 s idle.
    await new Promise((r) => setTimeout(r, 12_000));
    for (const c of [a, b]) {
      c.send(frames.syncStep1);
      await c.waitDecoded((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6", "ack after wake-up");
    }
    a.send(frames.update);
    await b.waitFor((f) => toHex(f) === toHex(frames.update), { what: "relay after wake-up" });
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
}, { backpressure: false });
