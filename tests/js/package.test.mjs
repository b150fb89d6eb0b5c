// The package as users get it: `npm pack` of wasm/, installed into an empty project, imported from
// Node and Bun by its public entry points (no access to this checkout's files).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { installPackedPackage } from "../support/package.mjs";

const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
/** @type {ReturnType<typeof installPackedPackage>} */
let project;
let dir;

const script = `
import { createTokenManager } from "teleportal/token";
import { decodeMessage, getMessageId } from "teleportal/protocol";
import { mergeUpdatesV2 } from "teleportal/updates";
import { getWebsocketHandlers } from "teleportal/websocket-server";
import { Server } from "teleportal/server";
const tm = createTokenManager({ secret: "s" });
const token = await tm.generateToken("u", "r", []);
const v = await tm.verifyToken(token);
const frame = Uint8Array.from(Buffer.from("594a530103646f6300000003010102", "hex"));
const empty = Uint8Array.from([0,0,0,0,0,0,1,0,0,0,0,0,0]);
const h = getWebsocketHandlers({ onConnect() {} });
console.log(JSON.stringify({
  valid: v.valid, user: v.payload.userId, id: getMessageId(frame), type: decodeMessage(frame).payload.type,
  merged: mergeUpdatesV2([empty, empty]).length, server: typeof new Server().createClient, bun: typeof h.websocket.open,
}));
`;

before(() => {
  project = installPackedPackage();
  dir = project.dir;
  writeFileSync(join(dir, "main.mjs"), script);
});
after(() => project?.remove());

const expected = { valid: true, user: "u", id: "65c81c1a189f6c90", type: "sync-step-1", merged: 13, server: "function", bun: "function" };

test("package: installed tarball works in Node", () => {
  const out = execFileSync(process.execPath, ["main.mjs"], { cwd: dir, encoding: "utf8" });
  assert.deepEqual(JSON.parse(out), expected);
});

test("package: installed tarball works in Bun", () => {
  const out = execFileSync(bun, ["main.mjs"], { cwd: dir, encoding: "utf8" });
  assert.deepEqual(JSON.parse(out), expected);
});
