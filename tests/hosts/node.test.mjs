import { fileURLToPath } from "node:url";
import { defineHostSuite } from "./suite.mjs";
import { startProcessHost } from "./process-host.mjs";

const app = fileURLToPath(new URL("./fixtures/node-app.mjs", import.meta.url));
defineHostSuite("Node http + ws host", () => startProcessHost(process.execPath, [app]));

// Node's liveness check (Bun has its own, natively): a peer that stops answering is dropped, one
// that answers stays. Its own small server here, with a short interval.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { getWebsocketHandlers } from "teleportal/websocket-server";
import { Server } from "teleportal/server";
import { MemoryDocumentStorage } from "teleportal/storage";
import { createTokenManager } from "teleportal/token";
import { encodeMessage, decodeMessage, getMessageId } from "teleportal/protocol";
import { connect, mintToken, SECRET } from "./suite.mjs";
import { openServerSockets } from "./proc.mjs";
import { until } from "./yclient.mjs";

test("node: a peer that answers no ping for an interval is dropped; one that answers stays", async () => {
  const server = new Server({ storage: new MemoryDocumentStorage(), tokenManager: createTokenManager({ secret: SECRET }) });
  const handlers = getWebsocketHandlers({ secret: SECRET, pingIntervalMs: 200, onConnect: (c) => server.createClient(c.transport, c.context, c.id), onDisconnect: (id) => server.disconnectClient(id) });
  const http = createServer();
  http.on("upgrade", (req, socket, head) => handlers.upgrade(req, socket, head));
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  const { port } = http.address();
  try {
    const url = async (user) => `ws://127.0.0.1:${port}/?token=${await mintToken({ userId: user })}`;
    const gone = await connect(await url("gone"));
    const live = await connect(await url("live"));
    const gonePort = gone.ws._socket.localPort;
    gone.ws._socket.pause(); // reads nothing from now on, so it answers no ping: as a vanished peer
    const t0 = Date.now();
    await until(() => !openServerSockets(port).some((s) => s.remotePort === gonePort), { timeout: 5000, what: "the silent peer dropped" });
    const after = Date.now() - t0;
    assert.ok(after >= 200, `dropped after ${after} ms: not before one unanswered interval`);
    // The one that answers pings is still served, well after several intervals.
    await new Promise((r) => setTimeout(r, 700));
    const f = encodeMessage({ type: "doc", document: "hb", encrypted: false, payload: { type: "sync-step-1", sv: new Uint8Array([0]) } });
    live.send(f);
    await live.waitFor((x) => { try { const m = decodeMessage(x); return m.type === "ack" && m.payload.messageId === getMessageId(f); } catch { return false; } }, { what: "ack for the live client" });
    assert.equal(live.ws.readyState, live.ws.OPEN);
    await live.close();
  } finally {
    await handlers.shutdown();
    await new Promise((r) => http.close(r));
  }
});
