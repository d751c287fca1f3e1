#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance,
# pinned in package-lock.json) against mcp-redis over Streamable HTTP.
#
#   npm ci --prefix e2e/node          # once
#   e2e/node/conformance.sh [--allow-own-origin]
#
# It builds the binary, serves it on a free loopback port against the Redis
# at MCP_REDIS_TEST_URL (default redis://127.0.0.1:6379/0) under a key
# prefix of its own, waits for /healthz, runs the server scenarios with the
# not-applicable ones listed in conformance-expected-failures.yml, stops the
# server and deletes every key it wrote. Exits non-zero if any applicable
# scenario fails, if a listed one starts passing (a stale baseline), or if a
# scenario this project requires did not run.
#
# The server runs in its default configuration, without bearer tokens (the
# suite's client cannot send one, and its DNS-rebinding scenario targets
# unauthenticated loopback servers). --allow-own-origin sets
# http.allowed_origins to the server's own origin, http://127.0.0.1:PORT.
set -euo pipefail

allow_own_origin=false
for arg in "$@"; do
  case "$arg" in
    --allow-own-origin) allow_own_origin=true ;;
    -h | --help)
      sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "conformance.sh: unknown argument $arg" >&2
      exit 2
      ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
redis_url="${MCP_REDIS_TEST_URL:-redis://127.0.0.1:6379/0}"
expected="$here/conformance-expected-failures.yml"
# Scenarios that apply to mcp-redis: each must have run and passed.
required=(server-initialize ping tools-list server-sse-multiple-streams dns-rebinding-protection
  completion-complete resources-list resources-subscribe resources-unsubscribe prompts-list)

if [[ ! -f "$here/node_modules/@modelcontextprotocol/conformance/package.json" ]]; then
  echo "conformance.sh: $here/node_modules is missing: run \`npm ci --prefix e2e/node\` from the repository root first" >&2
  exit 1
fi
for tool in go node redis-cli; do
  command -v "$tool" >/dev/null || { echo "conformance.sh: $tool is not on PATH" >&2; exit 1; }
done
if ! redis-cli -u "$redis_url" PING >/dev/null 2>&1; then
  echo "conformance.sh: no Redis answers at $redis_url (set MCP_REDIS_TEST_URL)" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/mcp-redis-conformance.XXXXXX")"
prefix="conf:$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n'):"
server_pid=""

purge() {
  local pattern
  for pattern in "${prefix}*" "{${prefix}*"; do
    redis-cli -u "$redis_url" --scan --pattern "$pattern" |
      xargs -r -d '\n' -n 500 redis-cli -u "$redis_url" DEL >/dev/null
  done
}

stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    local i
    for i in $(seq 1 150); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "conformance.sh: the server did not exit within 15s of SIGTERM; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

