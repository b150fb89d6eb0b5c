// Real services for tests, on 127.0.0.1 only: Debian's PostgreSQL 15 and redis-server, each on a free
// port with a throwaway data directory, run as child processes of the test (stop() ends them by pid
// and removes the directory; a test process that exits without calling stop() still kills them).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, chownSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const PG_BIN = "/usr/lib/postgresql/15/bin";
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** PostgreSQL refuses to run as root: then its processes run as the `postgres` user. */
function postgresUser() {
  if (process.getuid?.() !== 0) return {};
  const [uid, gid] = ["-u", "-g"].map((flag) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" })));
  return { uid, gid };
}

/**
 * Spawns a server in the foreground and resolves once `ready` appears in its output.
 * @param {string} command @param {string[]} args @param {RegExp} ready
 * @param {{ uid?: number, gid?: number }} user @param {string} dir removed on stop
 */
async function startChild(command, args, ready, user, dir) {
  const child = spawn(command, args, { ...user, cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
  const onExit = () => child.kill("SIGKILL");
  process.once("exit", onExit);
  let output = "";
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${command} not ready after ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
      const check = (/** @type {Buffer} */ chunk) => {
        output += chunk;
        if (ready.test(output)) clearTimeout(timer), resolve(undefined);
      };
      child.stdout.on("data", check);
      child.stderr.on("data", check);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${command} exited (${code ?? signal}) before it was ready:\n${output}`));
      });
    });
  } catch (err) {
    child.kill("SIGKILL");
    process.off("exit", onExit);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    pid: child.pid,
    output: () => output,
    /** Ends the server (signal, then SIGKILL after a bounded wait) and removes its directory. */
    async stop(/** @type {NodeJS.Signals} */ signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      process.off("exit", onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * PostgreSQL 15: initdb into a fresh directory (trust auth, user `postgres`), the server in the
 * foreground on 127.0.0.1:<free port> (no other listeners), and a database.
 * @returns {Promise<{ url: string, port: number, stop(): Promise<void> }>}
 */
export async function startPostgres({ database = "teleportal" } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tp-postgres-"));
  const user = postgresUser();
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid);
  const data = join(dir, "data");
  execFileSync(`${PG_BIN}/initdb`, ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions"],
    { ...user, cwd: dir, stdio: "pipe", env: { ...process.env, LC_ALL: "C" } });
  const port = await freePort();
  const server = await startChild(`${PG_BIN}/postgres`,
    ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1"],
    /database system is ready to accept connections/, user, dir);
  try {
    execFileSync(`${PG_BIN}/createdb`, ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", database], { stdio: "pipe" });
  } catch (err) {
    await server.stop("SIGQUIT");
    throw err;
  }
  // SIGQUIT: immediate shutdown (the directory is thrown away anyway).
  return { url: `postgres://postgres@127.0.0.1:${port}/${database}`, port, stop: () => server.stop("SIGQUIT") };
}

/**
 * redis-server on 127.0.0.1:<free port> (or `port`: to start one again where it was), no persistence.
 * @returns {Promise<{ url: string, port: number, stop(): Promise<void> }>}
 */
export async function startRedis({ port = 0 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tp-redis-"));
  port ||= await freePort();
  const server = await startChild("redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    /Ready to accept connections/, {}, dir);
  return { url: `redis://127.0.0.1:${port}`, port, stop: () => server.stop() };
}
