// Cluster benchmark: the same clients all on one node, or spread over two nodes of a cluster
// (host-bun/serve.js processes on one PostgreSQL and one Redis, tests/cluster/harness.mjs), one table.
//
//   node tests/bench/cluster.mjs          (scripts/bench runs it under Bun; either works)
//   CLUSTER_QUICK=1 node tests/bench/cluster.mjs
//
// Rows, in one run against the same PostgreSQL and Redis:
//   1 node            a node outside any cluster (PostgreSQL storage, no Redis)
//   1 node, cluster   a cluster node with every client on it (every update also goes to Redis)
//   2 nodes, spread   the clients of each document alternate between two cluster nodes: an edit
//                     reaches half of its readers through Redis and the other node
//   2 nodes, split    each document's clients all on one node (documents alternate): two nodes
//                     share the load without sharing a document
// Workload: D documents x C clients (tests/hosts/yclient.mjs: real Y.Doc, Teleportal wire). Each
// edit is one Y.Map entry (one update frame); a delivery is an edit applied at another client of
// its document, so every edit makes C - 1 deliveries.
//   throughput  K rounds of one edit per client (then one event-loop turn), as fast as possible:
//               deliveries/s from the first edit to the last delivery
//   latency     every client edits every P ms (200) for T ms (3000): a light load (a quarter of what
//               the throughput phase reaches here, where the driver shares the 2 cores); time from
//               the edit to each delivery, p50/p99 (clients and nodes share this machine's clock)
// Server CPU: utime + stime of the node processes used, over both phases (/proc/<pid>/stat).
// Each setup runs CLUSTER_REPEAT times (default 3; setups take turns, on fresh documents); the table
// shows medians. Environment: CLUSTER_RUNTIME (bun | node, default bun), CLUSTER_DOCS, CLUSTER_CLIENTS,
// CLUSTER_EDITS, CLUSTER_PACE_MS, CLUSTER_PACED_MS, CLUSTER_REPEAT. Prints a table; asserts no timings.
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import os from "node:os";
import { startCluster } from "../cluster/harness.mjs";
import { YClient } from "../hosts/yclient.mjs";

const quick = process.env.CLUSTER_QUICK === "1";
const num = (name, full, small) => Number(process.env[name] ?? (quick ? small : full));
const cfg = {
  runtime: process.env.CLUSTER_RUNTIME === "node" ? "node" : "bun",
  docs: num("CLUSTER_DOCS", 10, 4),
  clients: num("CLUSTER_CLIENTS", 6, 4),
  edits: num("CLUSTER_EDITS", 40, 20),
  paceMs: num("CLUSTER_PACE_MS", 200, 200),
  pacedMs: num("CLUSTER_PACED_MS", 3000, 1500),
  repeat: num("CLUSTER_REPEAT", 3, 1),
};
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));

function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

async function until(pred, ms, what) {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(2);
  }
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * Opens the clients of every document on `nodes` (client i of document d on node i mod n, or with
 * `split` on node d mod n), edits, measures.
 */
