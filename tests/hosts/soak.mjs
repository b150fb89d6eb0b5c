// The soak (scripts/soak): the real server (host-bun/serve.js under Bun or Node, SQLite in a
// temporary directory, 127.0.0.1) under a steady write load from many clients over several
// documents, with faults injected one after the other for the whole run: abrupt disconnects,
// SIGKILL + restart, malformed frames, slow readers. At the end the server is SIGKILLed once more
// and restarted, and every update a client saw acknowledged must be in its document.
//
// Each writer connection writes from a fresh Y.Doc, so an acknowledged update never depends on
// one that was lost with a connection (Y.js would hold it back as pending, not show it); a writer
// that gets a NACK drops its connection and starts over, as its updates after the refused one
// depend on it. Nothing is re-sent after a cut, so nothing hides a loss.
import { randomBytes } from "node:crypto";
import * as encoding from "lib0/encoding";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeMessage, encodeContentEncryptedPayload, encodeMessage, getMessageId } from "teleportal/protocol";
import { freePort, startServer, token } from "./storm.mjs";
import { connect } from "./suite.mjs";
import { readDocument, YClient, Y } from "./yclient.mjs";
import { openServerSockets, rssMiB } from "./proc.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const wrap = (u) => ({ version: 2, data: encodeContentEncryptedPayload({ structureUpdate: u, encryptedSidecars: [] }) });
const docFrame = (document, payload) => encodeMessage({ type: "doc", document, encrypted: false, payload });
const step1 = (document) => docFrame(document, { type: "sync-step-1", sv: Y.encodeStateVector(new Y.Doc()) });
const decodeOrNull = (f) => {
  try {
    return decodeMessage(new Uint8Array(f));
  } catch {
    return null;
  }
};

/**
 * @param {{ runtime?: "bun" | "node", minutes?: number, clients?: number, documents?: number,
 *   faultEveryMs?: number, log?: (line: string) => void }} options
 */
