// Fan-out and handshake benchmark: our server (Bun and Node, the project's default durable storage:
// SQLite, built-in token check) side by side with Hocuspocus 4.7 (Bun and Node) and a bare
// Bun.serve relay, in one run, ratios against the peers of the same run.
//
//   node tests/bench/fanout.mjs          (or under Bun; scripts/bench runs it)
//   FANOUT_QUICK=1                       one repeat, short windows, fewer points
//   FANOUT_REPEAT=3                      fresh server process per run; medians of the repeats
//   FANOUT_SERVERS=ours-bun,hocuspocus-bun,...   subset and order
//   FANOUT_PARTS=fanout,curve,handshake,idle     which measurements
//   FANOUT_WINDOW=8                      updates in flight per client (unacknowledged)
//   FANOUT_PLOT=path.png                 also write the plot (gnuplot), default docs/fanout.png when
//                                        the curve is measured; FANOUT_PLOT=0 for none
//   FANOUT_JSON=path.json                raw results
//   FANOUT_PROFILE=dir                   servers run with --cpu-prof into dir (Bun and Node)
//
// The clients are build/native/fanout_load (one epoll thread, real WebSockets; see its header):
// frames are made here with Y.js and teleportal/protocol. Every update is a real Y.js update that
// inserts an 8-character token into a Y.Text (V2 in a content envelope for the Teleportal wire,
// V1 in a sync message for Hocuspocus); receivers find the tokens, which counts every delivery,
// also inside merged updates, and gives its latency. Teleportal clients ack every frame they
// receive, as the reference client does.
//   fanout     D documents x C clients; every client keeps FANOUT_WINDOW updates unacknowledged
//              for 0.5 s warm-up + 2 s measured (deliveries counted while measured); then all of
//              them must arrive (a drain, bounded): "missing" says if any did not.
//              deliveries/s = updates received by other clients of their document per second;
//              server CPU per delivery = server process utime+stime in the window / deliveries.
//   handshake  16 loops of: connect with a fresh token, upgrade, initial sync (sync-step-1 +
//              presence-announce, answer the server's step 1, until sync-done; Hocuspocus: Auth +
//              SyncStep1, answer step 1, until SyncStatus), close handshake.
//   idle       5,000 then 10,000 authenticated, synced connections (100 documents); RSS growth per
//              connection at 5,000; how many of the 10,000 are still open after holding 2 s.
// Prints tables; asserts no timings.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const testsDir = join(root, "tests");
const Y = await import("yjs");
const encoding = await import("lib0/encoding");
const decoding = await import("lib0/decoding");
const { encodeMessage, encodeContentEncryptedPayload } = await import("teleportal/protocol");
const { createTokenManager } = await import("teleportal/token");

const quick = process.env.FANOUT_QUICK === "1";
const repeat = Number(process.env.FANOUT_REPEAT ?? (quick ? 1 : 3));
const windowSize = Number(process.env.FANOUT_WINDOW ?? 8);
const parts = (process.env.FANOUT_PARTS ?? "fanout,curve,handshake,idle").split(",");
const timing = quick ? { warmupMs: 300, measureMs: 1000 } : { warmupMs: 500, measureMs: 2000 };
const SECRET = "fanout-bench-secret-0123456789abcdef";
const bun = join(testsDir, "node_modules", ".bin", "bun");
const node = process.versions.bun ? "node" : process.execPath;
const loadgen = join(root, "build", "native", "fanout_load");
const cacheDir = join(root, "build", "bench-cache");

const servers = {
  "ours-bun": { label: "ours (Bun, SQLite)", cmd: [bun, join(root, "host-bun", "serve.js")], wire: "teleportal", durable: true },
  "ours-node": { label: "ours (Node, SQLite)", cmd: [node, join(root, "host-bun", "serve.js")], wire: "teleportal", durable: true },
  "hocuspocus-bun": { label: "Hocuspocus 4.7 (Bun)", cmd: [bun, join(here, "servers", "hocuspocus.mjs")], wire: "hocuspocus" },
  "hocuspocus-node": { label: "Hocuspocus 4.7 (Node)", cmd: [node, join(here, "servers", "hocuspocus.mjs")], wire: "hocuspocus" },
  "bare-bun": { label: "bare Bun.serve relay", cmd: [bun, join(here, "servers", "bare-bun.js")], wire: "teleportal", bare: true },
};
const order = (process.env.FANOUT_SERVERS ?? Object.keys(servers).join(",")).split(",").filter((k) => servers[k]);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = (u8) => Buffer.from(u8).toString("hex");
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

