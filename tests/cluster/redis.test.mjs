// teleportal/cluster against a real redis-server: binary messages byte for byte, channels held only
// while a document is loaded, subscriptions restored after the connection drops; the package
// without `redis` installed, and in workerd.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { createClient } from "redis";
import { connectRedisCluster } from "teleportal/cluster";
import { Server } from "teleportal/server";
import { MemoryDocumentStorage } from "teleportal/storage";
import { frames } from "../hosts/suite.mjs";
import { bundleWorker } from "../hosts/workerd-host.mjs";
import { until } from "../provider/helpers.mjs";
import { installPackedPackage } from "../support/package.mjs";
import { startRedis } from "../support/services.mjs";
import { runtimes } from "../hosts/storm.mjs";

/** @type {{ url: string, stop(): Promise<void> }} */
let redis;
/** @type {import("redis").RedisClientType} */
let admin;
const open = [];
const join_ = async (options) => {
  const c = await connectRedisCluster({ url: redis.url, logger: () => {}, ...options });
  open.push(c);
  return c;
};
const channels = async () => (await admin.sendCommand(["PUBSUB", "CHANNELS", "teleportal:doc:*"])).map(String).sort();

before(async () => {
  redis = await startRedis();
  admin = createClient({ url: redis.url });
  await admin.connect();
});
after(async () => {
  await Promise.allSettled(open.map((c) => c.close()));
  await admin?.close();
  await redis?.stop();
});

test("cluster: messages cross Redis byte for byte (every byte value, a view into a larger buffer)", async () => {
  const a = await join_({ nodeId: "a" });
  const b = await join_({ nodeId: "b" });
  const got = [];
  b.onMessage((key, message) => got.push({ key, bytes: Buffer.from(message).toString("hex") }));
  const key = "room é/doc:1";
  await b.subscribe(key);
  const all = Uint8Array.from({ length: 600 }, (_, i) => (i * 7) % 256);
  const message = all.subarray(5, 5 + 512);
  await a.publish(key, message);
  await until(() => got.length === 1, { what: "the message" });
  assert.deepEqual(got, [{ key, bytes: Buffer.from(message).toString("hex") }]);
  assert.deepEqual(await channels(), [`teleportal:doc:${key}`]);
  await b.unsubscribe(key);
  await a.publish(key, message);
  await a.ping();
  assert.deepEqual(await channels(), []);
  assert.equal(got.length, 1, "nothing after unsubscribe");
  assert.equal(a.heartbeatMs, 10_000);
  assert.equal(a.presenceTimeoutMs, 30_000);
  assert.match((await join_({})).nodeId, /^[0-9a-f-]{36}$/, "a random node id by default");
});

test("cluster: options are checked; an unreachable Redis is an error at start, not a hang", async () => {
  await assert.rejects(connectRedisCluster({ url: "" }), /needs a url/);
  const started = Date.now();
  await assert.rejects(connectRedisCluster({ url: "redis://127.0.0.1:1", connectTimeoutMs: 300, logger: () => {} }), /^Error: Redis did not answer within 300 ms \(.*ECONNREFUSED/);
  assert.ok(Date.now() - started < 2000);
  await assert.rejects(connectRedisCluster({ url: redis.url, heartbeatMs: 1000, presenceTimeoutMs: 500 }), /presenceTimeoutMs longer/);
});

test("cluster: a Server holds a document's channel only while the document is loaded", async () => {
  const cluster = await join_({ nodeId: "holder" });
  const server = new Server({ storage: new MemoryDocumentStorage(), cluster, permissions: "none", unloadAfterMs: 0, tickIntervalMs: 0, logger: () => {} });
  let deliver = () => {};
  const transport = { send() {}, onMessage: (listener) => ((deliver = listener), () => {}) };
  assert.deepEqual(await channels(), []);
  await server.createClient(transport, {}, "c1");
  deliver(frames.syncStep1);
  await until(async () => (await channels()).length === 1, { what: "the channel" });
  assert.match((await channels())[0], /^teleportal:doc:.*doc$/);
  await server.disconnectClient("c1");
  await until(async () => (await channels()).length === 0, { what: "the channel released" });
  await server.close();
});

test("cluster: after the subscriber connection is killed, the client reconnects and subscribes again", async () => {
  const a = await join_({ nodeId: "a2" });
  const b = await join_({ nodeId: "b2" });
  const got = [];
  b.onMessage((_key, message) => got.push(message.length));
  await b.subscribe("k");
  await admin.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
  await until(async () => {
    await a.publish("k", Uint8Array.of(1, 2, 3));
    return got.length > 0;
  }, { timeout: 10_000, what: "messages again after the reconnect" });
  assert.equal(got[0], 3);
});

test("package: teleportal/cluster without `redis` installed names what to install (Node and Bun)", () => {
  const project = installPackedPackage();
  try {
    writeFileSync(join(project.dir, "cluster.mjs"), `
import { connectRedisCluster } from "teleportal/cluster";
console.log(await connectRedisCluster({ url: "redis://127.0.0.1:1" }).then(() => "connected", (err) => err.message));
`);
    for (const runtime of ["node", "bun"]) {
      const out = execFileSync(runtimes[runtime], ["cluster.mjs"], { cwd: project.dir, encoding: "utf8", timeout: 30_000 });
      assert.match(out, /needs the `redis` package: npm install redis@6/, runtime);
    }
  } finally {
    project.remove();
  }
});

test("workerd: teleportal/cluster loads (no Redis client in the bundle) and says Workers need no cluster", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tp-cluster-worker-"));
  const mf = { current: null };
  try {
    const script = await bundleWorker(fileURLToPath(new URL("./fixtures/cluster-worker.js", import.meta.url)), dir, { wasm: false });
    const bundle = readFileSync(script, "utf8");
    assert.doesNotMatch(bundle, /RESP_TYPES|@redis\//, "no Redis client bundled");
    assert.ok(bundle.length < 10_000, `a small bundle (${bundle.length} bytes)`);
    mf.current = new Miniflare({ modulesRoot: dir, modules: [{ type: "ESModule", path: script }], compatibilityDate: "2026-04-01", host: "127.0.0.1", port: 0 });
    const res = await mf.current.dispatchFetch("http://localhost/");
    assert.deepEqual(await res.json(), { loaded: "function", error: "connectRedisCluster runs on Bun and Node; Workers route every document to one Durable Object and need no cluster" });
  } finally {
    await mf.current?.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
