// The HTTP/SSE transport across cluster nodes: the stream on one serve.js node, its POSTs landing
// on another (as behind a load balancer without sticky sessions).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeMessage } from "teleportal/protocol";
import { TeleportalProvider } from "teleportal/provider";
import { mintToken } from "../hosts/suite.mjs";
import { provider, until } from "../provider/helpers.mjs";
import { startCluster } from "./harness.mjs";

const sse = (node, token) => new URL(`http://127.0.0.1:${node.port}/sse?token=${token}`);
const body = Buffer.from("0d594a530103646f630000000100", "hex"); // message array: sync-step-1 of "doc"

describe("cluster: HTTP/SSE POSTs on another node than the stream (Bun, Node)", { timeout: 60_000 }, () => {
  let cluster;
  before(async () => {
    cluster = await startCluster(["bun", "node"]);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("the stream's node serves a POST made on the other node for its own user only", async () => {
    const [n1, n2] = cluster.nodes;
    const alice = await mintToken({ userId: "alice" });
    const abort = new AbortController();
    const res = await fetch(sse(n1, alice), { signal: abort.signal });
    const id = res.headers.get("x-teleportal-client-id");
    let text = "";
    (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body) text += decoder.decode(chunk, { stream: true });
      } catch {
        // aborted
      }
    })();
    await until(() => text.includes("event:client-id"), { what: "client-id" });
    const mallory = await fetch(sse(n2, await mintToken({ userId: "mallory" })), { method: "POST", body, headers: { "x-teleportal-client-id": id } });
    assert.equal(mallory.status, 403);
    assert.equal(text.includes("event:message"), false, "nothing processed for mallory");
    const own = await fetch(sse(n2, alice), { method: "POST", body, headers: { "x-teleportal-client-id": id } });
    assert.deepEqual([own.status, await own.json()], [200, { message: "ok" }]);
    await until(() => text.includes("event:message"), { what: "replies on the stream at the other node" });
    const first = text.split("event:message")[1].split("data: ")[1].split("\n")[0];
    assert.equal(decodeMessage(Buffer.from(first, "base64")).payload.type, "sync-step-2");
    abort.abort();
  });

  test("a provider whose POSTs all land on the other node syncs with a WebSocket client there", async () => {
    const [n1, n2] = cluster.nodes;
    const toN2 = async (url, init = {}) => {
      const u = new URL(url);
      if (init.method === "POST") u.port = String(n2.port);
      return fetch(u, init);
    };
    const overHttp = new TeleportalProvider({ url: `ws://127.0.0.1:${n1.port}/`, token: await mintToken({ userId: "h" }), transports: ["http"], fetch: toN2 });
    const overWs = provider(await n2.url("w"));
    try {
      const a = overHttp.open("split");
      const b = overWs.open("split");
      await Promise.all([a.synced, b.synced]);
      a.doc.getText("t").insert(0, "posted on n2. ");
      b.doc.getText("t").insert(0, "ws on n2. ");
      await until(() => a.doc.getText("t").toString() === b.doc.getText("t").toString() && a.doc.getText("t").length === 24, { what: "convergence" });
      await overHttp.flush();
    } finally {
      overHttp.destroy();
      overWs.destroy();
    }
  });
});
