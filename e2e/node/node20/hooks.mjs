// Module resolve hook registered by register.mjs (Node 20 only): the
// conformance package's imports of "fs" get fs-globsync.mjs instead.
const shim = new URL("./fs-globsync.mjs", import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (
    (specifier === "fs" || specifier === "node:fs") &&
    context.parentURL?.includes("/node_modules/@modelcontextprotocol/conformance/")
  ) {
    return { url: shim, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
