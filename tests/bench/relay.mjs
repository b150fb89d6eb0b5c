// Relay benchmark: our server (Bun and Node) side by side with the Y.js sync servers people use
// today (y-websocket's server, Hocuspocus), one table, ratios against ours on Bun.
//
//   node tests/bench/relay.mjs                       (the driver is Node; under Bun it re-runs itself with node)
//   RELAY_QUICK=1 node tests/bench/relay.mjs         quick mode (small workload)
//
// Each server runs alone in its own child process (tests/bench/servers/*). Clients live in this
// process, each with a real Y.Doc; the client-side Y.js work is the same for every server (same
// docs, same edits, V2 for our wire, V1 for the y-protocols wires):
//   ours          tests/hosts/yclient.mjs (Teleportal wire: sync-step-1/2, updates in
//                 content-encrypted envelopes, presence-announce) over `ws`
//   y-websocket   y-websocket's WebsocketProvider (WebSocketPolyfill: ws, disableBc: true)
//   hocuspocus    @hocuspocus/provider's HocuspocusProvider (WebSocketPolyfill: ws)
// Workload: R rooms x C clients. After every client is synced, every client makes K small text
// edits (one transaction = one update each, inserted at the end of its text) AS FAST AS POSSIBLE:
// K rounds, each round one edit per client, then one event-loop turn (setImmediate) so received
// frames are processed between rounds. Measured until every client's text holds every edit of its
// room (converged; then the docs of a room are checked to be identical).
//   delivered edits = R * C * K * (C - 1)   (each edit applied by each other client of its room)
// Server cost: CPU time (utime + stime of the server process, /proc/<pid>/stat) from just before
// the first edit to convergence + 250 ms settle; peak RSS = VmHWM over the server's whole life.
// Late joiner: one writer puts N edits (N updates, each at a pseudo-random position, so the doc
// holds ~N separate items rather than one merged run) into a fresh room; after an observer has seen
// them all, J new clients join one after another; time from connect to holding all N edits.
//
// Environment: RELAY_QUICK=1, RELAY_ROOMS, RELAY_CLIENTS, RELAY_EDITS, RELAY_LATE_EDITS,
// RELAY_LATE_JOINS, RELAY_REPEAT (fresh server process per repeat, medians reported),
// RELAY_SERVERS=ours-bun,ours-node,y-websocket,hocuspocus,hocuspocus-nobatch (subset/order).
// hocuspocus-nobatch is Hocuspocus with flushDelay:false: one broadcast per incoming update like
// the others (4.x's default coalesces the updates of one event-loop turn into one broadcast).
// Prints a table; asserts no timings.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import os from "node:os";

const here = dirname(fileURLToPath(import.meta.url));
const testsDir = join(here, "..");

if (process.versions.bun) {
  // scripts/bench runs tests/bench/*.mjs under Bun; the clients (ws, providers) are driven from Node.
  console.log("relay.mjs: the driver runs under Node; re-running with `node` (servers still include Bun).");
  const r = spawnSync("node", [fileURLToPath(import.meta.url)], { stdio: "inherit", cwd: testsDir });
  if (r.error) {
    console.log(`relay.mjs: skipped, could not run node: ${r.error.message}`);
    process.exit(0);
  }
  process.exit(r.status ?? 1);
}

const Y = await import("yjs");
const { default: WebSocket } = await import("ws");
const { YClient } = await import("../hosts/yclient.mjs");
const { WebsocketProvider } = await import("y-websocket");
const { HocuspocusProvider } = await import("@hocuspocus/provider");

process.setMaxListeners(0);

// Wire counters over every client socket of this process (all adapters use this `ws`).
const wire = { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0 };
const sizeOf = (d) => (Array.isArray(d) ? d.reduce((n, x) => n + x.length, 0) : d?.byteLength ?? d?.length ?? 0);
const origEmit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function (event, data, ...rest) {
  if (event === "message") (wire.framesIn++, (wire.bytesIn += sizeOf(data)));
  return origEmit.call(this, event, data, ...rest);
};
const origSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (data, ...rest) {
  wire.framesOut++;
  wire.bytesOut += sizeOf(data);
  return origSend.call(this, data, ...rest);
}; // each WebsocketProvider registers a process 'exit' listener

