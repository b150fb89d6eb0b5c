import { fileURLToPath } from "node:url";
import { defineHostSuite } from "./suite.mjs";
import { startProcessHost } from "./process-host.mjs";

const app = fileURLToPath(new URL("./fixtures/node-app.mjs", import.meta.url));
defineHostSuite("Node http + ws host", () => startProcessHost(process.execPath, [app]));
