// Three host-bun/serve.js nodes (Bun, Node, Bun) on one PostgreSQL and one Redis, real providers
// (teleportal/provider) and raw clients on different nodes: convergence of text, awareness and
// presence, a late joiner on a node that never had the document, read permissions across nodes,
// and presence leaving when a node dies.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeMessage, encodeMessage } from "teleportal/protocol";
import { connect } from "../hosts/suite.mjs";
import { provider, until, next } from "../provider/helpers.mjs";
import { PRESENCE_TIMEOUT_MS, startCluster } from "./harness.mjs";

const text = (d) => d.doc.getText("text").toString();
const stateOf = (d, other) => d.awareness.getStates().get(other.awareness.clientID);

describe("cluster: three nodes (Bun, Node, Bun) on PostgreSQL and Redis", { timeout: 60_000 }, () => {
  let cluster;
  const providers = [];
  const open = async (node, userId, name, claims) => {
    const p = provider(await node.url(userId, claims));
    providers.push(p);
    return p.open(name);
  };
  before(async () => {
    cluster = await startCluster(["bun", "node", "bun"]);
  });
  after(async () => {
    for (const p of providers) p.destroy();
    await cluster?.stop();
  });

  test("clients on different nodes converge: text, awareness and presence", async () => {
    const [n1, n2] = cluster.nodes;
    const a = await open(n1, "ann", "notes");
    const b = await open(n2, "bob", "notes");
    const bSeesAnn = next(b, "peer-join", { filter: (p) => p.userId === "ann" });
    const aSeesBob = next(a, "peer-join", { filter: (p) => p.userId === "bob" });
    await Promise.all([a.synced, b.synced]);
    a.doc.getText("text").insert(0, "from bun. ");
    b.doc.getText("text").insert(0, "from node. ");
    await until(() => text(a) === text(b) && text(a).length === "from bun. from node. ".length, { what: "text converges" });
    a.awareness.setLocalStateField("user", { name: "Ann" });
    b.awareness.setLocalStateField("user", { name: "Bob" });
    await until(() => stateOf(b, a)?.user?.name === "Ann" && stateOf(a, b)?.user?.name === "Bob", { what: "awareness across nodes" });
    const [[ann], [bob]] = await Promise.all([bSeesAnn, aSeesBob]);
    assert.equal(ann.awarenessId, a.awareness.clientID);
    assert.equal(bob.awarenessId, b.awareness.clientID);
  });

  test("a late joiner on a third node gets the full state, and its writes reach the others", async () => {
    const [n1, n2, n3] = cluster.nodes;
    const a = await open(n1, "ann-2", "late");
    const b = await open(n2, "bob-2", "late");
    await Promise.all([a.synced, b.synced]);
    for (let i = 0; i < 50; i++) (i % 2 ? a : b).doc.getText("text").insert(0, `${i},`);
    a.doc.getMap("m").set("big", "x".repeat(100_000));
    await Promise.all([a.provider.flush({ timeout: 5000 }), b.provider.flush({ timeout: 5000 })]);
    await until(() => text(a) === text(b), { what: "a and b converge" });
    const c = await open(n3, "cyd", "late");
    await c.synced;
    assert.equal(text(c), text(a), "full text at the late joiner");
    assert.equal(c.doc.getMap("m").get("big")?.length, 100_000);
    c.doc.getText("text").insert(0, "cyd was here. ");
    await until(() => text(a).startsWith("cyd was here. ") && text(b) === text(a), { what: "the late joiner's write everywhere" });
    a.awareness.setLocalStateField("user", { name: "Ann" });
    await until(() => stateOf(c, a)?.user?.name === "Ann", { what: "awareness at the late joiner" });
  });

  test("read permissions hold across nodes: a no-access user on node 2 gets nothing of a document written on node 1", async () => {
    const [n1, n2] = cluster.nodes;
    const name = "secret";
    // A reader with access on node 2 makes node 2 hold the document's channel (positive control).
    const reader = await open(n2, "reader", name);
    const writer = await open(n1, "writer", name);
    await Promise.all([reader.synced, writer.synced]);
    const spy = await connect(await n2.url("spy", { documentAccess: [{ pattern: "other-*", permissions: ["read", "write"] }] }));
    const send = (type, payload) => spy.send(encodeMessage({ type, document: name, encrypted: false, payload }));
    send("doc", { type: "sync-step-1", sv: new Uint8Array([0]) });
    send("presence", { type: "presence-announce", awarenessId: 4242 });
    send("awareness", { type: "awareness-request" });
    const denied = await spy.waitDecoded((m) => m.document === name && m.payload.type === "auth-message", "the denial");
    assert.equal(denied.payload.permission, "denied");
    // Everything node 1 relays for the document from now on: updates, awareness, presence.
    writer.doc.getText("text").insert(0, "top secret");
    writer.awareness.setLocalStateField("user", { name: "W" });
    const late = await open(n1, "writer-2", name);
    await late.synced;
    await until(() => text(reader) === "top secret" && stateOf(reader, writer)?.user?.name === "W", { what: "the reader on node 2 gets them" });
    await new Promise((r) => setTimeout(r, 3 * 200)); // a few heartbeats
    const leaked = spy.received.map((f) => decodeMessage(f)).filter((m) => m.document === name && m.payload.type !== "auth-message");
    assert.deepEqual(leaked.map((m) => `${m.type}/${m.payload.type}`), [], "frames of the document reached the no-access user");
    await spy.close();
  });

  test("a node that dies takes its clients' presence with it: other nodes' clients see them leave", async () => {
    const [n1] = cluster.nodes;
    const doomed = await cluster.addNode("node");
    const a = await open(n1, "ann-3", "presence");
    const d = await open(doomed, "dora", "presence");
    const aSeesDora = next(a, "peer-join", { filter: (p) => p.userId === "dora" });
    await Promise.all([a.synced, d.synced]);
    d.awareness.setLocalStateField("user", { name: "Dora" });
    await aSeesDora;
    await until(() => stateOf(a, d)?.user?.name === "Dora", { what: "Dora's awareness at node 1" });
    const leaves = next(a, "peer-leave", { filter: (p) => p.userId === "dora", timeout: PRESENCE_TIMEOUT_MS + 4000 });
    const killedAt = Date.now();
    await doomed.kill();
    const [gone] = await leaves;
    const waited = Date.now() - killedAt;
    assert.equal(gone.awarenessId, d.awareness.clientID);
    assert.ok(waited >= PRESENCE_TIMEOUT_MS / 2, `left after the timeout, not before (${waited} ms)`);
    assert.equal(stateOf(a, d), undefined, "Dora's awareness state is removed with her presence");
  });

  test("Redis down: nodes keep opening, storing and acknowledging, /health says 503, a node stops on SIGTERM; relays resume when Redis is back", async () => {
    const [n1, n2] = cluster.nodes;
    const leaving = await cluster.addNode("node");
    const stays = await open(leaving, "lee", "outage");
    await stays.synced;
    await cluster.stopRedis();
    const health = async (node) => (await fetch(`http://127.0.0.1:${node.port}/health`)).status;
    await until(async () => (await health(n1)) === 503, { what: "/health 503 without Redis" });
    const a = await open(n1, "ann-4", "outage");
    await a.synced; // the subscription cannot be confirmed: the document opens after subscribeTimeoutMs
    a.doc.getText("text").insert(0, "written during the outage. ");
    await a.provider.flush({ timeout: 5000 });
    const stopping = Date.now();
    await leaving.stop();
    assert.ok(Date.now() - stopping < 4000, `SIGTERM without Redis exits (${Date.now() - stopping} ms)`);
    assert.equal(leaving.child.exitCode, 0);
    await cluster.startRedis();
    await until(async () => (await health(n1)) === 200 && (await health(n2)) === 200, { timeout: 10_000, what: "/health 200 again" });
    const b = await open(n2, "bob-4", "outage");
    await b.synced;
    assert.equal(text(b), "written during the outage. ", "stored during the outage");
    // Both nodes subscribed again: writes cross in both directions.
    try {
      await until(async () => {
        b.doc.getMap("ping").set("from-b", Date.now());
        a.doc.getMap("ping").set("from-a", Date.now());
        await new Promise((r) => setTimeout(r, 100));
        return a.doc.getMap("ping").has("from-b") && b.doc.getMap("ping").has("from-a");
      }, { timeout: 20_000, what: "relays across nodes after Redis came back" });
    } catch (err) {
      const logs = [n1, n2].map((n) => `${n.name}: ${n.output().split("\n").filter((l) => l.includes("cluster")).slice(-12).join("\n")}`);
      err.message += ` (a has from-b: ${a.doc.getMap("ping").has("from-b")}, b has from-a: ${b.doc.getMap("ping").has("from-a")})\n${logs.join("\n")}`;
      throw err;
    }
  });
});
