// workerd refuses WebAssembly.compile(bytes): the bundler hands us a compiled module instead.
import createCore from "../dist/teleportal_core.mjs";
import wasmModule from "../dist/teleportal_core.wasm";

export async function instantiate(options) {
  return createCore({
    ...options,
    locateFile: (p) => p,
    instantiateWasm(imports, done) {
      WebAssembly.instantiate(wasmModule, imports).then((instance) => done(instance, wasmModule));
      return {};
    },
  });
}
