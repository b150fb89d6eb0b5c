// The product's operations surface (host-bun/serve.js under Bun and Node): GET /metrics read
// before and after real traffic (the counters moved as they should), GET /health with a working
// and a broken storage, structured JSON logs and TELEPORTAL_LOG_LEVEL, and `teleportal stats` (the
// native CLI) reading our real /metrics.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SECRET, connect, frames, mintToken } from "./suite.mjs";
import { until } from "./yclient.mjs";
import { decodeMessage } from "teleportal/protocol";

const serveJs = fileURLToPath(new URL("../../host-bun/serve.js", import.meta.url));
const runtimes = {
  bun: fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url)),
  node: process.execPath,
};
const cli = fileURLToPath(new URL("../../build/native/teleportal", import.meta.url));

async function start(runtime, env = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tp-obs-"));
  const child = spawn(runtimes[runtime], [serveJs], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", TELEPORTAL_SECRET: SECRET, TELEPORTAL_DB: join(dir, "db", "t.sqlite"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  await until(() => /listening on ws:\/\/([^/]+)\//.test(stdout) || child.exitCode !== null, { timeout: 15000, what: `${runtime} serve.js` });
  if (child.exitCode !== null) throw new Error(stdout + stderr);
  const host = stdout.match(/listening on ws:\/\/([^/]+)\//)[1];
  return {
    dir,
    http: `http://${host}`,
    ws: `ws://${host}/`,
    stderr: () => stderr,
    async stop() {
      child.kill("SIGTERM");
      await once(child, "exit");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GET /metrics as a Map of sample (name with labels) -> value; checks the text format on the way. */
async function scrape(srv) {
  const res = await fetch(`${srv.http}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  const samples = new Map();
  const typed = new Set();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (teleportal_\w+) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE") {
        assert.ok(!typed.has(meta[2]), `one TYPE line per family: ${meta[2]}`);
        assert.match(meta[3], /^(counter|gauge|histogram)$/);
        typed.add(meta[2]);
      }
      continue;
    }
    const m = /^(teleportal_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    samples.set(m[1], Number(m[2]));
  }
  return { samples, text, typed };
}

const delta = (before, after) => (name) => (after.samples.get(name) ?? 0) - (before.samples.get(name) ?? 0);

const decoded = (f) => {
  try {
    return decodeMessage(f);
  } catch {
    return null;
  }
};
const ackFor = (id) => (f) => decoded(f)?.type === "ack" && decoded(f).payload.messageId === id;

for (const runtime of ["bun", "node"]) {
  test(`${runtime}: /metrics counters move with traffic (connections, messages by type, acks, NACK reasons, storage writes, upgrades, closes)`, async () => {
    const srv = await start(runtime);
    try {
      const before = await scrape(srv);
      for (const family of ["teleportal_clients_active", "teleportal_messages_total", "teleportal_storage_operation_duration_seconds", "teleportal_nacks_total"]) {
        assert.ok(before.typed.has(family), `${family} is rendered`);
      }

      const refused = await connect(srv.ws).then(() => null, (e) => e);
      assert.equal(refused.status, 401);
      const writer = await connect(`${srv.ws}?token=${await mintToken({ userId: "w" })}`);
      const reader = await connect(`${srv.ws}?token=${await mintToken({ userId: "r", documentAccess: [{ pattern: "*", permissions: ["read"] }] })}`);
      const during = await scrape(srv);
      assert.equal(during.samples.get("teleportal_clients_active"), 2);

      writer.send(frames.syncStep1);
      reader.send(frames.syncStep1);
      const syncId = decoded(frames.syncStep1).id;
      await writer.waitFor(ackFor(syncId), { what: "writer's sync ack" });
      await reader.waitFor(ackFor(syncId), { what: "reader's sync ack" });
      writer.send(frames.update);
      await writer.waitFor(ackFor(frames.updateId), { what: "update ack" });
      await reader.waitFor((f) => decoded(f)?.payload?.type === "update", { what: "relayed update" });
      reader.send(frames.update); // read-only: denied
      await reader.waitFor((f) => decoded(f)?.payload?.type === "auth-message", { what: "denial" });
      writer.send(frames.ping);
      writer.send(Uint8Array.from([0x59, 0x4a, 0x53, 0x01, 0xff])); // not a Teleportal message
      // Past the connection's burst (5000): awareness for a document nobody else reads.
      const awareness = decoded(frames.awareness);
      const flood = Buffer.from(frames.awareness);
      flood[6] = "x".charCodeAt(0); // document "dxc": same length, nobody else there
      for (let i = 0; i < 8000; i++) writer.send(flood);
      assert.equal(awareness.type, "awareness");

      await until(async () => delta(before, await scrape(srv))('teleportal_nacks_total{reason="rate_limited"}') >= 1, { timeout: 10000, what: "rate-limited NACKs" });
      await writer.close();
      await reader.close();
      await until(async () => (await scrape(srv)).samples.get("teleportal_clients_active") === 0, { what: "clients gone" });

      const after = await scrape(srv);
      const d = delta(before, after);
      assert.equal(d('teleportal_upgrades_total{outcome="accepted",code="101"}'), 2);
      assert.equal(d('teleportal_upgrades_total{outcome="rejected",code="401"}'), 1);
      assert.equal(d("teleportal_clients_connected_total"), 2);
      assert.equal(d("teleportal_clients_disconnected_total"), 2);
      assert.equal(d('teleportal_websocket_closes_total{code="1000"}'), 2);
      assert.equal(d('teleportal_messages_total{type="doc"}'), 4);
      assert.equal(d('teleportal_messages_total{type="ping"}'), 1);
      assert.equal(d('teleportal_messages_total{type="invalid"}'), 1);
      assert.equal(d('teleportal_messages_total{type="awareness"}'), 8000);
      assert.equal(d("teleportal_messages_total_all"), 8006);
      assert.equal(d('teleportal_messages_sent_total{type="pong"}'), 1);
      assert.ok(d('teleportal_messages_sent_total{type="doc"}') >= 5, "sync replies and the relay");
      assert.ok(d("teleportal_bytes_received_total") > 8000 * flood.length);
      assert.ok(d("teleportal_acks_total") >= 3 + 4000, "syncs, the update, the awareness before the limit");
      assert.equal(d('teleportal_nacks_total{reason="permission"}'), 1);
      assert.equal(d('teleportal_nacks_total{reason="invalid_frame"}'), 1);
      const limited = d('teleportal_nacks_total{reason="rate_limited"}');
      assert.ok(limited >= 1, `rate limited: ${limited}`);
      assert.equal(d("teleportal_rate_limit_exceeded_total"), limited);
      assert.equal(d("teleportal_documents_opened_total"), 2);
      assert.equal(d('teleportal_storage_batches_total{result="committed"}'), d('teleportal_storage_operations_total{operation="commit",result="ok"}'));
      assert.ok(d('teleportal_storage_batches_total{result="committed"}') >= 1);
      assert.ok(d("teleportal_storage_entries_written_total") >= 1);
      const commits = d('teleportal_storage_operation_duration_seconds_count{operation="commit"}');
      assert.ok(commits >= 1);
      assert.equal(d('teleportal_storage_operation_duration_seconds_bucket{operation="commit",le="+Inf"}'), commits);
      assert.ok(after.samples.get('teleportal_storage_operation_duration_seconds_sum{operation="commit"}') > 0);
      assert.equal(d('teleportal_storage_operations_total{operation="load",result="ok"}'), 2);
    } finally {
      await srv.stop();
    }
  });

  test(`${runtime}: /health is 200 with working storage, 503 naming the storage once its database is gone`, async () => {
    const srv = await start(runtime);
    try {
      let res = await fetch(`${srv.http}/health`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type"), /^application\/json/);
      const ok = await res.json();
      assert.equal(ok.status, "healthy");
      assert.deepEqual(ok.checks, { storage: "ok" });
      assert.ok(!Number.isNaN(Date.parse(ok.timestamp)));
      assert.equal(typeof ok.uptime, "number");
      rmSync(join(srv.dir, "db"), { recursive: true, force: true });
      res = await fetch(`${srv.http}/health`);
      assert.equal(res.status, 503);
      const bad = await res.json();
      assert.equal(bad.status, "unhealthy");
      assert.match(bad.checks.storage, /the database file .*t\.sqlite is gone \(ENOENT\)/);
      assert.equal(bad.checks.redis, undefined, "no Redis configured, none reported");
    } finally {
      await srv.stop();
    }
  });
}

test("bun: logs are JSON lines on stderr ({ts, level, event, ...}); TELEPORTAL_LOG_LEVEL sets the threshold", async () => {
  const lines = (text) => text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  for (const [level, expectInfo] of [["info", true], ["warn", false]]) {
    const srv = await start("bun", { TELEPORTAL_LOG_LEVEL: level });
    try {
      const c = await connect(`${srv.ws}?token=${await mintToken({ userId: "u" })}`);
      c.send(Uint8Array.from([0x59, 0x4a, 0x53, 0x01, 0xff]));
      await c.waitFor((f) => decoded(f)?.type === "ack", { what: "NACK" });
      await c.close();
      await until(() => lines(srv.stderr()).some((l) => l.event === "invalid_frame"), { what: "the warn line" });
      const logged = lines(srv.stderr());
      for (const l of logged) {
        assert.equal(typeof l.ts, "string");
        assert.ok(!Number.isNaN(Date.parse(l.ts)), l.ts);
        assert.ok(["debug", "info", "warn", "error"].includes(l.level));
        assert.equal(typeof l.event, "string");
      }
      const invalid = logged.find((l) => l.event === "invalid_frame");
      assert.equal(invalid.level, "warn");
      assert.equal(typeof invalid.error, "string");
      if (expectInfo) {
        await until(() => lines(srv.stderr()).some((l) => l.event === "client_disconnect"), { what: "the disconnect line" });
        assert.ok(lines(srv.stderr()).some((l) => l.event === "websocket_upgrade" && l.level === "info" && l.status_code === 101));
      } else {
        assert.ok(logged.every((l) => l.level === "warn" || l.level === "error"), JSON.stringify(logged));
      }
    } finally {
      await srv.stop();
    }
  }
});

test("teleportal stats prints a table from our /metrics", { skip: !existsSync(cli) && "no native CLI build" }, async () => {
  const srv = await start("bun");
  try {
    const c = await connect(`${srv.ws}?token=${await mintToken({ userId: "u" })}`);
    c.send(frames.syncStep1);
    await c.waitFor(ackFor(decoded(frames.syncStep1).id), { what: "ack" });
    c.send(frames.update);
    await c.waitFor(ackFor(frames.updateId), { what: "update ack" });
    // spawnSync would block this process's event loop, not the server's (another process).
    const r = spawnSync(cli, ["stats", srv.http], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^METRIC\s+TYPE\s+LABELS\s+VALUE/);
    assert.match(r.stdout, /\nteleportal_clients_active\s+gauge\s+-\s+1\n/);
    assert.match(r.stdout, /\nteleportal_messages_total\s+counter\s+type="doc"\s+2\n/);
    assert.match(r.stdout, /\nteleportal_storage_operation_duration_seconds\s+histogram\s+operation="commit"\s+count=[1-9]\d* sum=\S+ mean=\S+ p50=\S+ p99=\S+/);
    const json = spawnSync(cli, ["stats", "--json", "--filter", "teleportal_acks", srv.http], { encoding: "utf8" });
    assert.equal(json.status, 0, json.stderr);
    assert.match(json.stdout, /teleportal_acks_total/);
    assert.doesNotMatch(json.stdout, /teleportal_clients_active/);
    await c.close();
  } finally {
    await srv.stop();
  }
});
