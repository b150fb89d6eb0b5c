// The public TypeScript types: the documentation's Bun and Node examples and a Worker type-check
// against wasm/types as users would compile them (tsc, strict); the storage backends and the cluster (JS, checkJs)
// against their contracts in wasm/types/storage.d.ts and cluster.d.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));
for (const config of ["tsconfig.json", "tsconfig.bun.json", "tsconfig.storage.json"]) {
  test(`types: ${config} compiles`, () => {
    const project = fileURLToPath(new URL(`../types/${config}`, import.meta.url));
    let output = "";
    try {
      execFileSync(process.execPath, [tsc, "-p", project], { encoding: "utf8" });
    } catch (err) {
      output = err.stdout || err.message;
    }
    assert.equal(output, "");
  });
}
