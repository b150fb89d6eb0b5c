// One behaviour suite, run against every host (Bun, Node ws, workerd). Real sockets on loopback,
// real `ws` clients, tokens minted by `jose`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { SignJWT } from "jose";
import { decodeMessage } from "teleportal/protocol";

export const SECRET = "host-suite-secret";
const hex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b) => Buffer.from(b).toString("hex");

// Frames taken from the reference transcripts (tests/vectors/server.json).
export const frames = {
  syncStep1: hex("594a530103646f630000000100"), // doc "doc", empty state vector
  update: hex("594a530103646f63000002021f011b000003e501000108000184080620776f726c6406000000010105000000"),
  updateId: "91650e2e13870ee0",
  awareness: hex("594a530103646f630001001001ca01010b7b2275223a22626f62227d"),
  ping: hex("594a5370696e67"),
  pong: hex("594a53706f6e67"),
};

export async function mintToken(claims = {}, { secret = SECRET, expiresIn = 3600 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ room: "room-1", documentAccess: [{ pattern: "*", permissions: ["read", "write"] }], ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer("teleportal")
    .setAudience("teleportal")
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(new TextEncoder().encode(secret));
}

/** Opens a client. Resolves with a Client, or rejects with {status, body, headers} on a refused upgrade. */
export function connect(url, { headers } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.binaryType = "nodebuffer";
    let upgradeHeaders = {};
    ws.on("upgrade", (res) => (upgradeHeaders = res.headers));
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => reject({ status: res.statusCode, body, headers: res.headers }));
    });
    ws.on("error", (err) => reject(err));
    ws.on("open", () => resolve(new Client(ws, upgradeHeaders)));
  });
}

