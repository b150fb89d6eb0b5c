// The demo's server side (host-bun/demo.js inside scripts/serve's host-bun/serve.js): the page and
// the development token endpoint are on with a generated secret or TELEPORTAL_DEMO=1, and off
// (404) on a server that has its own TELEPORTAL_SECRET.
import { test } from "node:test";
import assert from "node:assert/strict";
import { jwtVerify, decodeJwt } from "jose";
import { startServe } from "../browser/browser.mjs";
import { next, provider, record, within } from "./helpers.mjs";

const get = (srv, path, init) => fetch(`${srv.http}${path}`, init);

test("demo on (generated development secret): page, bundle and 10-minute read+write tokens for room demo", async () => {
  const srv = await startServe();
  try {
    assert.match(srv.output(), new RegExp(`Demo \\(development tokens for room "demo"\\): http://127\\.0\\.0\\.1:${srv.port}/`));
    const page = await get(srv, "/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /^text\/html/);
    assert.match(await page.text(), /<title>Teleportal demo<\/title>[\s\S]*\/demo\/app\.js/);
    const app = await get(srv, "/demo/app.js");
    assert.equal(app.status, 200);
    assert.match(app.headers.get("content-type"), /^text\/javascript/);
    assert.ok((await app.text()).length > 10_000, "the bundle");

    const res = await get(srv, "/demo/token");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("cache-control"), "no-store");
    const body = await res.json();
    assert.match(body.userId, /^guest-[0-9a-f]{8}$/);
    assert.equal(body.room, "demo");
    assert.equal(body.expiresIn, 600);
    const claims = decodeJwt(body.token);
    assert.equal(claims.userId, body.userId);
    assert.equal(claims.room, "demo");
    assert.deepEqual(claims.documentAccess, [{ pattern: "*", permissions: ["read", "write"] }]);
    assert.equal(claims.exp - claims.iat, 600);
    assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60);

    // A refresh names the same user; a bad user id is refused with a reason.
    const again = await (await get(srv, `/demo/token?user=${body.userId}`)).json();
    assert.equal(decodeJwt(again.token).userId, body.userId);
    const bad = await get(srv, "/demo/token?user=not%20ok");
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), "user must be 1-64 letters, digits, '-' or '_'");
    assert.equal((await get(srv, "/demo/token", { method: "POST" })).status, 404);

    // The token works with the server that minted it: two providers sync in room "demo".
    const getToken = async () => (await (await get(srv, "/demo/token")).json()).token;
    const url = `ws://127.0.0.1:${srv.port}/`;
    const [a, b] = [provider(url, { getToken }), provider(url, { getToken })];
    const [da, db] = [a.open("welcome"), b.open("welcome")];
    await within(Promise.all([da.synced, db.synced]), 5000, "sync with demo tokens");
    da.doc.getText("text").insert(0, "hi");
    await within(new Promise((r) => db.doc.on("update", () => db.doc.getText("text").toString() === "hi" && r())), 5000, "relay");
    a.destroy();
    b.destroy();
  } finally {
    await srv.stop();
  }
});

test("demo off (TELEPORTAL_SECRET set): no page, no bundle, no tokens", async () => {
  const srv = await startServe({ TELEPORTAL_SECRET: "production-secret" });
  try {
    assert.doesNotMatch(srv.output(), /Demo/);
    for (const path of ["/", "/demo/app.js", "/demo/token", "/demo/token?user=guest-1"]) {
      const res = await get(srv, path);
      assert.equal(res.status, 404, path);
      assert.equal(await res.text(), "Not found: connect with a WebSocket on any path", path);
    }
  } finally {
    await srv.stop();
  }
});

test("TELEPORTAL_DEMO=1 turns the demo on with a configured secret; its tokens are signed with it", async () => {
  const srv = await startServe({ TELEPORTAL_SECRET: "configured-secret", TELEPORTAL_DEMO: "1" });
  try {
    assert.match(srv.output(), /Demo \(development tokens for room "demo"\)/);
    const { token } = await (await get(srv, "/demo/token")).json();
    const { payload } = await jwtVerify(token, new TextEncoder().encode("configured-secret"), { issuer: "teleportal", audience: "teleportal" });
    assert.equal(payload.room, "demo");
    assert.equal((await get(srv, "/")).status, 200);
  } finally {
    await srv.stop();
  }
});

test("in-band token refresh against scripts/serve's server: a new token for the same user is acked, another user's is refused", async () => {
  const srv = await startServe();
  let user; // demo tokens name this user once the first one is issued
  const getToken = async () => {
    const body = await (await get(srv, `/demo/token${user ? `?user=${user}` : ""}`)).json();
    user = body.userId;
    return body.token;
  };
  const p = provider(`ws://127.0.0.1:${srv.port}/`, { getToken });
  try {
    const log = record(p);
    const d = p.open("welcome");
    await within(d.synced, 5000, "sync");
    const accepted = next(p, "token");
    await p.refreshToken();
    const [token] = await within(accepted, 3000, "the server's ack of the refresh");
    assert.equal(token, p.token);
    assert.deepEqual(log.errors, []);
    user = undefined; // the next demo token is for a new guest
    const refused = next(p, "error");
    await p.refreshToken();
    const [err] = await within(refused, 3000, "the refusal");
    assert.equal(err.type, "refresh");
    assert.equal(err.message, "Token refresh refused: the new token is for another user or room");
    assert.equal(p.status, "connected");
    assert.equal(d.isSynced, true);
  } finally {
    p.destroy();
    await srv.stop();
  }
});
