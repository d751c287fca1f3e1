// Drives mcp-redis's MCP resources with the official MCP TypeScript SDK's
// Client: list the resources and templates, subscribe to a stream, append
// to it, wait for notifications/resources/updated, read the stream back,
// unsubscribe. Prints one JSON line; exits 1 when anything is off (the
// line is still printed, with "ok": false and the failures), 2 on bad usage.
//
//   node e2e/node/resources.mjs --url http://127.0.0.1:PORT/mcp --transport streamable|sse [--token TOKEN]

import { parseArgs } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      url: { type: "string" },
      transport: { type: "string", default: "streamable" },
      token: { type: "string" },
    },
    strict: true,
  }));
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
if (!opts.url || !["streamable", "sse"].includes(opts.transport)) {
  process.stderr.write("usage: node resources.mjs --url URL --transport streamable|sse [--token TOKEN]\n");
  process.exit(2);
}

const STREAM = "mcp-redis://streams/workflow_events";
const report = { ok: false, transport: opts.transport, resources: [], templates: [], updated: [], read: null, failures: [] };
const fail = (msg) => report.failures.push(msg);
function finish() {
  report.ok = report.failures.length === 0;
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(report.ok ? 0 : 1);
}

const token = opts.token ?? process.env.MCP_REDIS_TOKEN ?? "";
const requestInit = token ? { headers: { Authorization: `Bearer ${token}` } } : undefined;
const url = new URL(opts.url);
const transport =
  opts.transport === "sse" ? new SSEClientTransport(url, { requestInit }) : new StreamableHTTPClientTransport(url, { requestInit });
const client = new Client({ name: "mcp-redis-node-resources", version: "1.0.0" });

let told;
const updated = new Promise((resolve) => (told = resolve));
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
  report.updated.push(n.params.uri);
  if (n.params.uri === STREAM) told();
});

const within = (p, ms, what) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms}ms`)), ms))]);

try {
  await client.connect(transport);
  if (!client.getServerCapabilities()?.resources?.subscribe) fail("the server does not declare resources.subscribe");
  report.resources = (await client.listResources()).resources.map((r) => r.uri).sort();
  report.templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate).sort();
  await client.subscribeResource({ uri: STREAM });
  // The Streamable HTTP transport opens its GET stream in the background.
  await new Promise((r) => setTimeout(r, 200));
  const res = await client.callTool({
    name: "emit_workflow_event",
    arguments: { workflow_id: "wf-node", phase: "plan", event_type: "phase_started" },
  });
  const entryID = res.structuredContent?.entry_id;
  await within(updated, 5000, "notifications/resources/updated");
  const read = await client.readResource({ uri: STREAM });
  const body = JSON.parse(read.contents[0].text);
  report.read = { mimeType: read.contents[0].mimeType, newest: body.entries?.[0]?.id ?? null };
  if (read.contents[0].mimeType !== "application/json") fail(`mimeType ${read.contents[0].mimeType}`);
  if (report.read.newest !== entryID) fail(`the stream's newest entry is ${report.read.newest}, not the one appended (${entryID})`);
  await client.unsubscribeResource({ uri: STREAM });
} catch (err) {
  fail(String(err?.stack ?? err));
}
try {
  await client.close();
} catch {}
finish();
