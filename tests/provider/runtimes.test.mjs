// teleportal/provider outside Node: inside Bun with Bun's own WebSocket, syncing with a Node peer
// through the Bun host.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startProcessHost } from "../hosts/process-host.mjs";
import { mintToken, provider, until } from "./helpers.mjs";

const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
let host;
before(async () => {
  host = await startProcessHost(bun, [fileURLToPath(new URL("../hosts/fixtures/bun-app.js", import.meta.url))]);
});
after(() => host?.stop());

test("a provider in Bun (native WebSocket) converges with a provider in Node", async () => {
  const room = `runtime-${Date.now()}`;
  const url = host.url("builtin", { room });
  const node = provider(url, { token: await mintToken({ room, userId: "node" }) });
  const d = node.open("shared");
  await d.synced;
  d.doc.getText("t").insert(0, "node was here\n");
  const peer = fileURLToPath(new URL("./fixtures/bun-peer.mjs", import.meta.url));
  const token = await mintToken({ room, userId: "bun" });
  const out = await new Promise((resolve, reject) =>
    execFile(bun, [peer, url, token], { timeout: 15_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`bun peer failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve(JSON.parse(stdout))),
  );
  assert.equal(out.usesGlobalWebSocket, true);
  assert.match(out.text, /node was here\n/);
  assert.match(out.text, /bun was here\n/);
  await until(() => d.doc.getText("t").toString() === out.text, { what: "Node sees Bun's line" });
  node.destroy();
});