async function run(label, nodes, tag, { split = false } = {}) {
  const clients = [];
  const sent = new Map(); // edit key -> performance.now() when made
  let latencies = [];
  for (let d = 0; d < cfg.docs; d++) {
    for (let i = 0; i < cfg.clients; i++) {
      const node = nodes[(split ? d : i) % nodes.length];
      const c = await YClient.open(await node.url(`u${i}`), `${tag}-doc-${d}`);
      await c.synced;
      c.doc.getMap("m").observe((ev, tr) => {
        if (tr.local) return;
        const now = performance.now();
        for (const key of ev.keysChanged) latencies.push(now - sent.get(key));
      });
      clients.push(c);
    }
  }
  const edit = (c, ci, k) => {
    const key = `${ci}:${k}`;
    sent.set(key, performance.now());
    c.doc.getMap("m").set(key, k);
  };
  const perEdit = cfg.clients - 1;
  const cpu0 = nodes.reduce((s, n) => s + cpuSeconds(n.child.pid), 0);

  // Throughput: as fast as possible.
  const t0 = performance.now();
  for (let k = 0; k < cfg.edits; k++) {
    clients.forEach((c, ci) => edit(c, ci, k));
    await turn();
  }
  const burst = clients.length * cfg.edits * perEdit;
  await until(() => latencies.length >= burst, 120_000, `${label}: throughput deliveries`);
  const seconds = (performance.now() - t0) / 1000;
  latencies = [];

  // Latency: a steady load, every client one edit per paceMs (start times spread over one period).
  const rounds = Math.floor(cfg.pacedMs / cfg.paceMs);
  await Promise.all(clients.map(async (c, ci) => {
    await sleep((ci / clients.length) * cfg.paceMs);
    for (let k = 0; k < rounds; k++) {
      edit(c, ci, cfg.edits + k);
      await sleep(cfg.paceMs);
    }
  }));
  await until(() => latencies.length >= clients.length * rounds * perEdit, 60_000, `${label}: paced deliveries`);
  const cpu = nodes.reduce((s, n) => s + cpuSeconds(n.child.pid), 0) - cpu0;
  const sorted = latencies.sort((a, b) => a - b);

  // Every client of a document holds the same map.
  for (let d = 0; d < cfg.docs; d++) {
    const group = clients.slice(d * cfg.clients, (d + 1) * cfg.clients).map((c) => JSON.stringify(Object.entries(c.doc.getMap("m").toJSON()).sort()));
    if (new Set(group).size !== 1) throw new Error(`${label}: document ${d} did not converge`);
  }
  await Promise.all(clients.map((c) => c.close()));
  return {
    label,
    nodes: nodes.length,
    deliveries: burst,
    perSecond: burst / seconds,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    samples: sorted.length,
    cpu,
  };
}

console.log(`cluster bench: ${cfg.docs} documents x ${cfg.clients} clients, ${cfg.edits} edits each as fast as possible, ` +
  `then one edit per ${cfg.paceMs} ms per client for ${cfg.pacedMs} ms; medians of ${cfg.repeat}; nodes on ${cfg.runtime}; ` +
  `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`} driver`);
const cluster = await startCluster([]);
const rows = [];
try {
  const alone = await cluster.addNode(cfg.runtime, { TELEPORTAL_REDIS_URL: "" });
  const a = await cluster.addNode(cfg.runtime, { TELEPORTAL_HEARTBEAT_MS: "10000", TELEPORTAL_PRESENCE_TIMEOUT_MS: "30000" });
  const b = await cluster.addNode(cfg.runtime, { TELEPORTAL_HEARTBEAT_MS: "10000", TELEPORTAL_PRESENCE_TIMEOUT_MS: "30000" });
  // Warm-up (JIT, connections, the table in PostgreSQL), then the rows.
  await run("warm-up", [alone], "warm-alone");
  await run("warm-up", [a, b], "warm");
  const setups = [
    ["1 node (no cluster)", [alone], "alone"],
    ["1 node, cluster (Redis)", [a], "one"],
    ["2 nodes, each document's clients spread", [a, b], "spread"],
    ["2 nodes, each document on one node", [a, b], "split", { split: true }],
  ];
  const runs = setups.map(() => []);
  for (let r = 0; r < cfg.repeat; r++) {
    for (const [i, [label, nodes, tag, options]] of setups.entries()) runs[i].push(await run(label, nodes, `${tag}-${r}`, options));
  }
  const median = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  for (const results of runs) {
    const row = { ...results[0] };
    for (const k of ["perSecond", "p50", "p99", "cpu"]) row[k] = median(results.map((x) => x[k]));
    rows.push(row);
  }
} finally {
  await cluster.stop();
}

const fmt = (x, d = 0) => x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const head = ["setup", "nodes", "deliveries", "deliveries/s", "p50 ms", "p99 ms", "latency samples", "server CPU s"];
const body = rows.map((r) => [r.label, String(r.nodes), fmt(r.deliveries), fmt(r.perSecond), fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.samples), fmt(r.cpu, 2)]);
const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
const line = (cells) => "| " + cells.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
console.log();
console.log(line(head));
console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
for (const row of body) console.log(line(row));
process.exit(0);
