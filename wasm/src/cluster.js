// teleportal/cluster: several Servers as one cluster through Redis pub/sub. The C++ core decides
// everything (which document channels to hold, what to publish, what a received message means);
// this module only carries its bytes: one Redis channel per document key, one connection that
// publishes and one that subscribes (a subscribed Redis connection runs no other commands).
//
// The client is the `redis` package on Bun and on Node. Bun's built-in RedisClient (1.4.5) hands
// subscribers every message as a string decoded as UTF-8, which replaces the bytes of a binary
// message that are not valid UTF-8; the `redis` package delivers Buffers (subscribe's bufferMode),
// so the core's messages cross Redis byte for byte, without base64.
import { requireBunOrNode, runtimeImport } from "./storage/common.js";

const DEFAULT_PREFIX = "teleportal:doc:";

/** @typedef {import("../types/cluster.js").Cluster} Cluster */
/** @typedef {import("../types/cluster.js").RedisClusterOptions} RedisClusterOptions */

/** @param {string} level @param {string} event @param {Record<string, unknown>} fields */
function defaultLogger(level, event, fields) {
  if (level === "error" || level === "warn") console.error(JSON.stringify({ level, event, ...fields }));
}

/** @param {RedisClusterOptions} options @returns {Promise<import("../types/cluster.js").RedisCluster>} */
export async function connectRedisCluster(options) {
  const {
    url,
    nodeId = globalThis.crypto.randomUUID(),
    heartbeatMs = 10_000,
    presenceTimeoutMs = 30_000,
    prefix = DEFAULT_PREFIX,
    logger = defaultLogger,
  } = options ?? {};
  if (typeof url !== "string" || url === "") throw new TypeError("connectRedisCluster needs a url (redis://host:port)");
  if (typeof nodeId !== "string" || nodeId === "") throw new TypeError("nodeId must be a non-empty string");
  if (!(heartbeatMs > 0) || !(presenceTimeoutMs > heartbeatMs)) {
    throw new RangeError("heartbeatMs must be positive and presenceTimeoutMs longer than heartbeatMs");
  }
  requireBunOrNode("connectRedisCluster", "Workers route every document to one Durable Object and need no cluster");
  const { createClient } = await loadRedis();

  const publisher = createClient({ url });
  const subscriber = publisher.duplicate();
  // The client reconnects by itself (and subscribes again); one log line per outage, not per retry.
  for (const [role, client] of /** @type {const} */ ([["publisher", publisher], ["subscriber", subscriber]])) {
    let down = false;
    client.on("error", (/** @type {Error} */ err) => {
      if (!down) logger("error", "cluster_redis_error", { node_id: nodeId, connection: role, error: err?.message ?? String(err) });
      down = true;
    });
    client.on("ready", () => {
      if (down) logger("info", "cluster_redis_reconnected", { node_id: nodeId, connection: role });
      down = false;
    });
  }
  try {
    await Promise.all([publisher.connect(), subscriber.connect()]);
  } catch (err) {
    await Promise.allSettled([publisher.destroy(), subscriber.destroy()]);
    throw err;
  }

  /** @type {Set<(key: string, message: Uint8Array) => void>} */
  const listeners = new Set();
  /** @type {Set<string>} document keys whose channel this node holds */
  const channels = new Set();
  const deliver = (/** @type {Buffer} */ message, /** @type {Buffer | string} */ channel) => {
    const key = String(channel).slice(prefix.length);
    for (const listener of listeners) listener(key, message);
  };
  let closed = false;

  return {
    nodeId,
    heartbeatMs,
    presenceTimeoutMs,
    publish(key, message) {
      if (closed) return;
      return publisher.publish(prefix + key, Buffer.from(message.buffer, message.byteOffset, message.byteLength)).then(() => {});
    },
    // Resolves once Redis confirmed the subscription: the Server loads the document after that, so
    // an update committed elsewhere is either in what it loads or in a message it receives.
    subscribe(key) {
      if (closed || channels.has(key)) return;
      channels.add(key);
      return subscriber.subscribe(prefix + key, deliver, true);
    },
    unsubscribe(key) {
      if (closed || !channels.delete(key)) return;
      return subscriber.unsubscribe(prefix + key, deliver, true);
    },
    onMessage(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    /** Rejects when Redis does not answer (for health checks). */
    async ping() {
      await publisher.ping();
    },
    async close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      channels.clear();
      await Promise.allSettled([publisher.close(), subscriber.close()]);
    },
  };
}

async function loadRedis() {
  try {
    return await runtimeImport("redis");
  } catch (err) {
    if (/** @type {{ code?: string }} */ (err).code !== "ERR_MODULE_NOT_FOUND" && !/Cannot find (module|package)/.test(String(err))) throw err;
    throw new Error("connectRedisCluster needs the `redis` package: npm install redis@6", { cause: err });
  }
}
