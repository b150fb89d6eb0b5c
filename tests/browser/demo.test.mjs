// The demo page (host-bun/demo) in headless Chromium against scripts/serve's server: concurrent
// typing converges, cursors and names come through awareness, the document picker switches
// documents, and a page survives a server restart with its text kept by durable storage.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchBrowser, startServe } from "./browser.mjs";

const WAIT = { timeout: 10_000 };
let browser;
let server;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "teleportal-browser-"));
  [browser, server] = await Promise.all([launchBrowser(), startServe({ TELEPORTAL_DB: join(dir, "demo.sqlite") })]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let docs = 0;
const freshDocument = () => `doc-${Date.now()}-${docs++}`;

/** A page of the demo in its own browser context (its own storage, like another person). */
async function openPage(name, document, base = server.http) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(err.message));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  await page.goto(`${base}/?name=${encodeURIComponent(name)}#${document}`);
  await page.waitForFunction(() => window.teleportalDemo?.document?.isSynced === true, null, WAIT);
  return { page, problems, close: () => context.close() };
}

const editorText = (page) => page.evaluate(() => window.teleportalDemo.editorText());
const statusOf = (page) => page.locator("#status").getAttribute("data-status");

test("two pages type concurrently and converge", async () => {
  const doc = freshDocument();
  const [ann, bob] = await Promise.all([openPage("Ann", doc), openPage("Bob", doc)]);
  await Promise.all([ann.page.click(".cm-content"), bob.page.click(".cm-content")]);
  await Promise.all([
    ann.page.keyboard.type("Ann types this line. ", { delay: 15 }),
    bob.page.keyboard.type("Bob types another one. ", { delay: 15 }),
  ]);
  await ann.page.waitForFunction(
    (other) => window.teleportalDemo.editorText().length === other,
    "Ann types this line. Bob types another one. ".length,
    WAIT,
  );
  await bob.page.waitForFunction((n) => window.teleportalDemo.editorText().length === n, "Ann types this line. Bob types another one. ".length, WAIT);
  const [a, b] = [await editorText(ann.page), await editorText(bob.page)];
  assert.equal(a, b, "both editors show the same text");
  assert.ok(a.includes("Ann types this line. "), a);
  assert.ok(b.includes("Bob types another one. "), b);
  assert.equal(await ann.page.textContent("#sync"), `"${doc}" is in sync`);
  assert.deepEqual([...ann.problems, ...bob.problems], []);
  await Promise.all([ann.close(), bob.close()]);
});

test("a page sees the other's cursor and name, and who is here", async () => {
  const doc = freshDocument();
  const ann = await openPage("Ann", doc);
  const bob = await openPage("Bob", doc);
  await ann.page.click(".cm-content");
  await ann.page.keyboard.type("cursor here");
  const caret = bob.page.locator(".cm-ySelectionCaret .cm-ySelectionInfo", { hasText: "Ann" });
  await caret.waitFor(WAIT);
  assert.equal(await caret.textContent(), "Ann");
  await bob.page.locator("#users li", { hasText: "Ann" }).waitFor(WAIT);
  const names = (await bob.page.locator("#users li").allTextContents()).sort();
  assert.deepEqual(names, ["Ann", "Bob (you)"]);
  // Ann leaves: her cursor and her name disappear from Bob's page (presence-leave).
  await ann.close();
  await bob.page.locator(".cm-ySelectionInfo", { hasText: "Ann" }).waitFor({ state: "detached", ...WAIT });
  assert.deepEqual(await bob.page.locator("#users li").allTextContents(), ["Bob (you)"]);
  await bob.close();
});

test("the document picker switches documents on the same connection", async () => {
  const [first, second] = [freshDocument(), freshDocument()];
  const ann = await openPage("Ann", first);
  await ann.page.click(".cm-content");
  await ann.page.keyboard.type("only in the first document");
  await ann.page.fill("#new-doc", second);
  await ann.page.press("#new-doc", "Enter");
  await ann.page.waitForFunction((d) => window.teleportalDemo.document.name === d && window.teleportalDemo.document.isSynced, second, WAIT);
  assert.equal(await editorText(ann.page), "");
  assert.equal(await ann.page.inputValue("#doc"), second);
  await ann.page.selectOption("#doc", first);
  await ann.page.waitForFunction((d) => window.teleportalDemo.editorText() === d, "only in the first document", WAIT);
  assert.equal(await ann.page.evaluate(() => window.teleportalDemo.provider.documents.size), 1);
  assert.match(ann.page.url(), new RegExp(`#${first}$`));
  await ann.close();
});

// The server keeps documents in SQLite at TELEPORTAL_DB. Ann's document is held by nobody while
// the server restarts, so only storage can bring it back; Carol's page stays open and reconnects.
test("a page reconnects after the server restarts and its text is still there (durable storage)", async () => {
  const [annDoc, carolDoc] = [freshDocument(), freshDocument()];
  const [ann, carol] = await Promise.all([openPage("Ann", annDoc), openPage("Carol", carolDoc)]);
  for (const [p, text] of [[ann, "Ann wrote this before the restart"], [carol, "Carol keeps her page open"]]) {
    await p.page.click(".cm-content");
    await p.page.keyboard.type(text);
    await p.page.evaluate(() => window.teleportalDemo.provider.flush({ timeout: 5000 })); // acked = stored
  }
  await ann.close();
  const port = server.port;
  assert.equal(await server.stop("SIGTERM"), 0);
  await carol.page.waitForFunction(() => document.getElementById("status").dataset.status !== "connected", null, WAIT);
  assert.match(await carol.page.textContent("#status"), /^(offline, retrying|connecting…)$/);
  // Same port and database file; a new development secret, so the page needs (and gets) a new token.
  server = await startServe({ PORT: String(port), TELEPORTAL_DB: join(dir, "demo.sqlite") });
  await carol.page.waitForFunction(() => window.teleportalDemo.document.isSynced, null, { timeout: 20_000 });
  assert.equal(await statusOf(carol.page), "connected");
  assert.equal(await carol.page.textContent("#status"), "connected");
  assert.equal(await editorText(carol.page), "Carol keeps her page open");
  const bob = await openPage("Bob", annDoc);
  assert.equal(await editorText(bob.page), "Ann wrote this before the restart", "restored from storage");
  await carol.page.keyboard.type(", and types on");
  const peer = await openPage("Dan", carolDoc);
  await peer.page.waitForFunction((t) => window.teleportalDemo.editorText() === t, "Carol keeps her page open, and types on", WAIT);
  await Promise.all([bob.close(), carol.close(), peer.close()]);
});
