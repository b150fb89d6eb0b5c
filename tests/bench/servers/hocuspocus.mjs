// Relay benchmark fixture: Hocuspocus' own Server (http + crossws), no extensions (no
// persistence, no auth hook). Default configuration, except HOCUSPOCUS_FLUSH_DELAY=false turns
// off 4.x's update coalescing (flushDelay: 0 merges the updates of one event-loop turn into one
// broadcast). Prints {"port": N} once listening.
import { Server } from "@hocuspocus/server";

const flush = process.env.HOCUSPOCUS_FLUSH_DELAY;
const extra = flush === undefined ? {} : { flushDelay: flush === "false" ? false : Number(flush) };
const server = new Server({ port: 0, address: "127.0.0.1", quiet: true, stopOnSignals: false, ...extra });
await server.listen();
console.log(JSON.stringify({ port: server.address.port }));
