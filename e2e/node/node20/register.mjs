// Loaded with `node --import ./node20/register.mjs`: lets
// @modelcontextprotocol/conformance 0.1.16 load on Node 20.
//
// Its bundle (dist/index.js) begins with
//   import { ..., globSync } from "fs";
// and fs.globSync only exists from Node 22, so on Node 20 the module fails
// to link ("The requested module 'fs' does not provide an export named
// 'globSync'") before any command runs. globSync is called only by the
// `tier-check` subcommand, which this project does not use. On Node 20 the
// hook below resolves that one package's "fs" import to fs-globsync.mjs,
// which is node:fs plus a globSync. On a Node that has fs.globSync this
// file registers nothing.
import fs from "node:fs";
import { register } from "node:module";

if (typeof fs.globSync !== "function") {
  register("./hooks.mjs", import.meta.url);
}
