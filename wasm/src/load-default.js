// Loads the wasm module from disk next to this package (Node, Bun, Deno).
import createCore from "../dist/teleportal_core.mjs";
import { readFile } from "node:fs/promises";

export async function instantiate(options) {
  const bytes = await readFile(new URL("../dist/teleportal_core.wasm", import.meta.url));
  const module = await WebAssembly.compile(bytes);
  return createCore({
    ...options,
    locateFile: (p) => p,
    instantiateWasm(imports, done) {
      WebAssembly.instantiate(module, imports).then((instance) => done(instance, module));
      return {};
    },
  });
}