// ---- servers ------------------------------------------------------------------------------
async function startServer(key) {
  const spec = servers[key];
  const dir = mkdtempSync(join(tmpdir(), "fanout-"));
  const env = {
    ...process.env,
    HOST: "127.0.0.1",
    PORT: "0",
    TELEPORTAL_SECRET: SECRET,
    TELEPORTAL_DB: join(dir, "teleportal.sqlite"),
    HOCUSPOCUS_JWT_SECRET: SECRET,
  };
  const profile = process.env.FANOUT_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.FANOUT_PROFILE}`] : [];
  const child = spawn(spec.cmd[0], [...profile, ...spec.cmd.slice(1)], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${key}: no port after 20 s: ${stderr}`)), 20_000);
    child.stdout.on("data", (d) => {
      out += d;
      const json = out.split("\n").find((l) => l.startsWith("{"));
      const url = out.match(/listening on ws:\/\/[^:]+:(\d+)/);
      if (json || url) {
        clearTimeout(timer);
        resolve(json ? JSON.parse(json).port : Number(url[1]));
      }
    });
    child.on("exit", (code) => reject(new Error(`${key} exited with ${code}: ${stderr}`)));
  });
  return {
    pid: child.pid,
    port,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        if (!(await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]))) {
          child.kill("SIGKILL");
          await exited;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- frames -------------------------------------------------------------------------------
const tokens = createTokenManager({ secret: SECRET });
const docName = (g) => `doc-${g}`;
const ROOM = "bench";
const access = [{ pattern: "doc-*", permissions: ["read", "write"] }];
const mintTokens = async (n, prefix) => {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await tokens.createToken(`${prefix}-${i}`, ROOM, access, { expiresIn: 3600 }));
  return out;
};
const emptyV2 = Y.encodeStateAsUpdateV2(new Y.Doc());
const emptyV1 = Y.encodeStateAsUpdate(new Y.Doc());
const envelope = (update) => encodeContentEncryptedPayload({ structureUpdate: update, encryptedSidecars: [] });
const tpDoc = (name, payload) => encodeMessage({ type: "doc", document: name, encrypted: false, payload });
const hpFrame = (name, write) => {
  const e = encoding.createEncoder();
  encoding.writeVarString(e, name);
  write(e);
  return encoding.toUint8Array(e);
};

// What one client sends on open and in answer to the server's sync-step-1.
function clientSpec(wire, bare, g, sender, token, awarenessId) {
  const name = docName(g);
  if (wire === "hocuspocus") {
    return {
      path: "/",
      hello: [
        hpFrame(name, (e) => (encoding.writeVarUint(e, 2), encoding.writeVarUint(e, 0), encoding.writeVarString(e, token))),
        hpFrame(name, (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 0), encoding.writeVarUint8Array(e, Y.encodeStateVector(new Y.Doc())))),
      ].map(hex),
      step2: hex(hpFrame(name, (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 1), encoding.writeVarUint8Array(e, emptyV1)))),
      group: g,
      sender,
    };
  }
  return {
    path: bare ? `/?room=${name}` : `/?token=${token}`,
    hello: [
      tpDoc(name, { type: "sync-step-1", sv: Y.encodeStateVector(new Y.Doc()) }),
      encodeMessage({ type: "presence", document: name, encrypted: false, payload: { type: "presence-announce", awarenessId } }),
    ].map(hex),
    step2: hex(tpDoc(name, { type: "sync-step-2", update: { version: 2, data: envelope(emptyV2) } })),
    group: g,
    sender,
  };
}

const B32 = "0123456789abcdefghijklmnopqrstuv";
const PLACEHOLDER = "?????";
const bytes = (write) => {
  const e = encoding.createEncoder();
  write(e);
  return encoding.toUint8Array(e);
};
const concat = (...parts) => Buffer.concat(parts.map((p) => Buffer.from(p)));

