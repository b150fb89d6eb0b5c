// teleportal/provider against our three hosts (Bun.serve, Node http + ws, workerd Durable
// Objects), through a loopback TCP proxy that can cut connections abruptly.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startProcessHost } from "../hosts/process-host.mjs";
import { startWorkerdHost } from "../hosts/workerd-host.mjs";
import { connect } from "../hosts/suite.mjs";
import { encodeMessage } from "../../wasm/src/provider-codec.js";
import { mintToken, next, provider, record, startProxy, until, within } from "./helpers.mjs";

const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
const fixture = (f) => fileURLToPath(new URL(`../hosts/fixtures/${f}`, import.meta.url));

const hosts = {
  "Bun.serve": () => startProcessHost(bun, [fixture("bun-app.js")]),
  "Node http + ws": () => startProcessHost(process.execPath, [fixture("node-app.mjs")]),
  "workerd (Durable Objects)": () => startWorkerdHost(),
};

let rooms = 0;

for (const [name, start] of Object.entries(hosts)) {
  describe(`provider against ${name}`, () => {
    let host;
    let proxy;
    const live = [];
    before(async () => {
      host = await start();
      proxy = await startProxy(new URL(host.url("builtin", {})).host);
    });
    after(async () => {
      for (const p of live) p.destroy();
      await proxy?.stop();
      await host?.stop();
    });

    /** A provider for `room` through the proxy (or straight to the host with direct: true). */
    const open = async (room, user, { direct = false, ...options } = {}) => {
      const url = new URL(host.url("builtin", { room }));
      if (!direct) url.host = proxy.address;
      const token = await mintToken({ room, userId: user });
      const p = provider(url, { token, ...options });
      live.push(p);
      return p;
    };
    const newRoom = () => `prov-${Date.now()}-${rooms++}`;

    test("two providers converge on concurrent edits to two documents over one connection each", async () => {
      const room = newRoom();
      const before = proxy.accepted;
      const [a, b] = [await open(room, "ann"), await open(room, "bob")];
      const docs = ["notes", "todo"].map((n) => [a.open(n), b.open(n)]);
      await within(Promise.all(docs.flat().map((d) => d.synced)), 5000, "first sync");
      for (const [da, db] of docs) {
        da.doc.getText("t").insert(0, `ann on ${da.name} `);
        db.doc.getText("t").insert(0, `bob on ${db.name} `);
      }
      for (const [da, db] of docs) {
        await until(() => da.doc.getText("t").toString() === db.doc.getText("t").toString() &&
          db.doc.getText("t").length === `ann on ${da.name} `.length * 2, { what: `convergence of ${da.name}` });
        assert.match(da.doc.getText("t").toString(), new RegExp(`ann on ${da.name}`));
        assert.match(da.doc.getText("t").toString(), new RegExp(`bob on ${da.name}`));
      }
      assert.equal(proxy.accepted - before, 2, "one socket per provider, whatever the number of documents");
      await within(Promise.all([a.flush(), b.flush()]), 5000, "acks");
    });

    test("a provider that joins later gets the stored state (sync-step-1/2 with envelopes)", async () => {
      const room = newRoom();
      const a = await open(room, "ann");
      const da = a.open("doc");
      await da.synced;
      da.doc.getMap("m").set("k", "v");
      da.doc.getText("t").insert(0, "x".repeat(5000));
      await a.flush();
      const b = await open(room, "bob", { direct: true });
      const db = b.open("doc");
      await within(db.synced, 5000, "late joiner sync");
      assert.equal(db.doc.getMap("m").get("k"), "v", "synced resolves after the server's state is applied");
      assert.equal(db.doc.getText("t").length, 5000);
    });

    test("recovers from an abrupt socket drop: status events, reconnect, resync", async () => {
      const room = newRoom();
      const [a, b] = [await open(room, "ann"), await open(room, "bob", { direct: true })];
      const log = record(a);
      const [da, db] = [a.open("doc"), b.open("doc")];
      await Promise.all([da.synced, db.synced]);
      const reconnected = next(a, "status", { filter: (s) => s === "connected" });
      proxy.drop(); // TCP reset: no close frame
      await within(reconnected, 5000, "reconnect");
      assert.deepEqual(log.status.slice(-3), ["disconnected", "connecting", "connected"]);
      await within(da.synced, 5000, "resync after reconnect");
      da.doc.getText("t").insert(0, "after the drop");
      await until(() => db.doc.getText("t").toString() === "after the drop", { what: "edit after reconnect" });
      assert.deepEqual(log.errors, []);
    });

    test("resyncs offline edits from both sides once the connection is back", async () => {
      const room = newRoom();
      const [a, b] = [await open(room, "ann"), await open(room, "bob")];
      const [da, db] = [a.open("doc"), b.open("doc")];
      await Promise.all([da.synced, db.synced]);
      da.doc.getText("t").insert(0, "base ");
      await until(() => db.doc.getText("t").toString() === "base ", { what: "base text" });
      proxy.offline();
      await until(() => a.status !== "connected" && b.status !== "connected", { what: "both offline" });
      da.doc.getText("t").insert(5, "ann-offline ");
      db.doc.getText("t").insert(0, "bob-offline ");
      await new Promise((r) => setTimeout(r, 100)); // a few failed reconnects
      assert.equal(da.isSynced, false);
      proxy.online();
      await within(Promise.all([da.synced, db.synced]), 5000, "resync");
      await until(() => da.doc.getText("t").toString() === db.doc.getText("t").toString() &&
        /ann-offline/.test(db.doc.getText("t").toString()) && /bob-offline/.test(da.doc.getText("t").toString()),
      { what: "offline edits converge" });
      // The server has both offline edits too: a newcomer sees them.
      const c = await open(room, "cid", { direct: true });
      const dc = c.open("doc");
      await dc.synced;
      assert.equal(dc.doc.getText("t").toString(), da.doc.getText("t").toString());
    });

    test("awareness states reach peers; presence-leave removes a peer's state", async () => {
      const room = newRoom();
      const [a, b] = [await open(room, "ann"), await open(room, "bob")];
      const [da, db] = [a.open("doc"), b.open("doc")];
      await Promise.all([da.synced, db.synced]);
      da.awareness.setLocalStateField("user", { name: "Ann" });
      const annId = da.awareness.clientID;
      await until(() => db.awareness.getStates().get(annId)?.user?.name === "Ann", { what: "Ann's state at Bob" });
      // Bob announced after Ann: both sides got presence-join for the other.
      const left = next(db, "peer-leave");
      a.destroy();
      const [leave] = await within(left, 5000, "presence-leave");
      assert.equal(leave.awarenessId, annId);
      await until(() => !db.awareness.getStates().has(annId), { what: "Ann's state removed at Bob" });
    });

    test("a NACK from the server is reported as an error event", async () => {
      const room = newRoom();
      // Another client fixes the session's encryption mode first.
      const raw = await connect(new URL(host.url("builtin", { room, token: await mintToken({ room }) })).toString());
      raw.send(encodeMessage({ type: "awareness", document: "locked", encrypted: true, payload: { type: "awareness-request" } }));
      await raw.waitFor((f) => f[4] === 0 && f[6] === 2, { what: "ack of the encrypted frame" });
      const a = await open(room, "ann");
      const d = a.open("locked");
      const [err] = await within(Promise.all([next(a, "error"), next(d, "error")]).then(([e]) => e), 5000, "error event");
      assert.equal(err.type, "nack");
      assert.equal(err.document, "locked");
      assert.equal(err.message,
        `The server refused a sync-step-1 for "locked": Encryption state mismatch: existing session for document ` +
        `"${room}/locked" has encrypted=true, but requested encrypted=false`);
      assert.match(err.messageId, /^[0-9a-f]{16}$/);
      assert.equal(d.isSynced, false);
      await raw.close();
    });

    test("getToken is called for every connect; a reconnect after a drop uses a fresh token", async () => {
      const room = newRoom();
      const url = new URL(host.url("builtin", { room }));
      url.host = proxy.address;
      const issued = [];
      const getToken = async () => (issued.push(await mintToken({ room, userId: "ann" })), issued.at(-1));
      const a = provider(url, { getToken });
      live.push(a);
      const log = record(a);
      const d = a.open("doc");
      await d.synced;
      assert.equal(issued.length, 1);
      proxy.drop();
      await until(() => issued.length === 2 && a.status === "connected", { what: "reconnect with a fresh token" });
      await within(d.synced, 5000, "resync");
      assert.equal(a.token, issued[1]);
      assert.deepEqual(log.errors, []);
    });
  });
}
