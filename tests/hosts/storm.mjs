// A write storm against the real server (host-bun/serve.js under Bun or Node, SQLite storage),
// SIGKILLed at a random moment in every round and restarted on the same database file. Every
// update the server acknowledged must be in the document afterwards: that is what an ack promises.
// Used by tests/hosts/durability.test.mjs (20 rounds) and scripts/storm (as many as asked).
// runClusterStorm: the same storm against a cluster (tests/cluster/storm.test.mjs).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import { encodeContentEncryptedPayload, encodeMessage, getMessageId, decodeMessage } from "teleportal/protocol";
import { connect } from "./suite.mjs";
import { YClient, until, Y } from "./yclient.mjs";

const serveJs = fileURLToPath(new URL("../../host-bun/serve.js", import.meta.url));
export const runtimes = {
  bun: fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url)),
  node: process.execPath,
};
const SECRET = "storm-secret";

export async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** A token for startServer's servers: `userId` may read and write every document of room "storm". */
export async function token(userId, claims = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ userId, room: "storm", documentAccess: [{ pattern: "*", permissions: ["read", "write"] }], ...claims })
    .setProtectedHeader({ alg: "HS256" }).setIssuer("teleportal").setAudience("teleportal")
    .setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(SECRET));
}

/** host-bun/serve.js under `runtime` on 127.0.0.1:`port`, storing at `db`; `env` adds to (or overrides) its environment. */
export async function startServer(runtime, port, db, env = {}) {
  const child = spawn(runtimes[runtime], [serveJs], {
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", TELEPORTAL_DB: db, TELEPORTAL_SECRET: SECRET, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = once(child, "exit");
  await until(() => out.includes("Connect: ") || child.exitCode !== null, { timeout: 15000, what: `${runtime} server start` });
  if (child.exitCode !== null) throw new Error(`server exited: ${out}`);
  return { child, exited, output: () => out };
}

const frameOf = (payload) => encodeMessage({ type: "doc", document: "storm", encrypted: false, payload });
const wrap = (update) => ({ version: 2, data: encodeContentEncryptedPayload({ structureUpdate: update, encryptedSidecars: [] }) });

// One writer: a Y.Doc whose every change is one update frame; at most `window` unacknowledged.
// With `resync` the doc carries on from an earlier connection and syncs first, as a provider does
// after a reconnect (the server gets whatever it lacks, acknowledged or not).
async function writer(url, name, acked, stop, doc = new Y.Doc(), resync = false) {
  const c = await connect(url);
  const pending = new Map(); // message id -> key
  const send = (frame) => {
    try {
      c.ws.send(frame);
      return true;
    } catch {
      return false; // the server is gone
    }
  };
  c.ws.on("message", (data) => {
    let m;
    try {
      m = decodeMessage(new Uint8Array(data));
    } catch {
      return;
    }
    if (resync && m.type === "doc" && m.payload.type === "sync-step-1") {
      send(frameOf({ type: "sync-step-2", update: wrap(Y.encodeStateAsUpdateV2(doc, m.payload.sv)) }));
    }
    if (m.type !== "ack" || !pending.has(m.payload.messageId)) return;
    if (!m.payload.error) acked.add(pending.get(m.payload.messageId));
    pending.delete(m.payload.messageId);
  });
  if (resync) send(frameOf({ type: "sync-step-1", sv: Y.encodeStateVector(doc) }));
  let n = 0;
  let sent = 0;
  const onUpdate = (u) => {
    const frame = frameOf({ type: "update", update: wrap(u) });
    pending.set(getMessageId(frame), `${name}-${n}`);
    if (send(frame)) sent++;
  };
  doc.on("updateV2", onUpdate);
  while (!stop.done && c.ws.readyState === c.ws.OPEN) {
    if (pending.size >= 8) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    n++;
    doc.getMap("m").set(`${name}-${n}`, n);
  }
  doc.off("updateV2", onUpdate);
  c.ws.terminate();
  return sent;
}

/**
 * @param {{ runtime: "bun" | "node", rounds: number, writers?: number, log?: (line: string) => void }} options
 * @returns {Promise<{ rounds: number, acked: number, sent: number, lost: string[] }>}
 */
export async function runStorm({ runtime, rounds, writers = 4, log = () => {} }) {
  const dir = mkdtempSync(join(tmpdir(), "tp-storm-"));
  const db = join(dir, "storm.sqlite");
  const port = await freePort();
  const url = async (user) => `ws://127.0.0.1:${port}/?token=${await token(user)}`;
  const acked = new Set();
  let sent = 0;
  let lost = [];
  try {
    for (let round = 0; round <= rounds; round++) {
      const srv = await startServer(runtime, port, db);
      // Everything acknowledged before the last kill must be there.
      const reader = await YClient.open(await url(`reader-${round}`), "storm");
      await reader.synced;
      const map = reader.doc.getMap("m");
      lost = [...acked].filter((k) => !map.has(k));
      await reader.close();
      if (lost.length > 0 || round === rounds) {
        srv.child.kill("SIGTERM");
        await srv.exited;
        break;
      }
      const stop = { done: false };
      const writing = Array.from({ length: writers }, async (_, i) => writer(await url(`w${i}`), `r${round}w${i}`, acked, stop));
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 600));
      srv.child.kill("SIGKILL");
      await srv.exited;
      stop.done = true;
      for (const n of await Promise.all(writing)) sent += n;
      log(`${runtime} round ${round + 1}/${rounds}: ${acked.size} acknowledged so far`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rounds, acked: acked.size, sent, lost };
}

/**
 * The storm against a cluster. `nodes` (started by the caller on one database and one Redis) have
 * `url(userId)` (with a token for read and write), `kill()` (SIGKILL, resolves once it exited) and
 * `restart()`. In round r the writers connect
 * to node r mod n (the victim); it is SIGKILLed at a random moment, the writers reconnect to the next
 * node (syncing their documents first, as providers do) and write on for a while, then the victim
 * restarts. Every acknowledged update must be at a reader that stayed on the next node through the
 * round (relayed by the cluster) and at a reader that joins the restarted victim (loaded from the
 * database).
 * @param {{ nodes: { name: string, url(userId: string): Promise<string>, kill(): Promise<void>, restart(): Promise<void> }[],
 *   rounds: number, writers?: number, failoverMs?: number, log?: (line: string) => void }} options
 * @returns {Promise<{ rounds: number, acked: number, sent: number, failedOver: number, lost: { at: string, keys: string[] }[] }>}
 */
export async function runClusterStorm({ nodes, rounds, writers = 4, failoverMs = 300, log = () => {} }) {
  const url = (node, user) => node.url(user);
  const acked = new Set();
  let sent = 0;
  let failedOver = 0;
  const lost = [];
  const missing = async (reader, at) => {
    await until(() => [...acked].every((k) => reader.doc.getMap("m").has(k)), { timeout: 5000, what: at }).catch(() => {});
    const keys = [...acked].filter((k) => !reader.doc.getMap("m").has(k));
    if (keys.length > 0) lost.push({ at, keys });
  };
  for (let round = 0; round < rounds && lost.length === 0; round++) {
    const victim = nodes[round % nodes.length];
    const next = nodes[(round + 1) % nodes.length];
    const observer = await YClient.open(await url(next, `observer-${round}`), "storm");
    await observer.synced;
    const stop = { done: false };
    const failover = { done: false };
    const writing = Array.from({ length: writers }, async (_, i) => {
      const name = `r${round}w${i}`;
      const doc = new Y.Doc();
      let n = await writer(await url(victim, `w${i}`), `${name}a`, acked, stop, doc);
      failedOver++;
      n += await writer(await url(next, `w${i}`), `${name}b`, acked, failover, doc, true);
      return n;
    });
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 600));
    await victim.kill();
    await new Promise((r) => setTimeout(r, failoverMs));
    failover.done = true;
    for (const n of await Promise.all(writing)) sent += n;
    await missing(observer, `round ${round + 1}: reader on ${next.name} (connected through the round)`);
    await observer.close();
    await victim.restart();
    const reader = await YClient.open(await url(victim, `reader-${round}`), "storm");
    await reader.synced;
    await missing(reader, `round ${round + 1}: reader on restarted ${victim.name}`);
    await reader.close();
    log(`cluster round ${round + 1}/${rounds}: killed ${victim.name}, ${acked.size} acknowledged so far`);
  }
  return { rounds, acked: acked.size, sent, failedOver, lost };
}
