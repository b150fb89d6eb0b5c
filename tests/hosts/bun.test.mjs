import { fileURLToPath } from "node:url";
import { defineHostSuite } from "./suite.mjs";
import { startProcessHost } from "./process-host.mjs";

const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
const app = fileURLToPath(new URL("./fixtures/bun-app.js", import.meta.url));
defineHostSuite("Bun.serve host", () => startProcessHost(bun, [app]));
