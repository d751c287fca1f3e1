// Writes the bundle's manifest.json: manifest.json beside this file with the
// server's version and the tools of schemas/ (the golden files of the
// tools' Go structs, so the list the install dialog shows is the list the
// server serves).
//
//   node manifest.mjs VERSION SCHEMAS_DIR OUT
//
// VERSION is semver without a leading v (MANIFEST.md: "version: Semantic
// version (semver)"); make mcpb passes the Makefile's VERSION without it.
//
// Why the template reads as it does:
//   - user_config reaches the server through env, not args: the host's
//     substitution (getMcpConfigForManifest in @anthropic-ai/mcpb) keeps
//     an args item that is exactly "${user_config.x}" as that literal text
//     when the value is empty, so an empty Redis URL would arrive as the
//     URL "${user_config.redis_url}"; in an env value it becomes "", which
//     the server reads as unset (the embedded Redis, the default prefix).
//     An empty --redis-url "" on the command line is an error instead.
//   - redis_url has the default "" so that the variable always exists;
//     without one an unset optional value stays a literal there too.
//   - platform_overrides is keyed by OS alone: darwin (the base command)
//     is one universal binary, linux runs mcp-redis.sh, which execs the
//     binary of `uname -m`, and win32 runs the amd64 binary, which
//     Windows 11 on Arm runs emulated.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [version, schemas, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node manifest.mjs VERSION SCHEMAS_DIR OUT");
  process.exit(2);
}
// semver.org's grammar, less its ban on leading zeros.
const semver = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;
if (!semver.test(version)) {
  console.error(`manifest.mjs: version ${JSON.stringify(version)} is not semver (MAJOR.MINOR.PATCH[-pre][+build], no leading v)`);
  process.exit(1);
}

const manifest = JSON.parse(readFileSync(new URL("manifest.json", import.meta.url), "utf8"));
manifest.version = version;
manifest.tools = readdirSync(schemas)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => {
    const tool = JSON.parse(readFileSync(join(schemas, f), "utf8"));
    return { name: tool.name, description: tool.annotations?.title ?? tool.description };
  });
if (manifest.tools.length === 0) {
  console.error(`manifest.mjs: no tool schemas in ${schemas}`);
  process.exit(1);
}
writeFileSync(out, JSON.stringify(manifest, null, 2) + "\n");
