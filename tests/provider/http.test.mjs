// The provider's HTTP/SSE transport against teleportal/http served in this process on node:http
// (handler.node): what it posts, and what it does when a POST fails.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { getHTTPHandlers } from "teleportal/http";
import { Server } from "teleportal/server";
import { MemoryDocumentStorage } from "teleportal/storage";
import { createTokenManager } from "teleportal/token";
import { decodeMessageArray } from "teleportal/protocol";
import { provider, record, until } from "./helpers.mjs";

const tokens = createTokenManager({ secret: "provider-http" });
let server;
let handler;
let http;
let base;

before(async () => {
  server = new Server({ storage: new MemoryDocumentStorage(), tokenManager: tokens, logger: () => {} });
  handler = getHTTPHandlers({ server, tokenManager: tokens, ackTimeoutMs: 300, pingIntervalMs: 20, logger: () => {} });
  http = createServer((req, res) => handler.node(req, res));
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  base = `ws://127.0.0.1:${http.address().port}/`;
});
after(async () => {
  await handler.close();
  http.closeAllConnections?.();
  http.close();
  await server.close();
});

const all = [{ pattern: "*", permissions: ["read", "write"] }];

/** A fetch that records every POST's frames (decodeMessageArray throws on a YJSping element) and can rewrite requests. */
function recordingFetch(rewrite = (url) => url) {
  const posts = [];
  const fetchFn = async (url, init = {}) => {
    if (init.method === "POST") posts.push({ url: String(url), frames: decodeMessageArray(new Uint8Array(init.body)) });
    return fetch(rewrite(new URL(url), init), init);
  };
  return { posts, fetch: fetchFn };
}

test("provider over HTTP: at most 10 frames per POST, no YJSping posted, every document syncs", async () => {
  const rec = recordingFetch();
  const p = provider(base, { token: await tokens.generateToken("u1", "room-1", all), transports: ["http"], fetch: rec.fetch, pingInterval: 200 });
  try {
    const docs = Array.from({ length: 12 }, (_, i) => p.open(`doc-${i}`));
    await Promise.all(docs.map((d) => d.synced));
    assert.equal(p.transport, "http");
    await new Promise((r) => setTimeout(r, 600)); // several of the provider's ping intervals
    assert.ok(rec.posts.length >= 4, `${rec.posts.length} POSTs for 12 documents' openings`);
    for (const post of rec.posts) assert.ok(post.frames.length >= 1 && post.frames.length <= 10, `${post.frames.length} frames`);
    // The provider would post YJSping every 200 ms over a WebSocket; over HTTP none is posted (the
    // recording fetch would throw on one) and the server's ping events keep it alive.
    assert.equal(p.status, "connected");
    docs[0].doc.getText("t").insert(0, "x");
    await p.flush();
  } finally {
    p.destroy();
  }
});

test("provider over HTTP: a 504 (a denied frame is never answered) keeps the connection; a refused POST (403) ends it and the provider reconnects", async () => {
  const reader = provider(base, { token: await tokens.generateToken("r", "room-1", [{ pattern: "*", permissions: ["read"] }]), transports: ["http"] });
  const log = record(reader);
  try {
    const d = reader.open("ro");
    await d.synced;
    d.doc.getText("t").insert(0, "not allowed");
    await until(() => log.errors.some((e) => e.type === "denied"), { what: "the denial on the stream" });
    await new Promise((r) => setTimeout(r, 500)); // past the POST's 300 ms ack wait: 504
    assert.equal(reader.status, "connected");
    assert.deepEqual(log.status.filter((s) => s === "disconnected"), []);
  } finally {
    reader.destroy();
  }

  // POSTs that speak for another user: 403, the transport ends, the provider connects again.
  let hijack = true;
  const mallory = await tokens.generateToken("mallory", "room-1", all);
  const rec = recordingFetch((url, init) => {
    if (init.method === "POST" && hijack) url.searchParams.set("token", mallory);
    return url;
  });
  const p = provider(base, { token: await tokens.generateToken("alice", "room-1", all), transports: ["http"], fetch: rec.fetch });
  const plog = record(p);
  try {
    p.open("notes");
    await until(() => plog.status.includes("disconnected"), { what: "the transport to end after a 403" });
    hijack = false;
    const d = p.documents.get("notes");
    await d.synced;
    assert.equal(p.status, "connected");
  } finally {
    p.destroy();
  }
});
