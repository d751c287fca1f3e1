// node:fs with the globSync that Node 20 lacks (fs.globSync is Node 22+).
// The conformance package only calls it in `tier-check`, which is not used
// here, so calling it says so instead of guessing at glob semantics.
export * from "node:fs";
export { default } from "node:fs";

export function globSync() {
  throw new Error("fs.globSync needs Node 22 or later (conformance tier-check is not supported on Node 20)");
}