export async function runSoak({ runtime = "bun", minutes = 2, clients = 16, documents = 8, faultEveryMs = 4000, log = () => {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tp-soak-"));
  const db = join(dir, "soak.sqlite");
  const port = await freePort();
  const url = async (user) => `ws://127.0.0.1:${port}/?token=${await token(user)}`;
  const env = { TELEPORTAL_UNLOAD_AFTER_MS: "1000" };
  const docs = Array.from({ length: documents }, (_, i) => `doc-${i}`);
  /** document -> keys acknowledged without error */
  const acked = new Map();
  const ack = (document, key) => (acked.get(document) ?? acked.set(document, new Set()).get(document)).add(key);
  const load = { sent: 0, acked: 0, nacked: 0, rateLimited: 0, connections: 0 };
  const faults = {
    disconnect: { count: 0 },
    sigkill: { count: 0, downMs: [] },
    malformed: { count: 0, frames: 0, nacks: 0, cutFrames: 0 },
    slow: { count: 0, cutOff: 0, codes: [] },
  };
  const rss = { start: null, peak: 0, end: null };
  let unexpectedExits = 0;
  let srv;
  let killing = false;
  const start = async () => {
    srv = await startServer(runtime, port, db, env);
    srv.exited.then(() => {
      if (!killing) unexpectedExits++;
    });
  };
  const stop = { done: false };
  const live = new Set(); // open writer sockets, for the disconnect fault

  // One writer: connects (retrying while the server is down), writes from a fresh Y.Doc with at
  // most 4 unacknowledged updates, one every few ms, until its connection ends; then again.
  const writer = async (index) => {
    const document = docs[index % docs.length];
    const address = await url(`writer-${index}`);
    let generation = 0;
    while (!stop.done) {
      let c;
      try {
        c = await connect(address);
      } catch {
        await sleep(100);
        continue;
      }
      load.connections++;
      live.add(c);
      const name = `w${index}g${generation++}`;
      const pending = new Map(); // message id -> key
      let refused = false;
      c.ws.on("message", (data) => {
        const m = decodeOrNull(data);
        if (m?.type !== "ack" || !pending.has(m.payload.messageId)) return;
        const key = pending.get(m.payload.messageId);
        pending.delete(m.payload.messageId);
        if (!m.payload.error && m.payload.retryAfter === undefined) {
          ack(document, key);
          load.acked++;
        } else {
          if (m.payload.retryAfter !== undefined && !m.payload.error) load.rateLimited++;
          else load.nacked++;
          refused = true; // later updates of this doc depend on the refused one: start over
        }
      });
      c.send(step1(document));
      const doc = new Y.Doc();
      let n = 0;
      let key = "";
      doc.on("updateV2", (u) => {
        const frame = docFrame(document, { type: "update", update: wrap(u) });
        pending.set(getMessageId(frame), key);
        try {
          c.ws.send(frame);
          load.sent++;
        } catch {
          // the connection is gone; the loop notices
        }
      });
      while (!stop.done && !refused && c.ws.readyState === c.ws.OPEN) {
        if (pending.size >= 4) {
          await sleep(2);
          continue;
        }
        key = `${name}-${++n}`;
        doc.getMap("m").set(key, index);
        await sleep(5);
      }
      live.delete(c);
      c.ws.terminate();
    }
  };

  const injectDisconnect = async () => {
    const victims = [...live].sort(() => Math.random() - 0.5).slice(0, 1 + Math.floor(clients / 8));
    for (const [i, c] of victims.entries()) {
      if (i % 2 === 0) c.ws._socket?.destroy();
      else c.ws._socket?.resetAndDestroy();
      faults.disconnect.count++;
    }
  };

  const injectKill = async () => {
    killing = true;
    const t0 = Date.now();
    srv.child.kill("SIGKILL");
    await srv.exited;
    killing = false;
    await start();
    faults.sigkill.count++;
    faults.sigkill.downMs.push(Date.now() - t0);
  };

  const injectMalformed = async () => {
    const c = await connect(await url("malformed"));
    const document = docs[faults.malformed.count % docs.length];
    const d = new Y.Doc();
    d.getMap("m").set("never", 1);
    const whole = docFrame(document, { type: "update", update: wrap(Y.encodeStateAsUpdateV2(d)) });
    const bad = [
      ...Array.from({ length: 8 }, (_, i) => whole.subarray(0, 1 + Math.floor(((whole.length - 1) * i) / 8))),
      ...Array.from({ length: 4 }, () => randomBytes(1 + Math.floor(Math.random() * 200))),
      Buffer.from("not a teleportal frame"),
      Uint8Array.from([0x59, 0x4a, 0x53, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]), // a huge declared length
    ];
    let nacks = 0;
    c.ws.on("message", (data) => {
      const m = decodeOrNull(data);
      if (m?.type === "ack" && m.payload.error) nacks++;
    });
    for (const f of bad) c.send(f);
    const end = Date.now() + 5000;
    while (nacks < bad.length && Date.now() < end && c.ws.readyState === c.ws.OPEN) await sleep(10);
    // Then a WebSocket frame cut mid-payload, and the socket closed.
    const mask = randomBytes(4);
    const head = Buffer.from([0x82, 0x80 | 126, whole.length >> 8, whole.length & 255]);
    c.ws._socket.write(Buffer.concat([head, mask, Buffer.from(whole.subarray(0, whole.length >> 1))]));
    await sleep(20);
    c.ws._socket.destroy();
    faults.malformed.count++;
    faults.malformed.frames += bad.length;
    faults.malformed.nacks += nacks;
    faults.malformed.cutFrames++;
  };

  // A reader that stops reading on a busy document, and 480 awareness updates of 60 kB (about
  // 28 MiB, relayed but never stored: the document stays small) from another client.
  const injectSlowReader = async () => {
    const document = docs[faults.slow.count % docs.length];
    const slow = await connect(await url("slow-reader"));
    slow.send(step1(document));
    await slow.waitFor((f) => decodeOrNull(f)?.type === "ack", { what: "slow reader joined" });
    const big = await connect(await url("awareness-sender"));
    big.send(step1(document));
    await big.waitFor((f) => decodeOrNull(f)?.type === "ack", { what: "awareness sender joined" });
    slow.ws._socket.pause();
    const state = JSON.stringify({ user: "z".repeat(60_000) });
    const frames = [];
    const acks = new Set();
    big.ws.on("message", (data) => {
      const m = decodeOrNull(data);
      if (m?.type === "ack") acks.add(m.payload.messageId);
    });
    for (let i = 0; i < 480 && big.ws.readyState === big.ws.OPEN; i++) {
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, 1);
      encoding.writeVarUint(e, 4242);
      encoding.writeVarUint(e, i + 1);
      encoding.writeVarString(e, state);
      const f = encodeMessage({ type: "awareness", document, encrypted: false, payload: { type: "awareness-update", update: encoding.toUint8Array(e) } });
      frames.push(getMessageId(f));
      big.send(f);
      const end = Date.now() + 30_000;
      while (i >= 4 && !acks.has(frames[i - 4]) && Date.now() < end && big.ws.readyState === big.ws.OPEN) await sleep(2);
    }
    await big.close().catch(() => {});
    // The server must have let go of the paused reader (Node's ws destroys the socket 30 s after
    // its close frame could not be written; Bun at once).
    const slowPort = slow.ws._socket.localPort;
    const end = Date.now() + 40_000;
    while (Date.now() < end && openServerSockets(port).some((s) => s.remotePort === slowPort)) await sleep(100);
    slow.ws._socket.resume();
    const closed = await Promise.race([slow.closed, sleep(10_000).then(() => null)]);
    faults.slow.count++;
    if (closed && !openServerSockets(port).some((s) => s.remotePort === slowPort)) faults.slow.cutOff++;
    faults.slow.codes.push(closed?.code ?? "open");
    slow.ws.terminate();
  };

  const plan = [injectDisconnect, injectMalformed, injectKill, injectSlowReader, injectDisconnect, injectMalformed,
    injectDisconnect, injectKill, injectMalformed, injectDisconnect, injectMalformed, injectKill];
  const t0 = Date.now();
  let lost = 0;
  let found = 0;
  let providersSynced = 0;
  const notSynced = [];
  let expected = 0;
  try {
    await start();
    const writing = Array.from({ length: clients }, (_, i) => writer(i));
    await sleep(Math.min(5000, minutes * 60_000 / 4));
    rss.start = rssMiB(srv.child.pid);
    const sampler = setInterval(() => {
      try {
        const now = rssMiB(srv.child.pid);
        if (Number.isFinite(now)) rss.peak = Math.max(rss.peak, now);
      } catch {
        // between a kill and the restart
      }
    }, 500);
    let step = 0;
    while (Date.now() - t0 < minutes * 60_000) {
      const fault = plan[step++ % plan.length];
      await fault();
      log(`${((Date.now() - t0) / 1000).toFixed(0)} s: ${fault.name.replace("inject", "")}, ${load.acked} acked so far`);
      await sleep(Math.min(faultEveryMs, Math.max(0, minutes * 60_000 - (Date.now() - t0))));
    }
    const elapsed = (Date.now() - t0) / 1000;
    stop.done = true;
    log("stopping the writers");
    await Promise.all(writing);
    rss.end = rssMiB(srv.child.pid);
    clearInterval(sampler);
    // The final restart: SIGKILL, start on the same file, read every document back.
    log("final SIGKILL + restart, then reading every document back");
    await injectKill();
    faults.sigkill.count--; // the verification kill is not one of the injected faults
    faults.sigkill.downMs.pop();
    for (const document of docs) {
      const keys = acked.get(document) ?? new Set();
      const map = (await readDocument(await url(`verifier-${document}`), document)).getMap("m");
      for (const k of keys) {
        expected++;
        if (map.has(k)) found++;
        else lost++;
      }
      // And a provider-like client (sync-step-1, answers the server's, waits for sync-done) is served.
      const provider = await YClient.open(await url(`provider-${document}`), document);
      const outcome = await Promise.race([provider.synced.then(() => "synced"),
        provider.client.closed.then((c) => `closed ${c.code} ${c.reason}`), sleep(30_000).then(() => "no sync-done within 30 s")]);
      if (outcome === "synced") providersSynced++;
      else notSynced.push(`${document} (${Math.round(Y.encodeStateAsUpdateV2(provider.doc).length / 2 ** 20)} MiB): ${outcome}`);
      provider.client.ws.terminate();
    }
    killing = true;
    srv.child.kill("SIGTERM");
    await srv.exited;
    return { runtime, minutes, clients, documents: docs.length, elapsed, load, faults, rss, expected, found, lost, unexpectedExits, providersSynced, notSynced };
  } finally {
    stop.done = true;
    if (srv?.child.exitCode === null && srv.child.signalCode === null) {
      killing = true;
      srv.child.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The summary table scripts/soak prints. */
export function formatSoak(r) {
  const mean = (a) => (a.length ? Math.round(a.reduce((x, y) => x + y, 0) / a.length) : 0);
  const rows = [
    ["load held", ""],
    ["  runtime, duration", `${r.runtime}, ${r.elapsed.toFixed(0)} s`],
    ["  clients / documents", `${r.clients} writers over ${r.documents} documents`],
    ["  connections opened", `${r.load.connections}`],
    ["  updates sent / acked", `${r.load.sent} / ${r.load.acked}`],
    ["  acked per second", `${Math.round(r.load.acked / r.elapsed)}`],
    ["  NACKed / rate-limited", `${r.load.nacked} / ${r.load.rateLimited}`],
    ["faults injected", ""],
    ["  abrupt disconnects (FIN/RST)", `${r.faults.disconnect.count}`],
    ["  SIGKILL + restart", `${r.faults.sigkill.count} (down ${mean(r.faults.sigkill.downMs)} ms on average, max ${Math.max(0, ...r.faults.sigkill.downMs)} ms)`],
    ["  malformed frames", `${r.faults.malformed.frames} in ${r.faults.malformed.count} rounds, ${r.faults.malformed.nacks} NACKed; ${r.faults.malformed.cutFrames} WebSocket frames cut mid-payload`],
    ["  slow readers", `${r.faults.slow.count}, ${r.faults.slow.cutOff} cut off by backpressure (close codes seen: ${[...new Set(r.faults.slow.codes)].join(", ") || "-"})`],
    ["  unexpected server exits", `${r.unexpectedExits}`],
    ["data verified after a final SIGKILL + restart", ""],
    ["  acked / found / lost", `${r.expected} / ${r.found} / ${r.lost}`],
    ["  provider-like clients synced", `${r.providersSynced} of ${r.providersSynced + r.notSynced.length} documents${r.notSynced.length ? ` (not: ${r.notSynced.join(", ")})` : ""}`],
    ["server RSS (MiB)", `start ${r.rss.start}, end ${r.rss.end}, peak ${r.rss.peak} (each restart starts a new process)`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}
