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

/** Every event (they are rare: once per outage, its end, a slow subscription). @param {string} level @param {string} event @param {Record<string, unknown>} fields */
function defaultLogger(level, event, fields) {
  console.error(JSON.stringify({ level, event, ...fields }));
}

/** @param {RedisClusterOptions} options @returns {Promise<import("../types/cluster.js").RedisCluster>} */
export async function connectRedisCluster(options) {
  const {
    url,
    nodeId = globalThis.crypto.randomUUID(),
    heartbeatMs = 10_000,
    presenceTimeoutMs = 30_000,
    prefix = DEFAULT_PREFIX,
    subscribeTimeoutMs = 2000,
    connectTimeoutMs = 10_000,
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
  let closed = false;

  /** @type {Set<(key: string, message: Uint8Array) => void>} */
  const listeners = new Set();
  /** @type {Set<string>} document keys whose channel this node holds */
  const channels = new Set();
  /** @type {Set<string>} the channels Redis confirmed (the client subscribes those again itself) */
  const confirmed = new Set();
  const deliver = (/** @type {Buffer} */ message, /** @type {Buffer | string} */ channel) => {
    const key = String(channel).slice(prefix.length);
    for (const listener of listeners) listener(key, message);
  };
  // The client records a channel for its own re-subscription only once Redis confirmed it: a
  // SUBSCRIBE lost to an outage is sent again here, when the subscriber is ready again.
  const subscribeChannel = (/** @type {string} */ key) =>
    subscriber.subscribe(prefix + key, deliver, true).then(
      () => {
        if (channels.has(key)) confirmed.add(key);
      },
      (/** @type {unknown} */ err) => {
        if (closed || !channels.has(key)) return;
        if (subscriber.isReady) setTimeout(() => void (channels.has(key) && !confirmed.has(key) && !closed && subscribeChannel(key).catch(() => {})), 250);
        throw err;
      },
    );

  // The client reconnects by itself (and subscribes again); one log line per outage, not per retry.
  const down = { publisher: false, subscriber: false };
  let lastError = "";
  for (const [role, client] of /** @type {const} */ ([["publisher", publisher], ["subscriber", subscriber]])) {
    client.on("error", (/** @type {Error} */ err) => {
      lastError = err?.message || String(err);
      if (!down[role]) logger("error", "cluster_redis_error", { node_id: nodeId, connection: role, error: lastError });
      down[role] = true;
    });
    client.on("ready", () => {
      if (down[role]) logger("info", "cluster_redis_reconnected", { node_id: nodeId, connection: role });
      down[role] = false;
      if (role === "subscriber") for (const key of channels) if (!confirmed.has(key)) subscribeChannel(key).catch(() => {});
    });
  }
  // The client would retry for ever: a node that cannot reach Redis at start says so and stops.
  const connected = Promise.all([publisher.connect(), subscriber.connect()]);
  connected.catch(() => {});
  try {
    await within(connected, connectTimeoutMs, () => `Redis did not answer within ${connectTimeoutMs} ms${lastError ? ` (${lastError})` : ""}`);
  } catch (err) {
    for (const client of [publisher, subscriber]) destroy(client);
    throw err;
  }

  return {
    nodeId,
    heartbeatMs,
    presenceTimeoutMs,
    publish(key, message) {
      if (closed) return;
      // Pub/sub keeps nothing: what fails to go out while Redis is unreachable is dropped (the
      // outage was logged once); other failures reach the Server, which logs them.
      return publisher.publish(prefix + key, Buffer.from(message.buffer, message.byteOffset, message.byteLength)).then(
        () => {},
        (/** @type {unknown} */ err) => {
          if (!down.publisher && publisher.isReady) throw err;
        },
      );
    },
    // Resolves once Redis confirmed the subscription: the Server loads the document after that, so
    // an update committed elsewhere is either in what it loads or in a message it receives. While
    // Redis is unreachable it resolves after subscribeTimeoutMs anyway (the document opens; the
    // client subscribes when it reconnects).
    subscribe(key) {
      if (closed || channels.has(key)) return;
      channels.add(key);
      const subscribed = subscribeChannel(key);
      subscribed.catch(() => {});
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      const late = new Promise((resolve) => {
        timer = setTimeout(() => {
          logger("warn", "cluster_subscribe_slow", { node_id: nodeId, document_id: key, waited_ms: subscribeTimeoutMs });
          resolve(undefined);
        }, subscribeTimeoutMs);
      });
      return Promise.race([subscribed.finally(() => clearTimeout(timer)), late]);
    },
    unsubscribe(key) {
      if (closed || !channels.delete(key)) return;
      confirmed.delete(key);
      return subscriber.unsubscribe(prefix + key, deliver, true);
    },
    onMessage(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    /** Rejects when Redis does not answer, or the subscribing connection is not back yet (for health checks). */
    async ping() {
      await publisher.ping();
      if (!subscriber.isReady) throw new Error("the Redis subscriber connection is not ready");
    },
    // Sends what is queued if Redis is there (at most closeTimeoutMs), else drops it.
    async close({ closeTimeoutMs = 2000 } = {}) {
      if (closed) return;
      closed = true;
      listeners.clear();
      channels.clear();
      confirmed.clear();
      await Promise.all([publisher, subscriber].map(async (client) => {
        if (!client.isReady) return destroy(client);
        await within(client.close(), closeTimeoutMs, () => "close").catch(() => destroy(client));
      }));
    },
  };
}

/** @param {{ destroy(): void }} client */
function destroy(client) {
  try {
    client.destroy();
  } catch {
    // already closed
  }
}

/** `promise`, or a rejection with message() after `ms`. @template T @param {Promise<T>} promise @param {number} ms @param {() => string} message */
async function within(promise, ms, message) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  try {
    return await Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function loadRedis() {
  try {
    return await runtimeImport("redis");
  } catch (err) {
    if (/** @type {{ code?: string }} */ (err).code !== "ERR_MODULE_NOT_FOUND" && !/Cannot find (module|package)/.test(String(err))) throw err;
    throw new Error("connectRedisCluster needs the `redis` package: npm install redis@6", { cause: err });
  }
}
