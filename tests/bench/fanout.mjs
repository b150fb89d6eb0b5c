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
//   FANOUT_PERF=dir                      perf record -g attached to each server (dir/<server>-<n>.data)
//
// The clients are build/native/fanout_load (one epoll thread, real WebSockets; see its header):
// frames are made here with Y.js and teleportal/protocol. Every update is a real Y.js update that
// inserts an 8-character token into a Y.Text (V2 in a content envelope for the Teleportal wire,
// V1 in a sync message for Hocuspocus); receivers find the tokens, which counts every delivery,
// also inside merged updates, and gives its latency. Teleportal clients ack every frame they
// receive, as the reference client does.
//   fanout     D documents x C clients; every client keeps FANOUT_WINDOW updates unacknowledged
//              for 5 s warm-up (JIT and wasm tiers settle) + 2 s measured (deliveries counted while measured); then all of
//              them must arrive (a drain, bounded): "missing" says if any did not.
//              deliveries/s = updates received by other clients of their document per second;
//              server CPU per delivery = server process utime+stime in the window / deliveries.
//   handshake  16 loops of: connect with a fresh token (50,000 minted; "token reuse" counts
//              connections in the window that had to use one again), upgrade, initial sync (sync-step-1 +
//              presence-announce, answer the server's step 1, until sync-done; Hocuspocus: Auth +
//              SyncStep1, answer step 1, until SyncStatus), close handshake.
//   idle       500 connections come and go (warm-up: one-time costs go to the baseline), then
//              5,000 then 10,000 authenticated, synced connections (100 documents) stay; RSS growth
//              per connection at 5,000; how many of the 10,000 are still open after holding 2 s.
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
const timing = quick ? { warmupMs: 500, measureMs: 1000 } : { warmupMs: Number(process.env.FANOUT_WARMUP_MS ?? 5000), measureMs: 2000 };
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
let perfRuns = 0;
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
    // The load generator floods on purpose (every client keeps its window full); our default rate
    // limit (1000 messages/s per connection) would measure the limit, and the peers have none.
    TELEPORTAL_RATE_LIMIT: process.env.TELEPORTAL_RATE_LIMIT ?? "off",
    TELEPORTAL_LOG_LEVEL: "warn", // no JSON line per connection: the benchmark measures the server, not its log
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
  let perf = null;
  if (process.env.FANOUT_STRACE) {
    perf = spawn("strace", ["-c", "-f", "-p", String(child.pid), "-o", join(process.env.FANOUT_STRACE, `${key}-${++perfRuns}.txt`)], { stdio: "ignore" });
    await sleep(500);
  } else if (process.env.FANOUT_PERF) {
    const out = join(process.env.FANOUT_PERF, `${key}-${++perfRuns}.data`);
    perf = spawn("perf", ["record", "-F", "1999", "-g", "-p", String(child.pid), "-o", out], { stdio: "ignore" });
    await sleep(500);
  }
  return {
    pid: child.pid,
    port,
    stderr: () => stderr,
    async stop() {
      if (perf) {
        const done = new Promise((r) => perf.once("exit", r));
        perf.kill("SIGINT");
        await done;
      }
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

// A growing byte buffer with lib0's integer encodings (what Y.js and teleportal/protocol write).
class Out {
  constructor(capacity = 1 << 16) {
    this.b = Buffer.allocUnsafe(capacity);
    this.n = 0;
  }
  room(k) {
    if (this.n + k <= this.b.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.b.length * 2, this.n + k));
    this.b.copy(b, 0, 0, this.n);
    this.b = b;
  }
  u8(x) {
    this.room(1);
    this.b[this.n++] = x;
  }
  u32(x) {
    this.room(4);
    this.b.writeUInt32LE(x, this.n);
    this.n += 4;
  }
  vu(x) {
    while (x > 0x7f) {
      this.u8(0x80 | (x & 0x7f));
      x = Math.floor(x / 128);
    }
    this.u8(x);
  }
  vi(x) {
    const negative = x < 0;
    if (negative) x = -x;
    this.u8((x > 0x3f ? 0x80 : 0) | (negative ? 0x40 : 0) | (x & 0x3f));
    x = Math.floor(x / 64);
    while (x > 0) {
      this.u8((x > 0x7f ? 0x80 : 0) | (x & 0x7f));
      x = Math.floor(x / 128);
    }
  }
  raw(bytes) {
    this.room(bytes.length);
    this.b.set(bytes, this.n);
    this.n += bytes.length;
  }
  vb(bytes) {
    this.vu(bytes.length);
    this.raw(bytes);
  }
  take(from = 0) {
    return Uint8Array.prototype.slice.call(this.b, from, this.n);
  }
}
const vuLen = (x) => (x < 0x80 ? 1 : x < 0x4000 ? 2 : x < 0x200000 ? 3 : x < 0x10000000 ? 4 : 5);

// The k-th update (k >= 1) of a client that appends `token` to its own Y.Text, built from the
// columns of Y.js's own first such update with only the two clocks changed: the bytes Y.js makes
// (checked against Y.js below), at well under a microsecond each instead of Y.js's ~50, written
// straight into the frames (Teleportal: V2 in a content envelope; Hocuspocus: V1 sync update).
function appendUpdates(clientID, typeName, token, document) {
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
  const head = new Out(64);
  head.u8(0);
  head.vb(columns[0]);
  head.vb(columns[1]);
  const tail = new Out(64);
  for (const c of columns.slice(3)) tail.vb(c);
  tail.u8(1);
  tail.u8(1);
  const v2Head = head.take();
  const v2Tail = tail.take();
  const name = Buffer.from(document);
  const tokenBytes = Buffer.from(token);
  const leftClock = (k) => 2 * (n * k - 1); // IntDiffOptRle of one value
  const writeV2 = (out, k) => {
    out.raw(v2Head);
    const lc = new Out(16);
    lc.vi(leftClock(k));
    out.vb(lc.take());
    out.raw(v2Tail);
    out.vu(n * k);
    out.u8(0);
  };
  const v2Of = (k) => {
    const o = new Out(128);
    writeV2(o, k);
    return o.take();
  };
  const writeV1 = (out, k) => {
    out.u8(1), out.u8(1), out.vu(clientID), out.vu(n * k);
    out.u8(0x84); // ItemString with a left origin
    out.vu(clientID), out.vu(n * k - 1), out.vb(tokenBytes), out.u8(0);
  };
  const v1Of = (k) => {
    const o = new Out(128);
    writeV1(o, k);
    return o.take();
  };
  return {
    first: yjs(0),
    synth: (k) => [v2Of(k), v1Of(k)],
    yjs,
    // The frames of update k (k >= 1) appended to `tp` and `hp`.
    frames(k, tp, hp) {
      const v2 = v2Of(k);
      tp.raw([0x59, 0x4a, 0x53, 1]), tp.vb(name), tp.raw([0, 0, 2, 2]);
      tp.vu(1 + vuLen(v2.length) + v2.length + 2), tp.u8(1), tp.vb(v2), tp.u8(0), tp.u8(0);
      const v1u = v1Of(k);
      hp.vb(name), hp.u8(0), hp.u8(2), hp.vb(v1u);
    },
  };
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
  const base = join(cacheDir, `fanout-v4-${docs}x${clients}-${perClient}`);
  const files = { teleportal: `${base}.tp.bin`, hocuspocus: `${base}.hp.bin` };
  if (existsSync(files.teleportal) && existsSync(files.hocuspocus)) return files;
  const t0 = performance.now();
  const out = { teleportal: new Out(1 << 24), hocuspocus: new Out(1 << 24) };
  const frame = { teleportal: new Out(256), hocuspocus: new Out(256) };
  const record = (wire, write) => {
    const f = frame[wire];
    f.n = 0;
    write(f);
    const at = f.b.subarray(0, f.n).indexOf(PLACEHOLDER);
    if (at < 0) throw new Error("placeholder not found in a frame");
    out[wire].u32(f.n);
    out[wire].u32(at);
    out[wire].raw(f.b.subarray(0, f.n));
  };
  for (let g = 0; g < docs; g++) {
    const name = docName(g);
    for (let s = 0; s < clients; s++) {
      const token = `~${B32[s >> 5]}${B32[s & 31]}${PLACEHOLDER}`;
      const u = appendUpdates(100000 + g * 1024 + s, `t${s}`, token, name); // one text per client
      checkAppendUpdates(u, g === 0 && s === 0 ? Math.min(perClient, 2100) : 3);
      out.teleportal.u32(perClient);
      out.hocuspocus.u32(perClient);
      record("teleportal", (f) => f.raw(tpUpdate(name, u.first[0])));
      record("hocuspocus", (f) => f.raw(hpUpdate(name, u.first[1])));
      for (let k = 1; k < perClient; k++) {
        const tp = frame.teleportal;
        const hp = frame.hocuspocus;
        tp.n = 0;
        hp.n = 0;
        u.frames(k, tp, hp);
        for (const [wire, f] of [["teleportal", tp], ["hocuspocus", hp]]) {
          const at = f.b.subarray(0, f.n).indexOf(PLACEHOLDER);
          if (at < 0) throw new Error("placeholder not found in a frame");
          out[wire].u32(f.n);
          out[wire].u32(at);
          out[wire].raw(f.b.subarray(0, f.n));
        }
        if (g === 0 && s === 0 && k <= 64) {
          // The frames match what teleportal/protocol and lib0 make of the same update.
          const [v2, v1u] = u.synth(k);
          if (!Buffer.from(tp.take()).equals(Buffer.from(tpUpdate(name, v2))) || !Buffer.from(hp.take()).equals(Buffer.from(hpUpdate(name, v1u)))) {
            throw new Error("update frame differs from the encoders'");
          }
        }
      }
    }
  }
  const sample = appendUpdates(7, "t", "~00?????", "doc-0").synth(3)[0];
  if (!Buffer.from(tpUpdate("doc-0", sample)).equals(Buffer.from(tpDoc("doc-0", { type: "update", update: { version: 2, data: envelope(sample) } })))) {
    throw new Error("update frame differs from encodeMessage's");
  }
  writeFileSync(files.teleportal, out.teleportal.b.subarray(0, out.teleportal.n));
  writeFileSync(files.hocuspocus, out.hocuspocus.b.subarray(0, out.hocuspocus.n));
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
  handshakeTokens ??= await mintTokens(quick ? 15_000 : 50_000, "hs");
  return withServer(key, async (srv) => {
    const specs = handshakeTokens.map((t, i) => clientSpec(spec.wire, spec.bare, i % 10, 0, t, 200000 + i));
    return runLoad({ mode: "handshake", protocol: spec.wire, port: srv.port, serverPid: srv.pid, concurrency: 16, ...timing, drainMs: 5000, clients: specs });
  });
}

async function idle(key) {
  const spec = servers[key];
  const n = quick ? 5000 : 10_000;
  return withServer(key, async (srv) => {
    const warmup = 500;
    const specs = [];
    for (let i = 0; i < warmup + n; i++) specs.push(clientSpec(spec.wire, spec.bare, i % 100, 0, clientTokens[i % clientTokens.length], 300000 + i));
    return runLoad({ mode: "idle", protocol: spec.wire, port: srv.port, serverPid: srv.pid, warmup, counts: quick ? [5000] : [5000, 10_000], settleMs: 2000, holdMs: 2000, timeoutMs: 120_000, clients: specs });
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
    ["server", "handshakes/s", "x Hocuspocus", "CPU us/handshake", "x Hocuspocus", "p50 ms", "p99 ms", "failed", "token reuse"],
    order.map((k) => {
      if (failed("handshake", k)) return [servers[k].label, `FAILED: ${failed("handshake", k).slice(0, 100)}`];
      const m = (f) => med("handshake", k, f);
      const rate = m((r) => r.handshakesPerS);
      const cpu = m((r) => r.cpuUsPerHandshake);
      return [servers[k].label, fmt(rate), ratio(rate, med("handshake", peerOf(k), (r) => r.handshakesPerS)), fmt(cpu),
        ratio(cpu, med("handshake", peerOf(k), (r) => r.cpuUsPerHandshake)), fmt(m((r) => r.p50Ms), 1), fmt(m((r) => r.p99Ms), 1), fmt(m((r) => r.failed)),
        servers[k].bare ? "n/a" : fmt(m((r) => r.reusedInWindow))];
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
