// The project's server: Bun.serve + the built-in token check (no onUpgrade), every connection
// joins one Server that enforces the tokens' documentAccess and stores documents in SQLite.
// WebSockets on any path; the HTTP/SSE transport (GET /sse, POST /sse, POST /message) on the same
// port, through the same Hub and Server.
// Started by scripts/serve (Bun); `node host-bun/serve.js` runs the same server on Node.
//   HOST (127.0.0.1), PORT (3000), TELEPORTAL_SECRET (else a development secret is generated),
//   TELEPORTAL_DB (SQLite file, default ./data/teleportal.sqlite; postgres://... for PostgreSQL; "memory": none),
//   TELEPORTAL_SYNCHRONOUS (NORMAL | FULL), TELEPORTAL_UNLOAD_AFTER_MS (idle documents leave memory, default 5000),
//   TELEPORTAL_REDIS_URL (redis://host:port: join a cluster), TELEPORTAL_NODE_ID (default random),
//   TELEPORTAL_HEARTBEAT_MS (10000), TELEPORTAL_PRESENCE_TIMEOUT_MS (30000),
//   TELEPORTAL_RATE_LIMIT (messages/s per connection, default 1000; bursts and the per-user rate scale
//   with it as in the defaults; "off": no rate limit),
//   TELEPORTAL_LOG_LEVEL (debug | info | warn | error, default info: JSON lines on stderr)
// GET /metrics: Prometheus text; GET /health: 200 or 503 JSON (storage, Redis).
import { getWebsocketHandlers } from "../wasm/src/websocket-server.js";
import { getHTTPHandlers, isHTTPTransportRequest } from "../wasm/src/http.js";
import { Server } from "../wasm/src/server.js";
import { createTokenManager } from "../wasm/src/token.js";
import { MemoryDocumentStorage, openPostgresStorage, openSqliteStorage } from "../wasm/src/storage.js";
import { connectRedisCluster } from "../wasm/src/cluster.js";
import { CONTENT_TYPE as METRICS_TYPE } from "../wasm/src/metrics.js";
import { demoRoutes } from "./demo.js";

const hostname = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT ?? 3000);
let secret = process.env.TELEPORTAL_SECRET;
const devSecret = !secret;
if (!secret) {
  secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  console.log("TELEPORTAL_SECRET is not set: using a generated development secret for this run.");
}

// Structured logs: one JSON line per event on stderr, {ts, level, event, ...fields}.
const LEVELS = ["debug", "info", "warn", "error"];
let logLevel = (process.env.TELEPORTAL_LOG_LEVEL || "info").toLowerCase();
if (!LEVELS.includes(logLevel)) {
  console.error(`TELEPORTAL_LOG_LEVEL=${process.env.TELEPORTAL_LOG_LEVEL} is not one of ${LEVELS.join(", ")}: using info`);
  logLevel = "info";
}
const threshold = LEVELS.indexOf(logLevel);
function logger(level, event, fields) {
  if (LEVELS.indexOf(level) < threshold) return;
  process.stderr.write(JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields }) + "\n");
}

const dbPath = process.env.TELEPORTAL_DB || "./data/teleportal.sqlite";
const synchronous = process.env.TELEPORTAL_SYNCHRONOUS === "FULL" ? "FULL" : "NORMAL";
let storage;
if (dbPath === "memory") {
  storage = new MemoryDocumentStorage();
  console.log("TELEPORTAL_DB=memory: documents are kept in memory only and are lost when the server stops.");
} else if (/^postgres(ql)?:\/\//.test(dbPath)) {
  storage = await openPostgresStorage(dbPath);
  console.log(`Storing documents in PostgreSQL at ${redact(dbPath)}`);
} else {
  storage = await openSqliteStorage({ path: dbPath, synchronous });
  console.log(`Storing documents in SQLite at ${dbPath} (WAL, synchronous=${synchronous})`);
}

// Scale-out: nodes sharing the database and a Redis server serve every document together.
let cluster;
if (process.env.TELEPORTAL_REDIS_URL) {
  const ms = (name, fallback) => Number(process.env[name]) || fallback;
  cluster = await connectRedisCluster({
    url: process.env.TELEPORTAL_REDIS_URL,
    nodeId: process.env.TELEPORTAL_NODE_ID || undefined,
    heartbeatMs: ms("TELEPORTAL_HEARTBEAT_MS", 10_000),
    presenceTimeoutMs: ms("TELEPORTAL_PRESENCE_TIMEOUT_MS", 30_000),
  });
  console.log(`Cluster node ${cluster.nodeId} on Redis at ${redact(process.env.TELEPORTAL_REDIS_URL)} (heartbeat ${cluster.heartbeatMs} ms, presence timeout ${cluster.presenceTimeoutMs} ms)`);
}