cleanup() {
  local rc=$?
  stop_server
  purge || echo "conformance.sh: could not delete the keys under $prefix" >&2
  if [[ $rc -eq 0 ]]; then
    rm -rf "$work"
  else
    echo "conformance.sh: results and the server log are kept in $work" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== building mcp-redis"
(cd "$root" && go build -o "$work/mcp-redis" ./cmd/mcp-redis)

port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"

# Only what this script sets configures the server: no MCP_REDIS_* from the
# caller's environment, and an empty working directory (no config.yaml).
server_env=()
while IFS= read -r name; do server_env+=(-u "$name"); done < <(compgen -e | grep '^MCP_REDIS_' || true)
if $allow_own_origin; then
  server_env+=("MCP_REDIS_HTTP_ALLOWED_ORIGINS=$base")
fi
# Its audit signing key goes in the run's own directory, not the user's.
server_env+=("MCP_REDIS_AUDIT_SIGNING_KEY_FILE=$work/run/audit-signing.key")

echo "== serving on $base/mcp (prefix $prefix, Redis $redis_url)"
mkdir -p "$work/run"
(cd "$work/run" && exec env "${server_env[@]}" "$work/mcp-redis" serve --transport http \
  --listen "127.0.0.1:$port" --redis-url "$redis_url" --prefix "$prefix") >"$work/server.log" 2>&1 &
server_pid=$!

for i in $(seq 1 150); do
  if curl -fsS "$base/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "conformance.sh: the server exited before serving:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  if [[ $i -eq 150 ]]; then
    echo "conformance.sh: no /healthz within 15s:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

echo "== running the conformance suite"
suite_rc=0
(cd "$here" && NO_COLOR=1 timeout 600 node --import ./node20/register.mjs \
  node_modules/@modelcontextprotocol/conformance/dist/index.js server \
  --url "$base/mcp" --expected-failures "$expected" --output-dir "$work/results") \
  >"$work/conformance.log" 2>&1 || suite_rc=$?
# The suite's own summary counts the not-applicable scenarios as failed
# (marked red) before it says they were expected: print the scenarios that
# apply, each with its verdict, then the rest with why they do not apply.
# The whole log stays in $work/conformance.log (kept when the run fails).
node --input-type=module - "$work/conformance.log" "$expected" <<'EOF'
import { readFileSync } from "node:fs";
const [log, expected] = process.argv.slice(2);
const reasons = new Map();
for (const line of readFileSync(expected, "utf8").split("\n")) {
  const m = line.match(/^\s*-\s*([\w-]+)\s*(?:#\s*(.*))?$/);
  if (m) reasons.set(m[1], m[2] ?? "");
}
const text = readFileSync(log, "utf8").replace(/\x1b\[[0-9;]*m/g, "");
const at = text.indexOf("=== SUMMARY ===");
const summary = at < 0 ? "" : text.slice(at);
const applies = [];
const skipped = [];
for (const line of summary.split("\n")) {
  const m = line.match(/^[✓✗]\s+([\w-]+):\s+(\d+) passed, (\d+) failed/);
  if (!m) continue;
  const [, name, passed, failed] = m;
  if (reasons.has(name)) skipped.push(name);
  else applies.push(`  ${failed === "0" && passed !== "0" ? "pass" : "FAIL"}  ${name} (${passed} checks passed, ${failed} failed)`);
}
if (at < 0) console.log(text.split("\n").slice(-30).join("\n"));
console.log(`applicable scenarios (${applies.length}):`);
for (const l of applies) console.log(l);
console.log(`not applicable to mcp-redis (${skipped.length}; conformance-expected-failures.yml gives each reason):`);
for (const name of skipped) console.log(`  n/a   ${name}: ${reasons.get(name)}`);
// What the suite says of the baseline, unless it is the usual all-clear.
const verdict = summary.slice(summary.indexOf("Expected failures")).split("\n").filter((l) => l && !/^\s*~ /.test(l) && !/^Expected failures/.test(l));
if (verdict.some((l) => !/Baseline check passed/.test(l))) console.log(verdict.join("\n"));
EOF

stop_server
if grep -q "level=ERROR" "$work/server.log"; then
  echo "conformance.sh: the server logged errors:" >&2
  grep "level=ERROR" "$work/server.log" >&2
fi

# Each required scenario must have run and passed every check.
missing_rc=0
node --input-type=module - "$work/results" "${required[@]}" <<'EOF' || missing_rc=$?
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
const [dir, ...required] = process.argv.slice(2);
const runs = readdirSync(dir);
let bad = 0;
for (const name of required) {
  const run = runs.find((r) => new RegExp(`^server-${name}-\\d{4}-`).test(r));
  if (!run) {
    console.error(`required scenario ${name} did not run`);
    bad++;
    continue;
  }
  const checks = JSON.parse(readFileSync(join(dir, run, "checks.json"), "utf8"));
  const failing = checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING");
  const passed = checks.filter((c) => c.status === "SUCCESS").length;
  if (failing.length > 0 || passed === 0) {
    bad++;
    console.error(`required scenario ${name}: ${passed} passed, ${failing.length} failed`);
    for (const c of failing) {
      console.error(`  ${c.status} ${c.id}: ${c.errorMessage ?? ""}`);
      if (c.details) console.error(`    details: ${JSON.stringify(c.details)}`);
    }
  }
}
console.log(`required scenarios: ${required.length - bad} passed, ${bad} failed`);
process.exit(bad > 0 ? 1 : 0);
EOF

if [[ $suite_rc -ne 0 || $missing_rc -ne 0 ]]; then
  echo "conformance.sh: FAILED (suite exit $suite_rc; required scenarios exit $missing_rc)" >&2
  exit 1
fi
echo "conformance.sh: every applicable scenario passed"