const quick = process.env.RELAY_QUICK === "1";
const num = (name, full, small) => Number(process.env[name] ?? (quick ? small : full));
const cfg = {
  rooms: num("RELAY_ROOMS", 20, 4),
  clients: num("RELAY_CLIENTS", 10, 5),
  edits: num("RELAY_EDITS", 50, 40),
  lateEdits: num("RELAY_LATE_EDITS", 5000, 1000),
  lateJoins: num("RELAY_LATE_JOINS", 5, 3),
  repeat: num("RELAY_REPEAT", 1, 1),
};
const TOKEN_LEN = 6;
const PHASE_TIMEOUT = 180_000;
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;
const bunBin = join(testsDir, "node_modules", ".bin", "bun");

const servers = {
  "ours-bun": { label: "ours (Bun)", cmd: [bunBin, join(here, "servers", "ours-bun.js")], client: oursClient },
  "ours-node": { label: "ours (Node)", cmd: [process.execPath, join(here, "servers", "ours-node.mjs")], client: oursClient },
  "y-websocket": { label: "@y/websocket-server 0.1.1", cmd: [process.execPath, join(here, "servers", "y-websocket.mjs")], client: yWebsocketClient },
  hocuspocus: { label: "Hocuspocus 4.7.0", cmd: [process.execPath, join(here, "servers", "hocuspocus.mjs")], client: hocuspocusClient },
  "hocuspocus-nobatch": {
    label: "Hocuspocus, flushDelay:false",
    cmd: [process.execPath, join(here, "servers", "hocuspocus.mjs")],
    env: { HOCUSPOCUS_FLUSH_DELAY: "false" },
    client: hocuspocusClient,
  },
};
const order = (process.env.RELAY_SERVERS ?? Object.keys(servers).join(",")).split(",").filter((s) => servers[s]);

// ---- helpers ----
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tick = () => new Promise((r) => setImmediate(r));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]);
}

async function until(pred, ms, what, every = 2) {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(every);
  }
}

function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from #3 (state) on
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // #14 utime, #15 stime
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+)`, "m"))?.[1] ?? NaN);
  return { cpu, rssMB: kb("VmRSS") / 1024, hwmMB: kb("VmHWM") / 1024 };
}

async function startServer(cmd, env = {}) {
  const child = spawn(cmd[0], cmd.slice(1), { cwd: testsDir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TELEPORTAL_SECRET: "", ...env } });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const port = await withTimeout(
    new Promise((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line) resolve(JSON.parse(line).port);
      });
      child.on("exit", (code) => reject(new Error(`${cmd.join(" ")} exited with ${code}: ${stderr}`)));
    }),
    20_000,
    "server start",
  );
  return {
    pid: child.pid,
    port,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      if (await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

// ---- client adapters: (port, room, doc) -> { close(), errors() } once synced ----
async function oursClient(port, room, doc) {
  const c = await YClient.open(`ws://127.0.0.1:${port}/?room=${encodeURIComponent(room)}`, "doc", doc);
  await c.synced;
  return { close: () => c.close(), errors: () => c.errors.length + (c.fatal ? 1 : 0) };
}

async function yWebsocketClient(port, room, doc) {
  const p = new WebsocketProvider(`ws://127.0.0.1:${port}`, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true });
  if (!p.synced) await new Promise((resolve) => p.on("sync", (s) => s && resolve()));
  return { close: () => p.destroy(), errors: () => 0 };
}

async function hocuspocusClient(port, room, doc) {
  const p = new HocuspocusProvider({ url: `ws://127.0.0.1:${port}`, name: room, document: doc, WebSocketPolyfill: WebSocket });
  if (!p.isSynced) await new Promise((resolve) => p.on("synced", () => resolve()));
  return { close: () => p.destroy(), errors: () => 0 };
}

