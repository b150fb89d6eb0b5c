// SIGKILL of one node during a write storm (tests/hosts/storm.mjs runClusterStorm): a Bun node and
// a Node node on one PostgreSQL and one Redis, killed in turn; writers fail over to the other.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runClusterStorm } from "../hosts/storm.mjs";
import { startCluster } from "./harness.mjs";

test("SIGKILL of a node in a write storm, 8 rounds (Bun and Node killed in turn): writers fail over, every acknowledged update is there", { timeout: 90_000 }, async () => {
  const cluster = await startCluster(["bun", "node"]);
  try {
    const result = await runClusterStorm({ nodes: cluster.nodes, rounds: 8, log: (l) => console.log(`# ${l}`) });
    assert.deepEqual(result.lost, [], "acknowledged updates missing");
    assert.ok(result.acked > 200, `the storm wrote something (${result.acked} acknowledged of ${result.sent} sent)`);
    assert.equal(result.failedOver, 8 * 4, "every writer reconnected to the other node");
  } finally {
    await cluster.stop();
  }
});
