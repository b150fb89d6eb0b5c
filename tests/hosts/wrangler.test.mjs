// host-workers/ is deployable as shipped: `wrangler deploy --dry-run` bundles worker.js + wrangler.toml
// exactly as a deploy would, and that very bundle, run in workerd, syncs real Y.Docs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { mintToken } from "./suite.mjs";
import { YClient, until } from "./yclient.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const wrangler = join(root, "tests/node_modules/.bin/wrangler");

test("wrangler bundles host-workers/ and the bundle serves Y.js sync in workerd", async () => {
  const outdir = join(root, "build/wrangler-out");
  rmSync(outdir, { recursive: true, force: true });
  const log = execFileSync(wrangler, ["deploy", "--dry-run", "--outdir", outdir], {
    cwd: join(root, "host-workers"),
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" },
    encoding: "utf8",
  });
  assert.match(log, /env\.ROOMS \(TeleportalRoom\)\s+Durable Object/);
  const files = readdirSync(outdir);
  const mf = new Miniflare({
    modulesRoot: outdir,
    modules: [
      { type: "ESModule", path: join(outdir, "worker.js") },
      ...files.filter((f) => f.endsWith(".wasm")).map((f) => ({ type: "CompiledWasm", path: join(outdir, f) })),
    ],
    compatibilityDate: "2026-04-01",
    durableObjects: { ROOMS: { className: "TeleportalRoom", useSQLite: true } },
    bindings: { TELEPORTAL_SECRET: "deployed-secret" },
    host: "127.0.0.1",
    port: 0,
  });
  try {
    const base = (await mf.ready).host;
    const url = async (user) =>
      `ws://${base}/?room=r1&token=${await mintToken({ userId: user, room: "r1" }, { secret: "deployed-secret" })}`;
    const a = await YClient.open(await url("alice"), "doc");
    const b = await YClient.open(await url("bob"), "doc");
    await Promise.all([a.synced, b.synced]);
    a.doc.getText("t").insert(0, "deployed");
    await until(() => b.doc.getText("t").toString() === "deployed", { what: "sync through the wrangler bundle" });
    const res = await fetch(`http://${base}/`);
    assert.equal(res.status, 426);
    // The deployed Worker routes the HTTP/SSE transport to the room's object too.
    const { TeleportalProvider } = await import("teleportal/provider");
    const overHttp = new TeleportalProvider({ url: `ws://${base}/`, token: await mintToken({ userId: "carol", room: "r1" }, { secret: "deployed-secret" }), transports: ["http"] });
    try {
      const c = overHttp.open("doc");
      await c.synced;
      await until(() => c.doc.getText("t").toString() === "deployed", { what: "the document over HTTP/SSE" });
      c.doc.getText("t").insert(0, "sse+");
      await until(() => b.doc.getText("t").toString() === "sse+deployed", { what: "an HTTP client's edit reaches a WebSocket client" });
    } finally {
      overHttp.destroy();
    }
    await Promise.all([a.close(), b.close()]);
  } finally {
    await mf.dispose();
  }
});
