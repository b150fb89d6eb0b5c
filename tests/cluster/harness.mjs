// A cluster on loopback for tests: real PostgreSQL and Redis (tests/support/services.mjs) and
// host-bun/serve.js processes under Bun and Node sharing them, each on a free port. Everything is
// stopped by stop(), and killed if the test process exits without calling it.
import { freePort, startPostgres, startRedis } from "../support/services.mjs";
import { startServer } from "../hosts/storm.mjs";
import { mintToken, SECRET } from "../hosts/suite.mjs";

/** Short presence timings so that a dead node's clients leave within about a second. */
export const HEARTBEAT_MS = 200;
export const PRESENCE_TIMEOUT_MS = 1000;

/**
 * @param {("bun" | "node")[]} runtimes one node per entry
 * @returns {Promise<{ pg: { url: string }, redis: { url: string }, nodes: Node[], addNode(runtime: "bun" | "node", env?: object): Promise<Node>,
 *   stopRedis(): Promise<void>, startRedis(): Promise<void>, stop(): Promise<void> }>}
 */
export async function startCluster(runtimes) {
  const pg = await startPostgres();
  let redis;
  try {
    redis = await startRedis();
  } catch (err) {
    await pg.stop();
    throw err;
  }
  /** @type {Node[]} */
  const nodes = [];
  const killAll = () => nodes.forEach((n) => n.child?.kill("SIGKILL"));
  process.once("exit", killAll);
  const cluster = {
    pg,
    redis,
    nodes,
    /** `env` adds to the node's environment (TELEPORTAL_REDIS_URL: "" makes a node outside the cluster). */
    async addNode(runtime, env = {}) {
      const node = new Node(runtime, `${runtime}-${nodes.length + 1}`, await freePort(), pg.url, redis.url, env);
      nodes.push(node);
      await node.start();
      return node;
    },
    /** An outage: Redis stops (startRedis() brings it back on the same port). */
    async stopRedis() {
      await redis.stop();
    },
    async startRedis() {
      redis = await startRedis({ port: redis.port });
      cluster.redis = redis;
    },
    async stop() {
      await Promise.allSettled(nodes.map((n) => n.stop()));
      process.off("exit", killAll);
      await Promise.allSettled([pg.stop(), redis.stop()]);
    },
  };
  try {
    for (const runtime of runtimes) await cluster.addNode(runtime);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** One serve.js process: a cluster node (its id is its name). */
export class Node {
  constructor(runtime, name, port, db, redisUrl, env = {}) {
    Object.assign(this, { runtime, name, port, db, redisUrl, env });
    this.child = null;
    this.exited = null;
  }

  async start() {
    const srv = await startServer(this.runtime, this.port, this.db, {
      TELEPORTAL_SECRET: SECRET,
      TELEPORTAL_REDIS_URL: this.redisUrl,
      TELEPORTAL_NODE_ID: this.name,
      TELEPORTAL_HEARTBEAT_MS: String(HEARTBEAT_MS),
      TELEPORTAL_PRESENCE_TIMEOUT_MS: String(PRESENCE_TIMEOUT_MS),
      ...this.env,
    });
    Object.assign(this, { child: srv.child, exited: srv.exited, output: srv.output });
  }

  /** A WebSocket URL with a token for `userId` (claims as in tests/hosts/suite.mjs: room-1, read+write on everything). */
  async url(userId, claims = {}) {
    return `ws://127.0.0.1:${this.port}/?token=${await mintToken({ userId, ...claims })}`;
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill() {
    if (this.child?.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }

  async restart() {
    await this.kill();
    await this.start();
  }

  /** SIGTERM (commits and leaves cleanly), SIGKILL after 5 s. */
  async stop() {
    if (this.child?.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
