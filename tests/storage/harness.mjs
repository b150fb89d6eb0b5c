// Runs the contract (./contract.mjs) under node:test: in this process, or in another runtime (a Bun
// process, a Durable Object) whose results are reported case by case. Also spawns the fixtures.
import { describe, test, before, after } from "node:test";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { cases, runCase } from "./contract.mjs";

/** @typedef {import("./contract.mjs").Backend} Backend */
/** @typedef {import("./contract.mjs").CaseResult} CaseResult */

export const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
export const fixture = (/** @type {string} */ name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** @param {import("node:test").TestContext} t @param {CaseResult | undefined} result */
function report(t, result) {
  if (!result) throw new Error("the case did not run");
  if (result.status === "skip") t.skip("not applicable to this backend");
  if (result.status === "fail") throw new Error(result.error);
}

/**
 * One test per contract case against a backend opened in this process.
 * @param {string} label @param {() => Promise<Backend & { cleanup?(): unknown }>} setup
 */
export function defineContract(label, setup) {
  describe(label, () => {
    /** @type {Backend & { cleanup?(): unknown }} */
    let backend;
    before(async () => (backend = await setup()));
    after(() => backend?.cleanup?.());
    const run = `run-${process.pid}-${Date.now()}`;
    cases.forEach((c, i) => test(c.name, async (t) => report(t, await runCase(c, backend, `${run}/${i}/`))));
  });
}

/**
 * One test per contract case, reported from a run elsewhere.
 * @param {string} label @param {() => Promise<CaseResult[]>} runAll
 */
export function defineRemoteContract(label, runAll) {
  describe(label, () => {
    /** @type {Map<string, CaseResult>} */
    let results;
    before(async () => (results = new Map((await runAll()).map((r) => [r.name, r]))));
    for (const c of cases) test(c.name, (t) => report(t, results.get(c.name)));
  });
}

/**
 * Runs a fixture under `command` and resolves with the JSON of its last output line; rejects when it
 * fails or takes longer than `timeoutMs` (then it is killed).
 * @param {string} command @param {string[]} args @returns {Promise<any>}
 */
export function runFixture(command, args, { timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0) return reject(new Error(`${args.join(" ")} exited with ${code ?? signal}:\n${err}${out}`.slice(0, 4000)));
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Error(`${args.join(" ")} printed no JSON:\n${err}${out}`.slice(0, 4000)));
      }
    });
  });
}
