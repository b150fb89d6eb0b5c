// Makes docs/demo.png: two people in the demo, the picture taken from Ann's page.
//   node tests/browser/screenshot.mjs
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchBrowser, startServe } from "./browser.mjs";

const out = fileURLToPath(new URL("../../docs/demo.png", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "teleportal-shot-"));
const [browser, server] = await Promise.all([launchBrowser(), startServe({ TELEPORTAL_DB: join(dir, "shot.sqlite") })]);
try {
  const open = async (name) => {
    const page = await (await browser.newContext({ viewport: { width: 1100, height: 560 } })).newPage();
    await page.goto(`${server.http}/?name=${name}#welcome`);
    await page.waitForFunction(() => window.teleportalDemo?.document?.isSynced === true, null, { timeout: 10_000 });
    return page;
  };
  const ann = await open("Ann");
  const grace = await open("Grace");
  await ann.click(".cm-content");
  await ann.keyboard.type("Welcome to the Teleportal demo.\n\nEveryone who opens this page edits the same text;\n" +
    "pick another document at the top, or open a new one.\n\n");
  await grace.click(".cm-content");
  await grace.keyboard.press("Control+End");
  await grace.keyboard.type("Grace: cursors and names come from Y.js awareness.");
  await ann.waitForFunction(() => document.querySelector(".cm-ySelectionInfo")?.textContent === "Grace", null, { timeout: 5000 });
  await ann.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