// The k-th update (k >= 1) of a client that appends `token` to its own Y.Text, built from the
// columns of Y.js's own first such update with only the two clocks changed: the bytes Y.js makes
// (checked against Y.js below), at a microsecond each instead of Y.js's ~50.
function appendUpdates(clientID, typeName, token) {
  const doc = new Y.Doc();
  doc.clientID = clientID;
  const text = doc.getText(typeName);
  const made = []; // what Y.js made: [v2, v1] for k = 0, 1, ...
  let v1;
  doc.on("update", (u) => (v1 = u));
  doc.on("updateV2", (u) => made.push([u, v1]));
  const yjs = (k) => {
    while (made.length <= k) text.insert(text.length, token);
    return made[k];
  };
  // V2: feature byte, 9 columns (keyClock, client, leftClock, rightClock, info, string,
  // parentInfo, typeRef, len), then the rest (1 client, 1 struct, clock, empty delete set).
  const d = decoding.createDecoder(yjs(1)[0]);
  decoding.readVarUint(d);
  const columns = Array.from({ length: 9 }, () => decoding.readVarUint8Array(d));
  const n = token.length;
  const synth = (k) => {
    columns[2] = bytes((e) => encoding.writeVarInt(e, 2 * (n * k - 1))); // leftClock (IntDiffOptRle, one value)
    const v2 = concat([0], ...columns.map((c) => bytes((e) => encoding.writeVarUint8Array(e, c))),
      bytes((e) => (encoding.writeVarUint(e, 1), encoding.writeVarUint(e, 1), encoding.writeVarUint(e, n * k), encoding.writeVarUint(e, 0))));
    const v1u = bytes((e) => {
      encoding.writeVarUint(e, 1), encoding.writeVarUint(e, 1), encoding.writeVarUint(e, clientID), encoding.writeVarUint(e, n * k);
      encoding.writeUint8(e, 0x84); // ItemString with a left origin
      encoding.writeVarUint(e, clientID), encoding.writeVarUint(e, n * k - 1), encoding.writeVarString(e, token), encoding.writeVarUint(e, 0);
    });
    return [v2, v1u];
  };
  return { first: yjs(0), synth, yjs };
}

// Checks the synthesized updates against Y.js: every k up to `upTo` (varint widths change at
// k = 5, 16, 513, 2048 for 8-character tokens).
function checkAppendUpdates(u, upTo) {
  for (let k = 1; k <= upTo; k++) {
    const [a2, a1] = u.synth(k);
    const [b2, b1] = u.yjs(k);
    if (!Buffer.from(a2).equals(Buffer.from(b2)) || !Buffer.from(a1).equals(Buffer.from(b1))) {
      throw new Error(`synthesized update ${k} differs from Y.js's`);
    }
  }
}

const tpUpdate = (name, v2) =>
  concat([0x59, 0x4a, 0x53, 1], bytes((e) => encoding.writeVarString(e, name)), [0, 0, 2, 2], bytes((e) => encoding.writeVarUint8Array(e, concat([1], bytes((x) => encoding.writeVarUint8Array(x, v2)), [0, 0]))));
const hpUpdate = (name, v1) => hpFrame(name, (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 2), encoding.writeVarUint8Array(e, v1)));

// Updates of every client of a D x C scenario, for both wires, cached in build/bench-cache.
function updateFiles(docs, clients, perClient) {
  mkdirSync(cacheDir, { recursive: true });
  const base = join(cacheDir, `fanout-v3-${docs}x${clients}-${perClient}`);
  const files = { teleportal: `${base}.tp.bin`, hocuspocus: `${base}.hp.bin` };
  if (existsSync(files.teleportal) && existsSync(files.hocuspocus)) return files;
  const t0 = performance.now();
  const out = { teleportal: [], hocuspocus: [] };
  const u32 = (n) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const push = (list, frame) => {
    const at = Buffer.from(frame).indexOf(PLACEHOLDER);
    if (at < 0) throw new Error("placeholder not found in a frame");
    list.push(u32(frame.length), u32(at), Buffer.from(frame));
  };
  for (let g = 0; g < docs; g++) {
    const name = docName(g);
    for (let s = 0; s < clients; s++) {
      const token = `~${B32[s >> 5]}${B32[s & 31]}${PLACEHOLDER}`;
      const u = appendUpdates(100000 + g * 1024 + s, `t${s}`, token); // one text per client
      checkAppendUpdates(u, g === 0 && s === 0 ? Math.min(perClient, 2100) : 3);
      out.teleportal.push(u32(perClient));
      out.hocuspocus.push(u32(perClient));
      for (let k = 0; k < perClient; k++) {
        const [v2, v1] = k === 0 ? u.first : u.synth(k);
        push(out.teleportal, tpUpdate(name, v2));
        push(out.hocuspocus, hpUpdate(name, v1));
      }
    }
  }
  // The frame encoding matches teleportal/protocol's.
  const sample = appendUpdates(7, "t", "~00?????").synth(3)[0];
  if (!Buffer.from(tpUpdate("doc-0", sample)).equals(Buffer.from(tpDoc("doc-0", { type: "update", update: { version: 2, data: envelope(sample) } })))) {
    throw new Error("update frame differs from encodeMessage's");
  }
  writeFileSync(files.teleportal, Buffer.concat(out.teleportal));
  writeFileSync(files.hocuspocus, Buffer.concat(out.hocuspocus));
  console.log(`  (made ${docs * clients * perClient} Y.js updates for ${docs}x${clients} in ${((performance.now() - t0) / 1000).toFixed(1)} s, cached)`);
  return files;
}

