// A write storm against the real server (host-bun/serve.js under Bun or Node, SQLite storage),
// SIGKILLed at a random moment in every round and restarted on the same database file. Every
// update the server acknowledged must be in the document afterwards: that is what an ack promises.
// Used by tests/hosts/durability.test.mjs (20 rounds) and scripts/storm (as many as asked).
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

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function token(userId) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ userId, room: "storm", documentAccess: [{ pattern: "*", permissions: ["read", "write"] }] })
    .setProtectedHeader({ alg: "HS256" }).setIssuer("teleportal").setAudience("teleportal")
    .setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(SECRET));
}

async function startServer(runtime, port, db) {
  const child = spawn(runtimes[runtime], [serveJs], {
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", TELEPORTAL_DB: db, TELEPORTAL_SECRET: SECRET },
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

// One writer: a Y.Doc whose every change is one update frame; at most `window` unacknowledged.
async function writer(url, name, acked, stop) {
  const c = await connect(url);
  const doc = new Y.Doc();
  const pending = new Map(); // message id -> key
  c.ws.on("message", (data) => {
    let m;
    try {
      m = decodeMessage(new Uint8Array(data));
    } catch {
      return;
    }
    if (m.type !== "ack" || !pending.has(m.payload.messageId)) return;
    if (!m.payload.error) acked.add(pending.get(m.payload.messageId));
    pending.delete(m.payload.messageId);
  });
  let n = 0;
  let sent = 0;
  doc.on("updateV2", (u) => {
    const frame = encodeMessage({ type: "doc", document: "storm", encrypted: false,
      payload: { type: "update", update: { version: 2, data: encodeContentEncryptedPayload({ structureUpdate: u, encryptedSidecars: [] }) } } });
    pending.set(getMessageId(frame), `${name}-${n}`);
    try {
      c.ws.send(frame);
      sent++;
    } catch {
      // the server is gone
    }
  });
  while (!stop.done && c.ws.readyState === c.ws.OPEN) {
    if (pending.size >= 8) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    n++;
    doc.getMap("m").set(`${name}-${n}`, n);
  }
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