async function openClients(adapter, port, specs, concurrency = 8) {
  const out = new Array(specs.length);
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const i = next++;
      const { room, doc } = specs[i];
      out[i] = await withTimeout(adapter(port, room, doc), 30_000, `client ${i} sync (${room})`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

const tokenFor = (ci, k) => (ci.toString(36).padStart(2, "0") + k.toString(36).padStart(3, "0") + ";").slice(-TOKEN_LEN);

// ---- one run against one server ----
async function runOnce(key, cfg) {
  const spec = servers[key];
  const srv = await startServer(spec.cmd, spec.env);
  const result = { key };
  const opened = [];
  try {
    await sleep(300);
    result.idleRssMB = procStats(srv.pid).rssMB;
    const { rooms: R, clients: C, edits: K } = cfg;

    // connect + sync every client
    const specs = [];
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) specs.push({ room: `room-${r}`, idx: c, doc: new Y.Doc() });
    const tConnect = performance.now();
    const conns = await openClients(spec.client, srv.port, specs);
    opened.push(...conns);
    result.connectMs = performance.now() - tConnect;
    const clients = specs.map((s) => ({ ...s, text: s.doc.getText("t") }));
    await sleep(200); // let presence/awareness traffic of the connect phase settle

    // edit phase
    const target = C * K * TOKEN_LEN;
    const cpu0 = procStats(srv.pid).cpu;
    const drv0 = process.cpuUsage();
    const wire0 = { ...wire };
    const t0 = performance.now();
    for (let k = 0; k < K; k++) {
      for (const cl of clients) cl.text.insert(cl.text.length, tokenFor(cl.idx, k));
      await tick();
    }
    result.issueMs = performance.now() - t0;
    await until(() => clients.every((cl) => cl.text.length === target), PHASE_TIMEOUT, "convergence", 2);
    result.wallMs = performance.now() - t0;
    const drv = process.cpuUsage(drv0);
    result.driverCpu = (drv.user + drv.system) / 1e6;
    await sleep(250);
    for (const f of Object.keys(wire)) result[f] = wire[f] - wire0[f];
    result.serverCpu = procStats(srv.pid).cpu - cpu0;
    result.delivered = R * C * K * (C - 1);
    for (let r = 0; r < R; r++) {
      const docs = clients.slice(r * C, (r + 1) * C).map((cl) => cl.text.toString());
      if (docs.some((d) => d !== docs[0])) throw new Error(`room-${r} diverged`);
    }
    result.clientErrors = conns.reduce((n, c) => n + c.errors(), 0);
    await Promise.all(opened.splice(0).map((c) => c.close()));
    await sleep(300);

    // late joiner
    const N = cfg.lateEdits;
    const lateTarget = N * TOKEN_LEN;
    const writerDoc = new Y.Doc();
    const [writer] = await openClients(spec.client, srv.port, [{ room: "late", doc: writerDoc }]);
    opened.push(writer);
    const wtext = writerDoc.getText("t");
    let seed = 12345; // deterministic LCG: the same insert positions for every server
    for (let k = 0; k < N; k++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      wtext.insert(seed % (wtext.length + 1), tokenFor(0, k));
      if (k % 100 === 99) await tick();
    }
    const observerDoc = new Y.Doc();
    const [observer] = await openClients(spec.client, srv.port, [{ room: "late", doc: observerDoc }]);
    opened.push(observer);
    await until(() => observerDoc.getText("t").length === lateTarget, PHASE_TIMEOUT, "late room observer");
    const joins = [];
    for (let j = 0; j < cfg.lateJoins; j++) {
      const doc = new Y.Doc();
      const text = doc.getText("t");
      const t = performance.now();
      const [c] = await openClients(spec.client, srv.port, [{ room: "late", doc }]);
      await until(() => text.length === lateTarget, PHASE_TIMEOUT, "late joiner", 1);
      joins.push(performance.now() - t);
      await c.close();
    }
    joins.sort((a, b) => a - b);
    result.lateJoinMs = joins[joins.length >> 1];
    result.peakRssMB = procStats(srv.pid).hwmMB;
  } catch (err) {
    result.error = `${err.message}${srv.stderr() ? ` | server stderr: ${srv.stderr().slice(0, 300)}` : ""}`;
  } finally {
    await Promise.all(opened.map((c) => Promise.resolve(c.close()).catch(() => {})));
    await srv.stop();
  }
  return result;
}

// ---- main ----
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

console.log(
  `relay benchmark${quick ? " (quick)" : ""}: ${cfg.rooms} rooms x ${cfg.clients} clients, ${cfg.edits} edits per client ` +
    `(as fast as possible), late joiner: ${cfg.lateEdits} edits, ${cfg.lateJoins} joins; repeat ${cfg.repeat}; ` +
    `node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
);

// Warm-up (discarded): one tiny run per server, so the driver's JIT has seen every client path
// (Y.js, our wasm codec, both providers) before the first measured run.
if (process.env.RELAY_WARMUP !== "0") {
  const tiny = { rooms: 2, clients: 3, edits: 10, lateEdits: 100, lateJoins: 1 };
  for (const key of order) {
    const r = await runOnce(key, tiny);
    if (r.error) console.log(`  warm-up ${key}: FAILED ${r.error}`);
  }
}

const runs = Object.fromEntries(order.map((k) => [k, []]));
for (let rep = 0; rep < cfg.repeat; rep++) {
  for (const key of order) {
    const r = await runOnce(key, cfg);
    runs[key].push(r);
    const line = r.error
      ? `  ${key}: FAILED ${r.error}`
      : `  ${key}: edits ${r.wallMs.toFixed(0)} ms, server CPU ${r.serverCpu.toFixed(2)} s, late join ${r.lateJoinMs.toFixed(0)} ms`;
    console.log(line);
  }
}

const rows = order.map((key) => {
  const ok = runs[key].filter((r) => !r.error);
  const m = (f) => median(ok.map(f));
  return {
    key,
    failed: ok.length === 0 ? runs[key][0]?.error : null,
    wallMs: m((r) => r.wallMs),
    editsPerS: m((r) => r.delivered / (r.wallMs / 1000)),
    serverCpu: m((r) => r.serverCpu),
    cpuPerM: m((r) => r.serverCpu / (r.delivered / 1e6)),
    driverCpu: m((r) => r.driverCpu),
    idleRssMB: m((r) => r.idleRssMB),
    peakRssMB: m((r) => r.peakRssMB),
    lateJoinMs: m((r) => r.lateJoinMs),
    connectMs: m((r) => r.connectMs),
    framesIn: m((r) => r.framesIn), bytesIn: m((r) => r.bytesIn), framesOut: m((r) => r.framesOut), bytesOut: m((r) => r.bytesOut),
    clientErrors: Math.max(0, ...ok.map((r) => r.clientErrors)),
  };
});
const base = rows.find((r) => r.key === "ours-bun" && !r.failed) ?? rows.find((r) => !r.failed);
const ratio = (v, b) => (Number.isFinite(v) && Number.isFinite(b) && b > 0 ? `${(v / b).toFixed(2)}x` : "-");
const fmt = (v, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : "-");

const head = ["server", "edit wall ms", "delivered edits/s", "x", "srv CPU s", "CPU s / M edits", "x", "driver CPU s",
  "idle RSS MB", "peak RSS MB", "x", "late join ms", "x", "connect ms"];
const body = rows.map((r) =>
  r.failed
    ? [servers[r.key].label, `FAILED: ${r.failed.slice(0, 80)}`]
    : [
        servers[r.key].label,
        fmt(r.wallMs),
        fmt(r.editsPerS),
        ratio(r.editsPerS, base?.editsPerS),
        fmt(r.serverCpu, 2),
        fmt(r.cpuPerM, 2),
        ratio(r.cpuPerM, base?.cpuPerM),
        fmt(r.driverCpu, 2),
        fmt(r.idleRssMB, 1),
        fmt(r.peakRssMB, 1),
        ratio(r.peakRssMB, base?.peakRssMB),
        fmt(r.lateJoinMs, 1),
        ratio(r.lateJoinMs, base?.lateJoinMs),
        fmt(r.connectMs),
      ],
);
const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)));
const line = (cells) => "| " + cells.map((c, i) => (c ?? "").padEnd(widths[i])).join(" | ") + " |";
console.log();
console.log(line(head));
console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
for (const row of body) console.log(line(row));
console.log(
  `\nx = ratio to ${base ? servers[base.key].label : "-"} (edits/s: higher is better; CPU, RSS, late join: lower is better).` +
    `\ndelivered edits = rooms*clients*edits*(clients-1) = ${cfg.rooms * cfg.clients * cfg.edits * (cfg.clients - 1)}; ` +
    `server CPU from first edit to convergence + 250 ms; driver CPU = this process (all clients) over the same span.`,
);
const edits = cfg.rooms * cfg.clients * cfg.edits;
const delivered = edits * (cfg.clients - 1);
console.log(`\nwire, edit phase (all clients): frames/bytes received per delivered edit, sent per edit made`);
for (const r of rows.filter((r) => !r.failed)) {
  console.log(`  ${servers[r.key].label.padEnd(30)} in ${fmt(r.framesIn / delivered, 2)} frames, ${fmt(r.bytesIn / delivered, 1)} B` +
    `   out ${fmt(r.framesOut / edits, 2)} frames, ${fmt(r.bytesOut / edits, 1)} B`);
}
const errs = rows.filter((r) => r.clientErrors > 0);
if (errs.length) console.log(`client-side errors/NACKs: ${errs.map((r) => `${r.key}: ${r.clientErrors}`).join(", ")}`);
process.exit(rows.some((r) => r.failed) ? 1 : 0);
