// teleportal/cluster: Servers on several nodes as one, through Redis pub/sub.

/**
 * What a Server needs to be one node of a cluster (`new Server({ cluster })`). The core decides
 * when to hold a document's channel, what to publish and what a received message means; the
 * cluster object only carries bytes. Any pub/sub system fits; connectRedisCluster makes one.
 */
export interface Cluster {
  /** This node's id: messages carry it, and a node ignores those with its own. Unique per node. */
  nodeId: string;
  /** How often this node repeats its clients' presence to the others. Default 10000 ms. */
  heartbeatMs?: number;
  /** A node silent for this long is gone: its clients' presence leaves. Default 30000 ms. */
  presenceTimeoutMs?: number;
  /** Sends a message (encoded by the core) to every node holding the channel of `key`. */
  publish(key: string, message: Uint8Array): void | Promise<void>;
  /** Starts receiving the messages of `key`; the Server loads the document once this settles. */
  subscribe(key: string): void | Promise<void>;
  /** Stops receiving the messages of `key`. */
  unsubscribe(key: string): void | Promise<void>;
  /** Registers the listener every received message goes to (the Server calls it once). */
  onMessage(listener: (key: string, message: Uint8Array) => void): void | (() => void);
}

export interface RedisClusterOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  url: string;
  /** Default: a random UUID. */
  nodeId?: string;
  /** Default 10000 ms. */
  heartbeatMs?: number;
  /** Default 30000 ms; must be longer than heartbeatMs. */
  presenceTimeoutMs?: number;
  /** Channel name before the document key. Default "teleportal:doc:". */
  prefix?: string;
  /**
   * Longest wait for Redis to confirm a subscription before the Server loads the document anyway
   * (Redis unreachable: the document still opens). Default 2000 ms.
   */
  subscribeTimeoutMs?: number;
  /** connectRedisCluster rejects when Redis does not answer within this long. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** Connection errors (once per outage) and reconnects. Default: errors to console.error as JSON. */
  logger?: (level: string, event: string, fields: Record<string, unknown>) => void;
}

export interface RedisCluster extends Cluster {
  nodeId: string;
  heartbeatMs: number;
  presenceTimeoutMs: number;
  /** Resolves when Redis answers (health checks). */
  ping(): Promise<void>;
  /**
   * Closes both connections, sending what is queued first if Redis is reachable (for at most
   * closeTimeoutMs, default 2000); publishes and subscriptions after this do nothing.
   */
  close(options?: { closeTimeoutMs?: number }): Promise<void>;
}

/**
 * Connects a publisher and a subscriber connection (the `redis` package, on Bun and Node: it
 * reconnects and subscribes again by itself). Messages are binary and cross Redis unchanged.
 */
export declare function connectRedisCluster(options: RedisClusterOptions): Promise<RedisCluster>;
