// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, offline-safe flags,
// and scripts/serve's server (host-bun/serve.js) in a child process.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
const serveJs = fileURLToPath(new URL("../../host-bun/serve.js", import.meta.url));

/** Playwright gives every launch a fresh temporary --user-data-dir. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 20_000,
  });
}

/**
 * Starts host-bun/serve.js; resolves once it printed its banner.
 * @returns {Promise<{child, port: number, http: string, output(): string, stop(signal?): Promise<number>}>}
 */
export async function startServe(env = {}, { timeout = 15_000 } = {}) {
  // Never the default ./data/teleportal.sqlite: a test must not write into the checkout.
  const scratch = env.TELEPORTAL_DB ? null : mkdtempSync(join(tmpdir(), "teleportal-serve-"));
  const db = env.TELEPORTAL_DB ?? join(scratch, "serve.sqlite");
  const child = spawn(bun, [serveJs], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", TELEPORTAL_SECRET: "", TELEPORTAL_DEMO: "", ...env, TELEPORTAL_DB: db },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const banner = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve.js printed no banner in ${timeout} ms:\n${out}`)), timeout);
    const check = () => {
      const m = out.match(/listening on ws:\/\/([\d.]+):(\d+)\//);
      if (m && /Connect: /.test(out)) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on("data", check);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve.js exited with ${code}:\n${out}`));
    });
  });
  const port = Number(banner[2]);
  return {
    child,
    port,
    http: `http://127.0.0.1:${port}`,
    output: () => out,
    async stop(signal = "SIGTERM") {
      let code = child.exitCode;
      if (code === null) {
        child.kill(signal);
        [code] = await once(child, "exit");
      }
      if (scratch) rmSync(scratch, { recursive: true, force: true });
      return code;
    },
  };
}
