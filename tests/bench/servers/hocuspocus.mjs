// Relay benchmark fixture: Hocuspocus' own Server (http + crossws), no extensions (no
// persistence, no auth hook). Prints {"port": N} once listening.
import { Server } from "@hocuspocus/server";

const server = new Server({ port: 0, address: "127.0.0.1", quiet: true, stopOnSignals: false });
await server.listen();
console.log(JSON.stringify({ port: server.address.port }));
