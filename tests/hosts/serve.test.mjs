// scripts/serve's server (host-bun/serve.js) as a user runs it: prints a URL and a token that
// work, enforces the token, and stops cleanly on SIGTERM and SIGINT.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, frames, toHex } from "./suite.mjs";
import { YClient, until } from "./yclient.mjs";

const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
const serve = fileURLToPath(new URL("../../host-bun/serve.js", import.meta.url));

async function start(env = {}, runtime = bun) {
  const db = join(mkdtempSync(join(tmpdir(), "tp-serve-")), "serve.sqlite");
  const child = spawn(runtime, [serve], { env: { ...process.env, PORT: "0", TELEPORTAL_SECRET: "", TELEPORTAL_DB: db, ...env } });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  await until(() => /Connect: (ws:\S+)/.test(out), { timeout: 10000, what: "the server banner" });
  return { child, url: out.match(/Connect: (ws:\S+)/)[1], base: out.match(/listening on (ws:\S+)/)[1], output: () => out };
}

for (const signal of ["SIGTERM", "SIGINT"]) {
  test(`serve: the printed token works; ${signal} closes clients and exits 0`, async () => {
    const srv = await start();
    const a = await YClient.open(srv.url, "doc");
    const b = await YClient.open(srv.url, "doc");
    await Promise.all([a.synced, b.synced]);
    a.doc.getText("t").insert(0, "served");
    await until(() => b.doc.getText("t").toString() === "served", { what: "sync through scripts/serve" });
    const refused = await connect(srv.base).then(() => null, (e) => e);
    assert.equal(refused.status, 401, "no token, no connection");
    const closed = a.client.closed;
    srv.child.kill(signal);
    const [code] = await once(srv.child, "exit");
    assert.equal(code, 0, srv.output());
    assert.equal((await closed).code, 1001);
  });
}

test("serve: TELEPORTAL_SECRET is honoured (tokens signed with another secret are refused)", async () => {
  const srv = await start({ TELEPORTAL_SECRET: "configured-secret" });
  assert.doesNotMatch(srv.output(), /generated development secret/);
  assert.match(srv.output(), /Storing documents in SQLite at \S+serve.sqlite \(WAL, synchronous=NORMAL\)/);
  const c = await connect(srv.url);
  c.send(frames.ping);
  await c.waitFor((f) => toHex(f) === toHex(frames.pong), { what: "pong" });
  await c.close();
  srv.child.kill("SIGTERM");
  await once(srv.child, "exit");
});

for (const [name, runtime] of [["Bun", bun], ["Node", process.execPath]]) {
  test(`serve (${name}): the HTTP/SSE transport on the same port syncs with a WebSocket client; SIGTERM ends the stream`, async () => {
    const srv = await start({}, runtime);
    const { TeleportalProvider } = await import("teleportal/provider");
    const WebSocket = (await import("ws")).default;
    const token = new URL(srv.url).searchParams.get("token");
    const url = srv.base;
    const overHttp = new TeleportalProvider({ url, token, transports: ["http"] });
    const overWs = new TeleportalProvider({ url, token, WebSocket, transports: ["websocket"] });
    try {
      const a = overHttp.open("served-doc");
      const b = overWs.open("served-doc");
      await Promise.all([a.synced, b.synced]);
      assert.equal(overHttp.transport, "http");
      a.doc.getText("t").insert(0, "sse ");
      b.doc.getText("t").insert(0, "ws ");
      await until(() => a.doc.getText("t").toString() === b.doc.getText("t").toString() && a.doc.getText("t").length === 7, { what: "convergence" });
      await overHttp.flush();
      const statuses = [];
      overHttp.on("status", (s) => statuses.push(s));
      srv.child.kill("SIGTERM");
      const [code] = await once(srv.child, "exit");
      assert.equal(code, 0, srv.output());
      await until(() => statuses.includes("disconnected"), { what: "the stream ended" });
    } finally {
      overHttp.destroy();
      overWs.destroy();
    }
  });
}

