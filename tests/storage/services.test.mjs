// tests/support/services.mjs: real PostgreSQL and Redis on 127.0.0.1 that are gone after stop()
// (port closed, data directory removed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { createClient } from "redis";
import { startPostgres, startRedis } from "../support/services.mjs";

/** Resolves true when something accepts a TCP connection on 127.0.0.1:port. */
const listening = (/** @type {number} */ port) =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.setTimeout(2000, () => (socket.destroy(), resolve(false)));
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
test("services: PostgreSQL answers on 127.0.0.1 only and is gone after stop", async () => {
  const pg = await startPostgres();
  let stopped = false;
  try {
    assert.match(pg.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/teleportal$/);
    const [listen, dataDir] = execFileSync("psql", [pg.url, "-qtAc", "SELECT current_setting('listen_addresses') || '|' || current_setting('data_directory')"], { encoding: "utf8" }).trim().split("|");
    assert.equal(listen, "127.0.0.1");
    assert.ok(existsSync(dataDir));
    await pg.stop();
    stopped = true;
    assert.equal(await listening(pg.port), false, "port still open after stop");
    assert.ok(!existsSync(dataDir), "data directory left behind");
  } finally {
    if (!stopped) await pg.stop();
  }
});

test("services: Redis answers PING and SET/GET (redis client) and is gone after stop", async () => {
  const redis = await startRedis();
  let stopped = false;
  try {
    assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
    const client = createClient({ url: redis.url });
    await client.connect();
    assert.equal(await client.ping(), "PONG");
    await client.set("k", "v");
    assert.equal(await client.get("k"), "v");
    await client.quit();
    await redis.stop();
    stopped = true;
    assert.equal(await listening(redis.port), false, "port still open after stop");
  } finally {
    if (!stopped) await redis.stop();
  }
});
