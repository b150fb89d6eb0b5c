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
    const before = await host.stats("seed", room);
    // Evict every Durable Object instance, as hibernation does; the sockets stay open.
    await host.evict();
    const woken = await host.stats("seed", room);
    assert.ok(woken.constructed > before.constructed || woken.restored === 0, "a fresh object answers");
    for (const c of [a, b]) {
      c.send(frames.syncStep1);
      await c.waitDecoded((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6", "ack after wake-up");
    }
    a.send(frames.update);
    await b.waitFor((f) => toHex(f) === toHex(frames.update), { what: "relay after wake-up" });
    const after = await eventually(async () => {
      const s = await host.stats("seed", room);
      return s.restored >= 2 ? s : null;
    }, { what: "restored connections" });
    const restored = after.connects.filter((c) => c.restored);
    assert.ok(restored.some((c) => c.context.userId === "sleeper" && c.context.custom.plan === "pro"));
    await Promise.all([a.close(), b.close()]);
  });
});