function runLoad(config) {
  const dir = mkdtempSync(join(tmpdir(), "fanout-load-"));
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify(config));
  const r = spawnSync(loadgen, [file], { encoding: "utf8", maxBuffer: 64 << 20 });
  rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`fanout_load failed (${r.status}): ${r.stderr.slice(0, 400)}`);
  if (r.stderr) process.stderr.write(r.stderr.slice(0, 400));
  return JSON.parse(r.stdout);
}

// ---- one measurement against one fresh server -----------------------------------------------
const clientTokens = await mintTokens(1000, "client");

async function withServer(key, body) {
  const srv = await startServer(key);
  try {
    await sleep(300);
    return await body(srv);
  } catch (err) {
    return { error: `${err.message}${srv.stderr() ? ` | server stderr: ${srv.stderr().slice(0, 300)}` : ""}` };
  } finally {
    await srv.stop();
  }
}

// Updates per client: enough for the measured span at 3M deliveries/s, at most 1.2M in all
// ("ran out" counts clients that sent all of theirs before the window closed).
const perClientFor = (docs, clients) => {
  const total = Math.min(1_200_000, (3_000_000 * (timing.warmupMs + timing.measureMs)) / 1000 / (clients - 1));
  return Math.ceil(total / (docs * clients)) + windowSize;
};

async function fanout(key, docs, clients) {
  const spec = servers[key];
  const files = updateFiles(docs, clients, perClientFor(docs, clients));
  return withServer(key, async (srv) => {
    const specs = [];
    for (let g = 0; g < docs; g++) {
      for (let s = 0; s < clients; s++) {
        specs.push(clientSpec(spec.wire, spec.bare, g, s, clientTokens[(g * clients + s) % clientTokens.length], 100000 + g * 1024 + s));
      }
    }
    return runLoad({
      mode: "fanout", protocol: spec.wire, port: srv.port, serverPid: srv.pid, window: windowSize,
      ...timing, drainMs: 10_000, clients: specs, updates: files[spec.wire],
    });
  });
}

let handshakeTokens = null;
async function handshake(key) {
  const spec = servers[key];
  handshakeTokens ??= await mintTokens(quick ? 15_000 : 40_000, "hs");
  return withServer(key, async (srv) => {
    const specs = handshakeTokens.map((t, i) => clientSpec(spec.wire, spec.bare, i % 10, 0, t, 200000 + i));
    return runLoad({ mode: "handshake", protocol: spec.wire, port: srv.port, serverPid: srv.pid, concurrency: 16, ...timing, drainMs: 5000, clients: specs });
  });
}

async function idle(key) {
  const spec = servers[key];
  const n = quick ? 5000 : 10_000;
  return withServer(key, async (srv) => {
    const specs = [];
    for (let i = 0; i < n; i++) specs.push(clientSpec(spec.wire, spec.bare, i % 100, 0, clientTokens[i % clientTokens.length], 300000 + i));
    return runLoad({ mode: "idle", protocol: spec.wire, port: srv.port, serverPid: srv.pid, counts: quick ? [5000] : [5000, 10_000], settleMs: 1000, holdMs: 2000, timeoutMs: 120_000, clients: specs });
  });
}

