// The project's server: Bun.serve + the built-in token check (no onUpgrade), every connection
// joins one Server that enforces the tokens' documentAccess and stores documents in SQLite.
// Started by scripts/serve (Bun); `node host-bun/serve.js` runs the same server on Node.
//   HOST (127.0.0.1), PORT (3000), TELEPORTAL_SECRET (else a development secret is generated),
//   TELEPORTAL_DB (SQLite file, default ./data/teleportal.sqlite; postgres://... for PostgreSQL; "memory": none),
//   TELEPORTAL_SYNCHRONOUS (NORMAL | FULL), TELEPORTAL_UNLOAD_AFTER_MS (idle documents leave memory, default 5000),
//   TELEPORTAL_REDIS_URL (redis://host:port: join a cluster), TELEPORTAL_NODE_ID (default random),
//   TELEPORTAL_HEARTBEAT_MS (10000), TELEPORTAL_PRESENCE_TIMEOUT_MS (30000)
import { getWebsocketHandlers } from "../wasm/src/websocket-server.js";
import { Server } from "../wasm/src/server.js";
import { createTokenManager } from "../wasm/src/token.js";
import { MemoryDocumentStorage, openPostgresStorage, openSqliteStorage } from "../wasm/src/storage.js";
import { connectRedisCluster } from "../wasm/src/cluster.js";
import { demoRoutes } from "./demo.js";

const hostname = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT ?? 3000);
let secret = process.env.TELEPORTAL_SECRET;
const devSecret = !secret;
if (!secret) {
  secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  console.log("TELEPORTAL_SECRET is not set: using a generated development secret for this run.");
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
const server = new Server({ storage, secret, unloadAfterMs, cluster, tickIntervalMs });
const handlers = getWebsocketHandlers({
  secret,
  onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
  onDisconnect: (id) => server.disconnectClient(id),
});

// The demo page and its development tokens (host-bun/demo.js; Bun only).
const demo = demoRoutes({ devSecret, tokens: createTokenManager({ secret }) });
const listening = globalThis.Bun ? listenBun() : await listenNode();

/** A URL without its password, for the log. */
function redact(url) {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

// /health: 200 "ok", or 503 when the cluster's Redis does not answer.
async function health() {
  try {
    await cluster?.ping();
    return { status: 200, body: "ok" };
  } catch (err) {
    return { status: 503, body: `redis: ${err.message}` };
  }
}

// Bun: Bun.serve with the handlers' websocket hooks (what scripts/serve runs).
function listenBun() {
  const bun = Bun.serve({
    hostname,
    port,
    fetch(req, srv) {
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") return handlers.upgrade(req, srv);
      if (new URL(req.url).pathname === "/health") return health().then((h) => new Response(h.body, { status: h.status }));
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
    const h = req.url === "/health" ? await health() : { status: 404, body: "Not found: connect with a WebSocket on any path" };
    res.writeHead(h.status, { "content-type": "text/plain" });
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

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing ${handlers.hub.connections.size} connection(s); ${server.documentCount} document(s) in memory`);
  await handlers.shutdown(1001, "server shutting down");
  await server.close(); // commits what is pending
  await storage.close?.();
  await cluster?.close();
  listening.stop();
  process.exit(0);
}
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
