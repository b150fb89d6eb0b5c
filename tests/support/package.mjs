// The package as users get it: `npm pack` of wasm/ installed into a new empty project (no access to
// this checkout's files from there).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const wasmDir = fileURLToPath(new URL("../../wasm", import.meta.url));

/** @returns {{ dir: string, remove(): void }} the project's directory */
export function installPackedPackage() {
  const dir = mkdtempSync(join(tmpdir(), "teleportal-pkg-"));
  try {
    const tgz = execFileSync("npm", ["pack", wasmDir, "--pack-destination", dir, "--silent"], { encoding: "utf8" }).trim().split("\n").pop() ?? "";
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefer-offline", join(dir, tgz)], { cwd: dir });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