// ---- the run --------------------------------------------------------------------------------
const version = (cmd) => spawnSync(cmd, ["--version"], { encoding: "utf8" }).stdout.trim();
console.log(
  `fan-out benchmark${quick ? " (quick)" : ""}: repeat ${repeat}, window ${windowSize}, ${timing.warmupMs} ms warm-up + ${timing.measureMs} ms measured; ` +
    `bun ${version(bun)}, node ${version(node)}, ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`,
);
if (!existsSync(loadgen)) throw new Error(`${loadgen} missing: run scripts/build`);

const fanoutCases = parts.includes("fanout") ? [[1, 16], [10, 10]] : [];
const curveClients = parts.includes("curve") ? (quick ? [4, 16, 64] : [2, 4, 8, 16, 32, 64]) : [];
const cases = [...fanoutCases.map(([d, c]) => `${d}x${c}`), ...curveClients.map((c) => `1x${c}`)].filter((v, i, a) => a.indexOf(v) === i);
const results = {}; // results[case][server] = [runs]
const record = (what, key, r) => {
  ((results[what] ??= {})[key] ??= []).push(r);
  const shown = r.error ? `FAILED ${r.error}` : JSON.stringify(r).slice(0, 220);
  console.log(`  ${what} ${key}: ${shown}`);
};
for (let rep = 0; rep < repeat; rep++) {
  for (const c of cases) {
    const [d, n] = c.split("x").map(Number);
    for (const key of order) record(c, key, await fanout(key, d, n));
  }
  if (parts.includes("handshake")) for (const key of order) record("handshake", key, await handshake(key));
  if (parts.includes("idle")) for (const key of order) record("idle", key, await idle(key));
}

// ---- tables -------------------------------------------------------------------------------
const med = (what, key, f) => median((results[what]?.[key] ?? []).filter((r) => !r.error).map(f));
const fmt = (v, d = 0) => (Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }) : "-");
const ratio = (v, b) => (Number.isFinite(v) && Number.isFinite(b) && b > 0 ? `${(v / b).toFixed(2)}x` : "-");
function table(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? "").length)));
  const line = (cells) => "| " + cells.map((c, i) => String(c ?? "").padEnd(w[i])).join(" | ") + " |";
  console.log(line(head));
  console.log("|" + w.map((n) => "-".repeat(n + 2)).join("|") + "|");
  for (const r of rows) console.log(line(r));
}
const peerOf = (key) => (key.endsWith("-node") ? "hocuspocus-node" : "hocuspocus-bun");
const failed = (what, key) => (results[what]?.[key] ?? []).every((r) => r.error) && results[what]?.[key]?.[0]?.error;