export class Client {
  constructor(ws, headers) {
    this.ws = ws;
    this.headers = headers;
    this.received = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on("message", (data) => {
      this.received.push(new Uint8Array(data));
      this.waiters = this.waiters.filter((w) => !w());
    });
  }
  send(frame) {
    this.ws.send(frame);
  }
  /** Waits for the first received frame (from `from` on) matching `pred`; returns it. */
  waitFor(pred, { timeout = 5000, what = "frame" } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = this.received.find(pred);
        if (f) {
          clearTimeout(timer);
          resolve(f);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out waiting for ${what}; got ${this.received.map(toHex).join(", ")}`));
      }, timeout);
      if (!check()) this.waiters.push(check);
    });
  }
  waitDecoded(pred, what) {
    return this.waitFor((f) => {
      try {
        return pred(decodeMessage(f));
      } catch {
        return false;
      }
    }, { what }).then(decodeMessage);
  }
  close() {
    this.ws.close(1000, "bye");
    return this.closed;
  }
}

const isAckFor = (id) => (m) => m.type === "ack" && m.payload.messageId === id;

async function eventually(fn, { timeout = 5000, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * @param {string} name
 * @param {() => Promise<{seed: string, builtin: string, stats(kind: "seed"|"builtin", room: string): Promise<any>,
 *   url(kind, query): string, stop(): Promise<void>}>} start
 */
export function defineHostSuite(name, start, extra, { backpressure = true } = {}) {
  describe(name, () => {
    let host;
    before(async () => {
      host = await start();
    });
    after(async () => {
      await host?.stop();
    });

    const open = async (kind, query = {}, options) => connect(host.url(kind, { room: "room-1", ...query }), options);

    for (const kind of ["seed", "builtin"]) {
      test(`${kind}: accepts a valid token in ?token=`, async () => {
        const c = await open(kind, { token: await mintToken({ userId: `${kind}-q` }) });
        assert.equal(c.headers["x-powered-by"], "teleportal");
        c.send(frames.syncStep1);
        const ack = await c.waitDecoded(isAckFor("9bc4b470bbcb99a6"), "ack of sync-step-1");
        assert.equal(ack.type, "ack");
        await c.close();
      });

      test(`${kind}: accepts Authorization: Bearer`, async () => {
        const token = await mintToken({ userId: `${kind}-bearer` });
        const c = await open(kind, {}, { headers: { authorization: `Bearer ${token}` } });
        c.send(frames.ping);
        await c.waitFor((f) => toHex(f) === toHex(frames.pong), { what: "pong" });
        await c.close();
      });

      test(`${kind}: rejects missing, invalid, wrongly signed and expired tokens with 401`, async () => {
        const cases = {
          missing: {},
          garbage: { token: "abc.def.ghi" },
          wrongSecret: { token: await mintToken({ userId: "x" }, { secret: "other" }) },
          expired: { token: await mintToken({ userId: "x" }, { expiresIn: -10 }) },
        };
        for (const [label, query] of Object.entries(cases)) {
          const err = await open(kind, query).then(
            (c) => (c.close(), null),
            (e) => e,
          );
          assert.ok(err, `${label}: upgrade must be refused`);
          assert.equal(err.status, 401, `${label}: status`);
          assert.match(err.body, kind === "seed" ? /token/i : /^Unauthorized/, `${label}: body says why`);
        }
      });
    }

    test("seed: a thrown Response is returned as is", async () => {
      const err = await open("seed", { mode: "response" }).then(() => null, (e) => e);
      assert.equal(err.status, 403);
      assert.equal(err.body, "Forbidden by app");
      assert.equal(err.headers["x-why"], "test");
    });

    test("seed: any other upgrade error is a 401", async () => {
      const err = await open("seed", { mode: "error" }).then(() => null, (e) => e);
      assert.equal(err.status, 401);
      assert.equal(err.body, "Unauthorized");
    });

    test("seed: custom context fields reach onConnect and the server; hook headers are sent", async () => {
      const room = `ctx-${Date.now()}`;
      const c = await open("seed", { token: await mintToken({ userId: "ctx-user", room }), room });
      assert.equal(c.headers["x-extra"], "1");
      const stats = await eventually(async () => {
        const s = await host.stats("seed", room);
        return s.connects.find((x) => x.context.userId === "ctx-user") ? s : null;
      }, { what: "onConnect" });
      const conn = stats.connects.find((x) => x.context.userId === "ctx-user");
      assert.deepEqual(conn.context.custom, { plan: "pro", mode: null });
      assert.equal(conn.context.room, room);
      assert.equal(typeof conn.context.token, "string");
      assert.deepEqual(stats.serverContexts[conn.id], conn.context);
      await c.close();
    });

    test("seed: a failing onConnect closes only that connection; onDisconnect runs once", async () => {
      const room = `fail-${Date.now()}`;
      const good = await open("seed", { token: await mintToken({ userId: "good", room }), room });
      const bad = await open("seed", { token: await mintToken({ userId: "bad", room }), room, mode: "connect-fail" });
      const closed = await bad.closed;
      assert.equal(closed.code, 1011);
      good.send(frames.syncStep1);
      await good.waitDecoded(isAckFor("9bc4b470bbcb99a6"), "good client still served");
      const stats = await eventually(async () => {
        const s = await host.stats("seed", room);
        const id = s.connects.find((x) => x.context.userId === "bad")?.id;
        return id && s.disconnects[id] === 1 ? s : null;
      }, { what: "onDisconnect of the failed connection" });
      const goodId = stats.connects.find((x) => x.context.userId === "good").id;
      assert.equal(stats.disconnects[goodId], undefined, "the good connection is untouched");
      await good.close();
    });

    test("onDisconnect runs exactly once per connection", async () => {
      const room = `once-${Date.now()}`;
      const c = await open("seed", { token: await mintToken({ userId: "once", room }), room });
      c.send(frames.syncStep1);
      await c.waitDecoded(isAckFor("9bc4b470bbcb99a6"));
      await c.close();
      const id = await eventually(async () => {
        const s = await host.stats("seed", room);
        const id = s.connects.find((x) => x.context.userId === "once")?.id;
        return id && s.disconnects[id] ? id : null;
      }, { what: "onDisconnect" });
      await new Promise((r) => setTimeout(r, 300));
      const s = await host.stats("seed", room);
      assert.equal(s.disconnects[id], 1);
    });

    test("two clients on the same room and document relay frames; acks carry the frame id", async () => {
      const room = `relay-${Date.now()}`;
      const a = await open("seed", { token: await mintToken({ userId: "a", room }), room });
      const b = await open("seed", { token: await mintToken({ userId: "b", room }), room });
      for (const c of [a, b]) {
        c.send(frames.syncStep1);
        await c.waitDecoded(isAckFor("9bc4b470bbcb99a6"), "ack of join");
      }
      a.send(frames.update);
      const relayed = await b.waitFor((f) => toHex(f) === toHex(frames.update), { what: "relayed update" });
      assert.equal(toHex(relayed), toHex(frames.update));
      await a.waitDecoded(isAckFor(frames.updateId), "ack of the update");
      b.send(frames.awareness);
      await a.waitFor((f) => toHex(f) === toHex(frames.awareness), { what: "relayed awareness" });
      await Promise.all([a.close(), b.close()]);
    });

    test("malformed frames get a clear error and never harm another connection", async () => {
      const room = `bad-${Date.now()}`;
      const a = await open("seed", { token: await mintToken({ userId: "a", room }), room });
      const b = await open("seed", { token: await mintToken({ userId: "b", room }), room });
      for (const c of [a, b]) {
        c.send(frames.syncStep1);
        await c.waitDecoded(isAckFor("9bc4b470bbcb99a6"));
      }
      a.send("hello, not teleportal");
      a.send(hex("594a5302"));
      a.send(hex("594a530103646f6300000202ff"));
      const nack = await a.waitDecoded((m) => m.type === "ack" && m.payload.error, "NACK for a malformed frame");
      assert.match(nack.payload.error, /decode|Teleportal|Invalid/i);
      // Both connections keep working: b's update still reaches a, a's reaches b.
      b.send(frames.update);
      await a.waitFor((f) => toHex(f) === toHex(frames.update), { what: "update relayed to a" });
      a.send(frames.update);
      await b.waitFor((f) => toHex(f) === toHex(frames.update), { what: "update relayed to b" });
      await Promise.all([a.close(), b.close()]);
    });

    test("real Y.Doc clients converge through the server; a late joiner gets the full state", async () => {
      const { YClient, until, Y } = await import("./yclient.mjs");
      const room = `yjs-${Date.now()}`;
      const url = async (user) => host.url("seed", { token: await mintToken({ userId: user, room }), room });
      const a = await YClient.open(await url("alice"), "notes");
      const b = await YClient.open(await url("bob"), "notes");
      await Promise.all([a.synced, b.synced]);
      a.doc.getText("t").insert(0, "hello");
      await until(() => b.doc.getText("t").toString() === "hello", { what: "b sees a's insert" });
      // Concurrent edits on both sides, several types.
      b.doc.getText("t").insert(5, " world");
      a.doc.getMap("m").set("k", 1);
      a.doc.getArray("list").push([1, 2, 3]);
      b.doc.getText("t").format(0, 5, { bold: true });
      await until(
        () => Buffer.compare(Y.encodeStateVector(a.doc), Y.encodeStateVector(b.doc)) === 0 &&
          a.doc.getText("t").toString() === "hello world",
        { what: "a and b converge" },
      );
      assert.deepEqual(b.doc.getMap("m").toJSON(), { k: 1 });
      assert.deepEqual(b.doc.getText("t").toDelta(), a.doc.getText("t").toDelta());

      // A malformed update (raw V1 bytes, spec 6 item 2) is refused and poisons nothing.
      const { encodeMessage } = await import("teleportal/protocol");
      const v1doc = new Y.Doc();
      v1doc.getText("t").insert(0, "abc");
      const v1 = Y.encodeStateAsUpdate(v1doc); // starts with 01: the reference misreads it as an envelope
      assert.equal(v1[0], 1);
      a.client.send(encodeMessage({ type: "doc", document: "notes", encrypted: false,
        payload: { type: "update", update: { version: 1, data: v1 } } }));
      await until(() => a.errors.length > 0, { what: "NACK for the bad update" });

      const c = await YClient.open(await url("carol"), "notes");
      await c.synced;
      await until(() => c.doc.getText("t").toString() === "hello world", { what: "late joiner state" });
      assert.deepEqual(c.doc.getArray("list").toJSON(), [1, 2, 3]);
      assert.deepEqual(c.doc.getText("t").toDelta(), a.doc.getText("t").toDelta());
      assert.equal(c.errors.length, 0);
      assert.equal(b.fatal, null);
      await Promise.all([a.close(), b.close(), c.close()]);
    });

    test("a client that stops reading is disconnected; the others keep up", { skip: !backpressure && "the runtime gives no backpressure signal" }, async () => {
      const { YClient, until, Y } = await import("./yclient.mjs");
      const { encodeMessage, encodeContentEncryptedPayload } = await import("teleportal/protocol");
      const room = `slow-${Date.now()}`;
      const url = async (user) => host.url("seed", { token: await mintToken({ userId: user, room }), room });
      const slow = await YClient.open(await url("slow"), "doc");
      const fast = await connect(await url("fast"));
      const writer = await connect(await url("writer"));
      fast.send(frames.syncStep1);
      await fast.waitDecoded(isAckFor("9bc4b470bbcb99a6"), "fast joined");
      await slow.synced;
      slow.client.ws._socket.pause(); // stop reading: the server's queue for it grows

      const source = new Y.Doc();
      const updates = [];
      source.on("updateV2", (u) => updates.push(u));
      const chunk = "x".repeat(64 * 1024);
      for (let i = 0; i < 200; i++) source.getText("t").insert(0, chunk);
      const sent = updates.map((u) => encodeMessage({ type: "doc", document: "doc", encrypted: false,
        payload: { type: "update", update: { version: 2, data: encodeContentEncryptedPayload({ structureUpdate: u, encryptedSidecars: [] }) } } }));
      // Paced like a real client (a window of 4 unacknowledged frames), so only the slow client's
      // queue grows; the fast one keeps up even on a loaded machine.
      const { getMessageId } = await import("teleportal/protocol");
      for (let i = 0; i < sent.length; i++) {
        writer.send(sent[i]);
        if (i >= 4) await writer.waitDecoded(isAckFor(getMessageId(sent[i - 4])), "ack");
      }
      // Updates of one batch may reach readers merged into one frame: the fast client must end up
      // with all of the content.
      const { decodeMessage, decodeContentEncryptedPayload } = await import("teleportal/protocol");
      const mirror = new Y.Doc();
      let applied = 0;
      const want = source.getText("t").length;
      await until(() => {
        for (; applied < fast.received.length; applied++) {
          const m = decodeMessage(fast.received[applied]);
          if (m.type === "doc" && m.payload.type === "update") {
            Y.applyUpdateV2(mirror, decodeContentEncryptedPayload(m.payload.update.data).structureUpdate);
          }
        }
        return mirror.getText("t").length === want;
      }, { timeout: 20000, what: "every update at the fast client" });
      assert.equal(mirror.getText("t").toString(), source.getText("t").toString(), "fast client got every update");
      const stats = await eventually(async () => {
        const s = await host.stats("seed", room);
        const id = s.connects.find((c) => c.context.userId === "slow")?.id;
        return id && s.disconnects[id] === 1 ? s : null;
      }, { timeout: 10000, what: "the slow client is disconnected" });
      const fastId = stats.connects.find((c) => c.context.userId === "fast").id;
      assert.equal(stats.disconnects[fastId], undefined);
      slow.client.ws.terminate();
      await Promise.all([fast.close(), writer.close()]);
    });

    test("hostile clients never take the server down", async () => {
      const net = await import("node:net");
      const [hostname, port] = new URL(host.url("seed", {}).replace("ws:", "http:")).host.split(":");
      const raw = (text) => new Promise((resolve) => {
        const s = net.connect(Number(port), hostname, () => s.end(text));
        s.on("error", () => resolve());
        s.on("close", () => resolve());
        s.resume();
      });
      const token = await mintToken({ userId: "hostile" });
      const path = host.url("seed", { token, room: "room-1" }).replace(/^ws:\/\/[^/]+/, "");
      await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`); // no key
      await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n`); // cut mid-request
      await raw("\x00\xff garbage \r\n\r\n");
      // A client that vanishes right after the handshake, mid-frame.
      const c = await open("seed", { token });
      c.ws._socket.write(Buffer.from([0x82, 0x7e, 0xff]));
      c.ws._socket.destroy();
      // The server still serves a normal client.
      const ok = await open("seed", { token });
      ok.send(frames.syncStep1);
      await ok.waitDecoded(isAckFor("9bc4b470bbcb99a6"), "served after hostile clients");
      await ok.close();
    });

    // ---- one security model on every host (built-in check: the context is the verified claims) ----
    const tokenUrl = async (claims, options) => host.url("builtin", { token: await mintToken(claims, options), room: claims.room ?? "room-1" });
    const only = (pattern, ...permissions) => [{ pattern, permissions }];
    const kinds = (c) => c.received.map((f) => { try { const m = decodeMessage(f); return `${m.type}:${m.payload.type ?? ""}`; } catch { return "pong"; } });

    test("permissions: a read-only user cannot write and still receives; a user without read gets nothing", async () => {
      const { YClient, until } = await import("./yclient.mjs");
      const room = `perm-${Date.now()}`;
      const writer = await YClient.open(await tokenUrl({ userId: "w", room }), "doc");
      const reader = await YClient.open(await tokenUrl({ userId: "r", room, documentAccess: only("doc", "read") }), "doc");
      await Promise.all([writer.synced, reader.synced]);
      const outsider = await connect(await tokenUrl({ userId: "o", room, documentAccess: only("other", "read", "write") }));
      const { encodeMessage } = await import("teleportal/protocol");
      outsider.send(frames.syncStep1);
      outsider.send(frames.awareness);
      outsider.send(encodeMessage({ type: "presence", document: "doc", encrypted: false, payload: { type: "presence-announce", awarenessId: 77 } }));
      await until(() => outsider.received.length >= 3, { what: "three denials" });

      reader.doc.getText("t").insert(0, "nope");
      await until(() => reader.fatal !== null, { what: "the read-only user's write is denied" });
      assert.equal(reader.fatal, "Insufficient permissions to access document doc");
      writer.doc.getText("t").insert(0, "hello");
      await until(() => reader.doc.getText("t").toString().includes("hello"), { what: "the reader still receives" });
      writer.client.send(frames.awareness);
      await reader.client.waitFor((f) => toHex(f) === toHex(frames.awareness), { what: "awareness reaches the reader" });
      const { getMessageId } = await import("teleportal/protocol");
      await writer.client.waitDecoded(isAckFor(getMessageId(frames.awareness)), "the writer's awareness is acked");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(writer.doc.getText("t").toString(), "hello", "the denied write reached nobody");
      assert.deepEqual(kinds(outsider), ["doc:auth-message", "doc:auth-message", "doc:auth-message"], "only denials: no content, awareness or presence");
      await Promise.all([writer.close(), reader.close(), outsider.close()]);
    });

    test("rooms and documents are isolated: the same document name in two rooms shares nothing", async () => {
      const { YClient, until } = await import("./yclient.mjs");
      const stamp = Date.now();
      const a = await YClient.open(await tokenUrl({ userId: "a", room: `iso-a-${stamp}` }), "notes");
      const b = await YClient.open(await tokenUrl({ userId: "b", room: `iso-b-${stamp}` }), "notes");
      const a2 = await YClient.open(await tokenUrl({ userId: "a2", room: `iso-a-${stamp}` }), "other");
      await Promise.all([a.synced, b.synced, a2.synced]);
      a.doc.getText("t").insert(0, "room a");
      b.doc.getText("t").insert(0, "room b");
      const late = await YClient.open(await tokenUrl({ userId: "late", room: `iso-a-${stamp}` }), "notes");
      await late.synced;
      await until(() => late.doc.getText("t").toString() === "room a", { what: "room a's state" });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(b.doc.getText("t").toString(), "room b");
      assert.equal(a2.doc.getText("t").toString(), "");
      await Promise.all([a.close(), b.close(), a2.close(), late.close()]);
    });

    test("an expiring token closes the connection with 4401 at expiry", async () => {
      const c = await connect(await tokenUrl({ userId: "short", room: `exp-${Date.now()}` }, { expiresIn: 2 }));
      c.send(frames.syncStep1);
      await c.waitDecoded(isAckFor("9bc4b470bbcb99a6"), "served before expiry");
      const started = Date.now();
      const closed = await Promise.race([c.closed, new Promise((r) => setTimeout(() => r(null), 8000))]);
      assert.ok(closed, "closed within 8 s");
      assert.equal(closed.code, 4401);
      assert.equal(closed.reason, "token expired");
      assert.ok(Date.now() - started < 4000, "closed at expiry, not much later");
    });

    test("an in-band refresh keeps the connection open with the new token's permissions", async () => {
      const room = `refresh-${Date.now()}`;
      const c = await connect(await tokenUrl({ userId: "fresh", room }, { expiresIn: 2 }));
      c.send(frames.syncStep1);
      await c.waitDecoded(isAckFor("9bc4b470bbcb99a6"), "joined");
      const { encodeMessage, getMessageId } = await import("teleportal/protocol");
      const refresh = encodeMessage({ type: "doc", document: "doc", encrypted: false,
        payload: { type: "auth-message", permission: "allowed", reason: await mintToken({ userId: "fresh", room, documentAccess: only("doc", "read") }) } });
      c.send(refresh);
      const ack = await c.waitDecoded(isAckFor(getMessageId(refresh)), "ack of the refresh");
      assert.equal(ack.payload.error, undefined);
      const stolen = encodeMessage({ type: "doc", document: "doc", encrypted: false,
        payload: { type: "auth-message", permission: "allowed", reason: await mintToken({ userId: "someone-else", room }) } });
      c.send(stolen);
      const refused = await c.waitDecoded(isAckFor(getMessageId(stolen)), "NACK of another user's token");
      assert.equal(refused.payload.error, "Token refresh refused: the new token is for another user or room");
      await new Promise((r) => setTimeout(r, 3500)); // past the first token's exp
      c.received.length = 0;
      c.send(frames.syncStep1);
      await c.waitDecoded(isAckFor("9bc4b470bbcb99a6"), "still open and reading");
      c.send(frames.update);
      const denied = await c.waitDecoded((m) => m.payload.type === "auth-message", "writing is denied now");
      assert.equal(denied.payload.reason, "Insufficient permissions to access document doc");
      await c.close();
    });

    // The HTTP/SSE transport (teleportal/http) on the builtin host: same port, Hub and Server.
    const sseUrlOf = async (claims) => {
      const u = new URL(host.url("builtin", { token: await mintToken(claims) }).replace(/^ws/, "http"));
      u.pathname = u.pathname.endsWith("/") ? `${u.pathname}sse` : `${u.pathname}/sse`;
      return u;
    };

    test("http: GET /sse streams the client-id event; mallory's POST for alice's stream is refused (403), alice's own is served", async () => {
      const room = `sse-${Date.now()}`;
      const alice = await sseUrlOf({ userId: "alice", room });
      const stream = await openSse(alice);
      assert.equal(stream.response.headers.get("content-type"), "text/event-stream");
      assert.equal(stream.response.headers.get("x-powered-by"), "teleportal");
      const id = stream.response.headers.get("x-teleportal-client-id");
      await stream.until((events) => events[0]?.event === "client-id" && events[0].data === id, "client-id event");
      const body = messageArray([frames.syncStep1]);
      const mallory = await fetch(await sseUrlOf({ userId: "mallory", room }), { method: "POST", body, headers: { "x-teleportal-client-id": id } });
      assert.equal(mallory.status, 403);
      assert.equal((await mallory.json()).error, "Forbidden");
      const noToken = await fetch(new URL(`${alice.pathname}?client-id=${id}`, alice), { method: "POST", body });
      assert.equal(noToken.status, 401);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(stream.events.filter((e) => e.event === "message").length, 0, "nothing was processed for mallory");
      const own = await fetch(alice, { method: "POST", body, headers: { "x-teleportal-client-id": id } });
      assert.deepEqual([own.status, await own.json()], [200, { message: "ok" }]);
      const types = await stream.until((events) => {
        const decoded = events.filter((e) => e.event === "message").map((e) => decodeMessage(Buffer.from(e.data, "base64")));
        return decoded.some((m) => m.type === "ack" && m.payload.messageId === "9bc4b470bbcb99a6") && decoded.map((m) => m.payload.type);
      }, "replies on the stream");
      assert.deepEqual(types.slice(0, 3), ["sync-step-2", "sync-step-1", "ack"]);
      const undecodable = await fetch(alice, { method: "POST", body: messageArray([frames.ping]), headers: { "x-teleportal-client-id": id } });
      assert.equal(undecodable.status, 400);
      assert.deepEqual(await undecodable.json(), { error: "Invalid message array", message: "Failed to decode update message: Invalid version" });
      const oneShot = new URL(alice);
      oneShot.pathname = oneShot.pathname.replace(/sse$/, "message");
      const once = await fetch(oneShot, { method: "POST", body });
      assert.equal(once.status, 200);
      assert.equal(once.headers.get("content-type"), "application/octet-stream");
      const { decodeMessageArray } = await import("teleportal/protocol");
      assert.deepEqual(decodeMessageArray(new Uint8Array(await once.arrayBuffer())).map((m) => m.payload.type), ["sync-step-2", "sync-step-1", "ack"]);
      // The stream went through the Hub's hooks like a WebSocket; the client going away disconnects it.
      assert.ok((await host.stats("builtin", room)).connects.some((c) => c.id === id), "onConnect ran for the stream");
      stream.close();
      // workerd notices a client that went away when a write fails: the pings (every 5 s) do that.
      await eventually(async () => (await host.stats("builtin", room)).disconnects[id] === 1, { timeout: 15_000, what: "onDisconnect after the client went away" });
    });

    test("http: a Y.Doc over SSE + POST and a Y.Doc over WebSocket edit one document and converge", async () => {
      const room = `conv-${Date.now()}`;
      const base = host.url("builtin", {});
      const { TeleportalProvider } = await import("teleportal/provider");
      const overHttp = new TeleportalProvider({ url: base, token: await mintToken({ userId: "h", room }), transports: ["http"] });
      const overWs = new TeleportalProvider({ url: base, token: await mintToken({ userId: "w", room }), WebSocket, transports: ["websocket"] });
      try {
        const a = overHttp.open("notes");
        const b = overWs.open("notes");
        await Promise.all([a.synced, b.synced]);
        assert.equal(overHttp.transport, "http");
        assert.equal(overWs.transport, "websocket");
        a.doc.getText("t").insert(0, "over http. ");
        b.doc.getText("t").insert(0, "over ws. ");
        await eventually(() => a.doc.getText("t").toString() === b.doc.getText("t").toString() && a.doc.getText("t").length === 20, { what: "convergence" });
        await Promise.all([overHttp.flush(), overWs.flush()]);
        // A late reader over HTTP gets the whole document from the server.
        const late = new TeleportalProvider({ url: base, token: await mintToken({ userId: "late", room }), transports: ["http"] });
        const c = late.open("notes");
        await c.synced;
        await eventually(() => c.doc.getText("t").toString() === a.doc.getText("t").toString(), { what: "late reader" });
        late.destroy();
      } finally {
        overHttp.destroy();
        overWs.destroy();
      }
    });

    test("http: a provider whose WebSocket is refused falls back to HTTP, syncs, and moves back once WebSockets work", async () => {
      const room = `fallback-${Date.now()}`;
      const base = host.url("builtin", {});
      const { TeleportalProvider } = await import("teleportal/provider");
      let blocked = true;
      // A WebSocket whose connections are refused (a closed port) while `blocked`: what a proxy
      // that drops upgrades looks like to the client.
      class Blockable extends WebSocket {
        constructor(url, ...rest) {
          const u = new URL(url);
          if (blocked) u.port = String(refusedPort);
          super(u, ...rest);
        }
      }
      const peer = new TeleportalProvider({ url: base, token: await mintToken({ userId: "peer", room }), WebSocket, transports: ["websocket"] });
      const p = new TeleportalProvider({ url: base, token: await mintToken({ userId: "fb", room }), WebSocket: Blockable, upgradeProbeInterval: 300 });
      const upgraded = new Promise((r) => p.on("upgrade", r));
      try {
        const d = p.open("notes");
        const e = peer.open("notes");
        await Promise.all([d.synced, e.synced]);
        assert.equal(p.transport, "http");
        d.doc.getText("t").insert(0, "from the fallback");
        await eventually(() => e.doc.getText("t").toString() === "from the fallback", { what: "relay from the HTTP client" });
        blocked = false;
        await upgraded;
        await eventually(() => p.transport === "websocket" && d.isSynced, { what: "upgraded to websocket" });
        e.doc.getText("t").insert(0, "back on ws: ");
        await eventually(() => d.doc.getText("t").toString() === "back on ws: from the fallback", { what: "relay after the upgrade" });
      } finally {
        p.destroy();
        peer.destroy();
      }
    });

    test("milestones on the host's storage: create, list and get over RPC; a reader may list, not create", async () => {
      const { encodeMessage, getMessageId } = await import("teleportal/protocol");
      const room = `ms-${Date.now()}`;
      const c = await connect(await tokenUrl({ userId: "ms-writer", room }));
      const reader = await connect(await tokenUrl({ userId: "ms-reader", room, documentAccess: only("doc", "read") }));
      const rpc = (method, payload) => encodeMessage({ type: "rpc", document: "doc", encrypted: false, rpcMethod: method,
        requestType: "request", originalRequestId: null, payload: { type: "success", payload: { method, ...payload } } });
      const answer = (client, frame, what) => client.waitDecoded((m) => m.type === "rpc" && m.originalRequestId === getMessageId(frame), what);
      const snapshot = hex("000002a5010000010409067468656c6c6f01050101000001010000"); // the vectors' "hello"
      const create = rpc("milestoneCreate", { name: "v1", snapshot });
      c.send(create);
      const created = (await answer(c, create, "create response")).payload.payload.milestone;
      await c.waitDecoded(isAckFor(getMessageId(create)), "ack after the response");
      assert.equal(created.name, "v1");
      assert.equal(created.documentId, `${room}/doc`);
      assert.deepEqual(created.createdBy, { type: "user", id: "ms-writer" });
      const list = rpc("milestoneList", { snapshotIds: [], includeDeleted: false });
      reader.send(list);
      const listed = (await answer(reader, list, "list response")).payload.payload.milestones;
      assert.deepEqual(listed.map((m) => [m.id, m.name]), [[created.id, "v1"]]);
      const get = rpc("milestoneGet", { milestoneId: created.id });
      reader.send(get);
      assert.equal(toHex((await answer(reader, get, "get response")).payload.payload.snapshot), toHex(snapshot));
      const denied = rpc("milestoneCreate", { name: "no", snapshot });
      reader.send(denied);
      const refusal = await answer(reader, denied, "403");
      assert.deepEqual(refusal.payload, { type: "error", statusCode: 403, details: "Permission denied", payload: undefined });
      await Promise.all([c.close(), reader.close()]);
    });

    extra?.(() => host);
  });
}

// A loopback port with nothing listening (bound, then closed).
const refusedPort = await new Promise((resolve) => {
  import("node:net").then(({ createServer }) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
});

function messageArray(list) {
  const parts = [];
  for (const f of list) {
    let n = f.length;
    const len = [];
    while (n > 0x7f) {
      len.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    len.push(n);
    parts.push(Uint8Array.from(len), f);
  }
  return Buffer.concat(parts);
}

/** GET /sse with fetch: parsed events so far, and until(fn) waiting for fn(events) to be truthy. */
async function openSse(url) {
  const abort = new AbortController();
  const response = await fetch(url, { signal: abort.signal });
  assert.equal(response.status, 200);
  const events = [];
  const waiters = new Set();
  (async () => {
    const decoder = new TextDecoder();
    let text = "";
    try {
      for await (const chunk of response.body) {
        text += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = text.indexOf("\n\n")) >= 0) {
          const e = {};
          for (const line of text.slice(0, end).split("\n")) {
            const i = line.indexOf(":");
            e[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, "");
          }
          events.push(e);
          text = text.slice(end + 2);
        }
        for (const w of [...waiters]) w();
      }
    } catch {
      // aborted
    }
  })();
  return {
    response,
    events,
    close: () => abort.abort(),
    until: (fn, what) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const v = fn(events);
          if (!v) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(v);
        };
        const timer = setTimeout(() => (waiters.delete(check), reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(events)}`))), 5000);
        waiters.add(check);
        check();
      }),
  };
}

export { eventually, toHex, hex };
