// Bundles the demo page (host-bun/demo/main.js) with esbuild into build/demo/app.js.
// Run by scripts/build; packages resolve from tests/node_modules, where setup installs them.
//   node host-bun/demo/build.mjs [--metafile]
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeFileSync } from "node:fs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const modules = `${root}tests/node_modules`;
const { build } = await import(pathToFileURL(createRequire(`${root}tests/package.json`).resolve("esbuild")).href);

// The provider (wasm/src) has its own dev copies of yjs, lib0 and y-protocols: resolve every
// import of them from tests/node_modules, so the page holds one Y.js shared with the editor binding.
const oneYjs = {
  name: "one-yjs",
  setup(b) {
    b.onResolve({ filter: /^(yjs|lib0|y-protocols)(\/.*)?$/ }, (args) =>
      args.pluginData === oneYjs ? undefined : b.resolve(args.path, { kind: args.kind, resolveDir: modules, pluginData: oneYjs }),
    );
  },
};

const result = await build({
  entryPoints: [`${root}host-bun/demo/main.js`],
  outfile: `${root}build/demo/app.js`,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  nodePaths: [modules],
  plugins: [oneYjs],
  metafile: process.argv.includes("--metafile"),
  logLevel: "warning",
});
if (result.metafile) writeFileSync(`${root}build/demo/meta.json`, JSON.stringify(result.metafile));
