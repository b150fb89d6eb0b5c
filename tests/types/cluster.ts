// The README's scale-out example (teleportal/cluster), type-checked.
import { Server } from "teleportal/server";
import { openPostgresStorage } from "teleportal/storage";
import { connectRedisCluster, type Cluster } from "teleportal/cluster";

const storage = await openPostgresStorage("postgres://app@db:5432/docs");
const cluster = await connectRedisCluster({ url: "redis://redis:6379", nodeId: "node-1" });
const server = new Server({ storage, cluster });
await cluster.ping();
const custom: Cluster = { nodeId: "n", publish() {}, subscribe: async () => {}, unsubscribe() {}, onMessage() {} };
new Server({ storage, cluster: custom });
await server.close();
await cluster.close();
