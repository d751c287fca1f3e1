// Authorizes the official MCP TypeScript SDK's client against mcp-redis as
// an OAuth 2.1 resource server, with the SDK's own OAuth support: a
// ClientCredentialsProvider as the transport's authProvider. The SDK takes
// the 401's WWW-Authenticate resource_metadata, reads the Protected
// Resource Metadata (RFC 9728), then the authorization server's metadata
// (RFC 8414), and asks its token endpoint for a token (client_credentials,
// with the RFC 8707 resource); nothing here sends a token by hand. Then it
// initializes, lists the tools and calls audit_log, and prints one JSON
// line: {ok, tools, result, failures}. Exits 1 when anything is off (the
// line is still printed, with "ok": false), 2 on bad usage.
//
//   node e2e/node/oauth.mjs --url http://127.0.0.1:PORT/mcp --client-id ID \
//        --client-secret SECRET --issuer http://127.0.0.1:AS_PORT --scope mcp:write
//
// The secret may also come from MCP_REDIS_CLIENT_SECRET (so that it is not
// on the command line); --issuer is the authorization server the
// credentials belong to: the SDK presents them to no other.

import { parseArgs } from "node:util";

import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

function usage(msg) {
  process.stderr.write(
    `${msg}\nusage: node oauth.mjs --url URL --client-id ID --client-secret SECRET --issuer URL [--scope SCOPE]\n`,
  );
  process.exit(2);
}

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      url: { type: "string" },
      "client-id": { type: "string" },
      "client-secret": { type: "string" },
      issuer: { type: "string" },
      scope: { type: "string" },
      timeout: { type: "string", default: "20000" },
    },
    strict: true,
  }));
} catch (err) {
  usage(err.message);
}
const secret = opts["client-secret"] ?? process.env.MCP_REDIS_CLIENT_SECRET ?? "";
if (!opts.url) usage("--url is required");
if (!opts["client-id"]) usage("--client-id is required");
if (!secret) usage("--client-secret (or MCP_REDIS_CLIENT_SECRET) is required");
if (!opts.issuer) usage("--issuer is required");
const timeout = Number(opts.timeout);

const report = { ok: false, tools: [], result: null, failures: [] };
const fail = (msg) => report.failures.push(msg);

function finish(code) {
  report.ok = code === 0 && report.failures.length === 0;
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(report.ok ? 0 : 1);
}

const provider = new ClientCredentialsProvider({
  clientId: opts["client-id"],
  clientSecret: secret,
  clientName: "mcp-redis-oauth-e2e",
  scope: opts.scope,
  expectedIssuer: opts.issuer,
});
const transport = new StreamableHTTPClientTransport(new URL(opts.url), { authProvider: provider });
const client = new Client({ name: "mcp-redis-oauth-e2e", version: "1.0.0" });

async function main() {
  // The first request goes without a token; the 401 starts the SDK's
  // discovery and token request, and the transport sends it again.
  await client.connect(transport, { timeout });
  if (!provider.tokens()?.access_token) {
    fail("connected, but the provider holds no access token: the server let an unauthenticated client in");
  }

  const listed = await client.listTools(undefined, { timeout });
  report.tools = listed.tools.map((t) => t.name).sort();

  const res = await client.callTool(
    { name: "audit_log", arguments: { module: "oauth-e2e", procedure: "sdk", status: "ok" } },
    undefined,
    { timeout },
  );
  if (res.isError) {
    fail(`audit_log is a tool error: ${(res.content ?? []).map((c) => c.text ?? "").join("")}`);
  } else if (!res.structuredContent) {
    fail("audit_log: no structuredContent");
  }
  report.result = res.structuredContent ?? null;

  if (transport.sessionId) {
    await transport.terminateSession();
  }
  await client.close();
}

const watchdog = setTimeout(() => {
  fail(`timed out after ${4 * timeout} ms`);
  finish(1);
}, 4 * timeout);
watchdog.unref();

main().then(
  () => finish(0),
  (err) => {
    fail(String(err?.stack ?? err));
    finish(1);
  },
);