const unloadAfterMs = process.env.TELEPORTAL_UNLOAD_AFTER_MS ? Number(process.env.TELEPORTAL_UNLOAD_AFTER_MS) : undefined;
// Heartbeats go out on the Server's ticks: tick twice per heartbeat interval (at least every second).
const tickIntervalMs = Math.min(1000, Math.ceil((cluster?.heartbeatMs ?? 2000) / 2));
const rateLimit = rateLimitOption(process.env.TELEPORTAL_RATE_LIMIT);
const server = new Server({ storage, secret, unloadAfterMs, cluster, tickIntervalMs, logger, logLevel, rateLimit });
const handlers = getWebsocketHandlers({
  secret,
  logger,
  logLevel,
  onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
  onDisconnect: (id) => server.disconnectClient(id),
});
const httpTransport = getHTTPHandlers({ server, secret, hub: handlers.hub, cluster });

// The demo page and its development tokens (host-bun/demo.js; Bun only).
const demo = demoRoutes({ devSecret, tokens: createTokenManager({ secret }) });
const listening = globalThis.Bun ? listenBun() : await listenNode();

/** A URL without its password, for the log. */
function redact(url) {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

// GET /health: 200 when storage and (in a cluster) Redis answer within 2 s, else 503; JSON
// {status, timestamp, uptime, checks: {storage, redis?}} with "ok" or the error per check.
async function health() {
  const { ok, checks } = await server.health({ timeoutMs: 2000 });
  const named = { storage: checks.storage, ...(checks.cluster !== undefined && { redis: checks.cluster }) };
  const body = { status: ok ? "healthy" : "unhealthy", timestamp: new Date().toISOString(), uptime: process.uptime(), checks: named };
  return { status: ok ? 200 : 503, type: "application/json", body: JSON.stringify(body) };
}

// GET /metrics: the Server's and the upgrade handlers' counters.
function metrics() {
  return { status: 200, type: METRICS_TYPE, body: server.metrics(handlers.metricSamples()) };
}

// Bun: Bun.serve with the handlers' websocket hooks (what scripts/serve runs).
function listenBun() {
  const bun = Bun.serve({
    hostname,
    port,
    fetch(req, srv) {
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") return handlers.upgrade(req, srv);
      if (isHTTPTransportRequest(req)) return httpTransport(req);
      const path = new URL(req.url).pathname;
      if (path === "/health") return health().then((h) => new Response(h.body, { status: h.status, headers: { "content-type": h.type } }));
      if (path === "/metrics") return ((m) => new Response(m.body, { status: m.status, headers: { "content-type": m.type } }))(metrics());
      const page = demo(req);
      if (page) return page;
      return new Response("Not found: connect with a WebSocket on any path", { status: 404 });
    },
    websocket: handlers.websocket,
  });
  return { hostname: bun.hostname, port: bun.port, stop: () => bun.stop(true) };
}

// Node: the same server on node:http + ws (node host-bun/serve.js).
async function listenNode() {
  const { createServer } = await import("node:http");
  const http = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path === "/sse" || path === "/message") return httpTransport.node(req, res);
    const h =
      path === "/health" ? await health()
      : path === "/metrics" ? metrics()
      : { status: 404, type: "text/plain", body: "Not found: connect with a WebSocket on any path" };
    res.writeHead(h.status, { "content-type": h.type });
    res.end(h.body);
  });
  http.on("upgrade", (req, socket, head) => handlers.upgrade(req, socket, head));
  await new Promise((resolve) => http.listen(port, hostname, resolve));
  return { hostname, port: http.address().port, stop: () => http.close() };
}

const tokens = createTokenManager({ secret });
const token = await tokens.createAdminToken("dev-user", "dev-room", { expiresIn: 24 * 3600 });
console.log(`Teleportal server listening on ws://${listening.hostname}:${listening.port}/`);
if (demo.enabled && globalThis.Bun) console.log(`Demo (development tokens for room "demo"): http://${listening.hostname}:${listening.port}/`);
console.log(`Token (admin on every document of room "dev-room", valid 24 h):\n${token}`);
console.log(`Connect: ws://${listening.hostname}:${listening.port}/?token=${token}`);
console.log(`HTTP/SSE: http://${listening.hostname}:${listening.port}/sse?token=<token> (POST /sse, POST /message)`);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing ${handlers.hub.connections.size} connection(s); ${server.documentCount} document(s) in memory`);
  await httpTransport.close();
  await handlers.shutdown(1001, "server shutting down");
  await server.close(); // commits what is pending
  await storage.close?.();
  await cluster?.close();
  listening.stop();
  process.exit(0);
}
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));

/** TELEPORTAL_RATE_LIMIT: "off", or messages/s per connection (the default 1000:5000:5000:20000 scaled). */
function rateLimitOption(text) {
  if (!text) return undefined;
  if (text === "off") return false;
  const rate = Number(text);
  if (!(rate > 0)) throw new Error(`TELEPORTAL_RATE_LIMIT must be "off" or a positive number, not ${JSON.stringify(text)}`);
  return { perConnection: rate, perConnectionBurst: 5 * rate, perUser: 5 * rate, perUserBurst: 20 * rate };
}
