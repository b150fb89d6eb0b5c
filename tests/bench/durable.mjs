// Durable documents, measured on the real server (host-bun/serve.js under Bun, 127.0.0.1 only):
//  1. updates acknowledged per second with SQLite (ack after commit) vs memory-only, same run;
//  2. RSS over waves of connections that each open fresh documents and leave (documents unload,
//     memory is reused: the waves after the first must add next to nothing).
// Bounded in count and time. Run: node tests/bench/durable.mjs [--quick]
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as Y from "yjs";
import WebSocket from "ws";
import { SignJWT } from "jose";
import { decodeMessage, encodeContentEncryptedPayload, encodeMessage } from "teleportal/protocol";

const quick = process.argv.includes("--quick");
const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
const serveJs = fileURLToPath(new URL("../../host-bun/serve.js", import.meta.url));
const SECRET = "bench-secret";

async function token(userId) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ userId, room: "bench", documentAccess: [{ pattern: "*", permissions: ["read", "write"] }] })
    .setProtectedHeader({ alg: "HS256" }).setIssuer("teleportal").setAudience("teleportal")
    .setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(SECRET));
}

async function startServer(env) {
  const child = spawn(bun, [serveJs], { env: { ...process.env, PORT: "0", TELEPORTAL_SECRET: SECRET, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  for (let i = 0; i < 300 && !/listening on ws:\/\/([^/\s]+)/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  const host = out.match(/listening on ws:\/\/([^/\s]+)/)[1];
  return {
    child,
    url: async (user) => `ws://${host}/?token=${await token(user)}`,
    rssKb: () => Number(readFileSync(`/proc/${child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]),
    async stop() {
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "nodebuffer";
    ws.on("open", () => resolve(ws));
    ws.on("error", reject);
  });
}

function updateFrame(document, update) {
  return encodeMessage({ type: "doc", document, encrypted: false,
    payload: { type: "update", update: { version: 2, data: encodeContentEncryptedPayload({ structureUpdate: update, encryptedSidecars: [] }) } } });
}

// Writers with a window of 16 unacknowledged updates each, for `ms`: acknowledged updates per second.
async function ackRate(server, { writers = 8, ms = quick ? 1500 : 4000 } = {}) {
  let acked = 0;
  const end = Date.now() + ms;
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    const ws = await open(await server.url(`w${w}`));
    const doc = new Y.Doc();
    let inFlight = 0;
    let wake = null;
    ws.on("message", (data) => {
      const m = decodeMessage(new Uint8Array(data));
      if (m.type === "ack" && !m.payload.error) {
        inFlight--;
        if (Date.now() < end) acked++;
        wake?.();
      }
    });
    doc.on("updateV2", (u) => ws.send(updateFrame(`doc-${w % 4}`, u)));
    let n = 0;
    while (Date.now() < end) {
      if (inFlight >= 16) {
        await new Promise((r) => (wake = r));
        continue;
      }
      inFlight++;
      doc.getText("t").insert(0, `edit ${n++} `);
    }
    ws.terminate();
  }));
  return acked / (ms / 1000);
}

// A wave: 4 connections each open `docs` fresh documents (sync-step-1 + one update), then leave.
async function wave(server, index, docs) {
  await Promise.all(Array.from({ length: 4 }, async (_, c) => {
    const ws = await open(await server.url(`wave${index}-${c}`));
    let acks = 0;
    const done = new Promise((resolve) => ws.on("message", (data) => {
      const m = decodeMessage(new Uint8Array(data));
      if (m.type === "ack" && ++acks === docs * 2) resolve();
    }));
    for (let d = 0; d < docs; d++) {
      const name = `w${index}-c${c}-d${d}`;
      ws.send(encodeMessage({ type: "doc", document: name, encrypted: false, payload: { type: "sync-step-1", sv: new Uint8Array([0]) } }));
      const doc = new Y.Doc();
      doc.on("updateV2", (u) => ws.send(updateFrame(name, u)));
      doc.getText("t").insert(0, `document ${name} `.repeat(4));
    }
    await done;
    ws.close();
  }));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dir = mkdtempSync(join(tmpdir(), "tp-bench-durable-"));
try {
  const rounds = quick ? 1 : 3;
  const durable = [];
  const memory = [];
  for (let r = 0; r < rounds; r++) {
    for (const [list, env] of [[durable, { TELEPORTAL_DB: join(dir, `acks-${r}.sqlite`) }], [memory, { TELEPORTAL_DB: "memory" }]]) {
      const server = await startServer(env);
      list.push(await ackRate(server));
      await server.stop();
    }
  }
  console.log("\n## Acknowledged updates per second (8 writers, window 16, Bun, medians of %d)\n", rounds);
  console.log("| storage | acks/s | ratio |\n|---|---|---|");
  console.log(`| SQLite (ack after commit, group commit) | ${median(durable).toFixed(0)} | ${(median(durable) / median(memory)).toFixed(2)} |`);
  console.log(`| memory only | ${median(memory).toFixed(0)} | 1.00 |`);

  const waves = quick ? 4 : 10;
  const docs = quick ? 250 : 500;
  const server = await startServer({ TELEPORTAL_DB: join(dir, "waves.sqlite"), TELEPORTAL_UNLOAD_AFTER_MS: "200" });
  const base = server.rssKb();
  console.log(`\n## RSS over waves of fresh documents (${4 * docs} documents per wave, unloaded 200 ms after the wave)\n`);
  console.log("| wave | RSS after (MB) | added by this wave (MB) |\n|---|---|---|");
  let last = base;
  let afterFirst = base;
  for (let i = 1; i <= waves; i++) {
    await wave(server, i, docs);
    await new Promise((r) => setTimeout(r, 1500)); // unload + a GC opportunity
    const rss = server.rssKb();
    console.log(`| ${i} | ${(rss / 1024).toFixed(1)} | ${((rss - last) / 1024).toFixed(1)} |`);
    last = rss;
    if (i === 1) afterFirst = rss;
  }
  console.log(`\nstart ${(base / 1024).toFixed(1)} MB; wave 1 added ${((afterFirst - base) / 1024).toFixed(1)} MB; waves 2-${waves} together added ${((last - afterFirst) / 1024).toFixed(1)} MB`);
  await server.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