for (const c of cases) {
  console.log(`\n${c} (documents x clients): medians of ${repeat}`);
  table(
    ["server", "deliveries/s", "x Hocuspocus", "x bare", "CPU us/delivery", "x bare", "p50 ms", "p99 ms", "x Hocuspocus", "missing", "ran out", "gen CPU s"],
    order.map((k) => {
      if (failed(c, k)) return [servers[k].label, `FAILED: ${failed(c, k).slice(0, 100)}`];
      const m = (f) => med(c, k, f);
      const rate = m((r) => r.deliveriesPerS);
      const cpu = m((r) => r.cpuUsPerDelivery);
      const p99 = m((r) => r.p99Ms);
      return [
        servers[k].label, fmt(rate), ratio(rate, med(c, peerOf(k), (r) => r.deliveriesPerS)), ratio(rate, med(c, "bare-bun", (r) => r.deliveriesPerS)),
        fmt(cpu, 2), ratio(cpu, med(c, "bare-bun", (r) => r.cpuUsPerDelivery)), fmt(m((r) => r.p50Ms), 1), fmt(p99, 1),
        ratio(p99, med(c, peerOf(k), (r) => r.p99Ms)), fmt(m((r) => r.missing)), fmt(m((r) => r.outOfUpdates)), fmt(m((r) => r.generatorCpuS), 2),
      ];
    }),
  );
}
if (parts.includes("handshake")) {
  console.log(`\nhandshakes (fresh token, upgrade + initial sync + close; 16 at a time): medians of ${repeat}`);
  table(
    ["server", "handshakes/s", "x Hocuspocus", "CPU us/handshake", "x Hocuspocus", "p50 ms", "p99 ms", "failed"],
    order.map((k) => {
      if (failed("handshake", k)) return [servers[k].label, `FAILED: ${failed("handshake", k).slice(0, 100)}`];
      const m = (f) => med("handshake", k, f);
      const rate = m((r) => r.handshakesPerS);
      const cpu = m((r) => r.cpuUsPerHandshake);
      return [servers[k].label, fmt(rate), ratio(rate, med("handshake", peerOf(k), (r) => r.handshakesPerS)), fmt(cpu),
        ratio(cpu, med("handshake", peerOf(k), (r) => r.cpuUsPerHandshake)), fmt(m((r) => r.p50Ms), 1), fmt(m((r) => r.p99Ms), 1), fmt(m((r) => r.failed))];
    }),
  );
}
if (parts.includes("idle")) {
  console.log(`\nidle connections (authenticated, synced, 100 documents): medians of ${repeat}`);
  const last = quick ? 5000 : 10_000;
  table(
    ["server", "kB/conn at 5,000", "x Hocuspocus", `RSS MB at ${last.toLocaleString("en-US")}`, `held of ${last.toLocaleString("en-US")}`],
    order.map((k) => {
      if (failed("idle", k)) return [servers[k].label, `FAILED: ${failed("idle", k).slice(0, 100)}`];
      const m = (f) => med("idle", k, f);
      const kb = m((r) => r.steps[0].kbPerConnection);
      return [servers[k].label, fmt(kb, 1), ratio(kb, med("idle", peerOf(k), (r) => r.steps[0].kbPerConnection)),
        fmt(m((r) => r.steps.at(-1).rssKb / 1024), 0), fmt(m((r) => r.heldOpen))];
    }),
  );
}
console.log(
  "\nx Hocuspocus: against Hocuspocus on the same runtime (Bun or Node), same run. x bare: against the bare Bun.serve relay." +
    "\nOurs stores every update in SQLite before it is acknowledged or relayed (group commit); Hocuspocus runs without persistence." +
    "\nmissing: deliveries that never arrived after the drain (must be 0). ran out: clients that had sent all their updates before the" +
    " window closed (the rate is then a lower bound). gen CPU: the load generator's CPU in the window.",
);

if (process.env.FANOUT_JSON) writeFileSync(process.env.FANOUT_JSON, JSON.stringify(results, null, 1));

// ---- plot -----------------------------------------------------------------------------------
const plotPath = process.env.FANOUT_PLOT ?? join(root, "docs", "fanout.png");
if (curveClients.length > 1 && plotPath !== "0") {
  const gnuplot = spawnSync("gnuplot", ["--version"], { encoding: "utf8" });
  if (gnuplot.status !== 0) {
    console.log("\nplot skipped: gnuplot not installed (scripts/setup installs gnuplot-nox)");
  } else {
    const dir = mkdtempSync(join(tmpdir(), "fanout-plot-"));
    const data = join(dir, "curve.dat");
    const lines = ["clients " + order.join(" ")];
    for (const c of curveClients) lines.push(`${c} ` + order.map((k) => fmt(med(`1x${c}`, k, (r) => r.deliveriesPerS) / 1000, 1).replace(/,/g, "") || "NaN").join(" "));
    writeFileSync(data, lines.join("\n").replace(/ -/g, " NaN") + "\n");
    const plots = order.map((k, i) => `'${data}' using 1:${i + 2} with linespoints lw 2 pt 7 title '${servers[k].label}'`).join(", ");
    const script = [
      "set terminal pngcairo size 900,540 font 'sans,11'",
      `set output '${plotPath}'`,
      "set title 'Fan-out: deliveries per second, 1 document, clients per document (log scale)'",
      "set xlabel 'clients per document'",
      "set ylabel 'thousand deliveries / s'",
      "set logscale x 2",
      `set xtics (${curveClients.join(", ")})`,
      "set grid",
      "set key top left",
      "set yrange [0:*]",
      `plot ${plots}`,
    ].join("\n");
    const r = spawnSync("gnuplot", { input: script, encoding: "utf8" });
    console.log(r.status === 0 ? `\nplot: ${plotPath}` : `\nplot failed: ${r.stderr}`);
    rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(order.some((k) => cases.some((c) => failed(c, k))) ? 1 : 0);
