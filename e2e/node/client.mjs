// Drives mcp-redis over HTTP with the official MCP TypeScript SDK's Client:
// connect, list the tools, call every one with valid arguments, and print
// one JSON line with what came back. Exits 1 when anything is off (the line
// is still printed, with "ok": false and the failures), 2 on bad usage.
//
//   node e2e/node/client.mjs --url http://127.0.0.1:PORT/mcp --transport streamable \
//        --prefix P [--token TOKEN] [--id UNIQUE]
//   node e2e/node/client.mjs --url http://127.0.0.1:PORT/sse --transport sse ...
//
// The token may also come from MCP_REDIS_TOKEN. --prefix is the server's
// key prefix: the client checks that every write names its stream under it.
// --id makes every id the client sends unique (random when absent); the
// line carries it, so whoever ran the client can find the writes in Redis.

import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const EXPECTED_TOOLS = [
  "ack_events",
  "acquire_lock",
  "append_batch",
  "audit_log",
  "check_rate",
  "claim_events",
  "emit_workflow_event",
  "extend_lock",
  "get_context",
  "publish_ccwj_delta",
  "read_stream",
  "release_lock",
  "show_dashboard",
  "stream_info",
  "submit_feedback",
  "verify_audit",
];

function usage(msg) {
  process.stderr.write(
    `${msg}\nusage: node client.mjs --url URL --transport streamable|sse --prefix PREFIX [--token TOKEN] [--id ID]\n`,
  );
  process.exit(2);
}

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      url: { type: "string" },
      transport: { type: "string", default: "streamable" },
      token: { type: "string" },
      prefix: { type: "string" },
      id: { type: "string" },
      timeout: { type: "string", default: "20000" },
    },
    strict: true,
  }));
} catch (err) {
  usage(err.message);
}
if (!opts.url) usage("--url is required");
if (opts.prefix === undefined) usage("--prefix is required");
if (!["streamable", "sse"].includes(opts.transport)) usage(`--transport ${opts.transport}: want streamable or sse`);

const token = opts.token ?? process.env.MCP_REDIS_TOKEN ?? "";
const prefix = opts.prefix;
const id = opts.id ?? `node-${randomBytes(6).toString("hex")}`;
const timeout = Number(opts.timeout);

const report = {
  ok: false,
  transport: opts.transport,
  id,
  server: null,
  protocol_version: null,
  tools: [],
  calls: [],
  failures: [],
};
const fail = (msg) => report.failures.push(msg);

function finish(code) {
  report.ok = code === 0 && report.failures.length === 0;
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(report.ok ? 0 : 1);
}

const requestInit = token ? { headers: { Authorization: `Bearer ${token}` } } : undefined;
const url = new URL(opts.url);
const transport =
  opts.transport === "sse"
    ? new SSEClientTransport(url, { requestInit })
    : new StreamableHTTPClientTransport(url, { requestInit });
const client = new Client({ name: "mcp-redis-node-e2e", version: "1.0.0" });

async function call(name, args) {
  const entry = { tool: name, arguments: args, isError: null, structuredContent: null };
  report.calls.push(entry);
  let res;
  try {
    res = await client.callTool({ name, arguments: args }, undefined, { timeout });
  } catch (err) {
    entry.error = String(err?.message ?? err);
    fail(`${name}: ${entry.error}`);
    return null;
  }
  entry.isError = res.isError === true;
  entry.structuredContent = res.structuredContent ?? null;
  if (entry.isError) {
    const text = (res.content ?? []).map((c) => c.text ?? "").join("");
    entry.error = text;
    fail(`${name} is a tool error: ${text}`);
    return null;
  }
  if (!res.structuredContent) {
    fail(`${name}: no structuredContent`);
    return null;
  }
  // The text block carries the same JSON as structuredContent.
  const text = (res.content ?? []).find((c) => c.type === "text")?.text;
  try {
    if (JSON.stringify(JSON.parse(text)) !== JSON.stringify(res.structuredContent)) {
      fail(`${name}: text content differs from structuredContent`);
    }
  } catch {
    fail(`${name}: text content is not the structured JSON: ${text}`);
  }
  return res.structuredContent;
}

function expect(cond, msg) {
  if (!cond) fail(msg);
}

// A write answers with its stream key (under the prefix), a fresh entry id,
// the id the caller gave, and duplicate: false.
function expectWrite(tool, out, stream, idField, idValue) {
  if (!out) return;
  expect(out.stream === prefix + stream, `${tool}: stream ${out.stream}, want ${prefix + stream}`);
  expect(/^\d+-\d+$/.test(out.entry_id ?? ""), `${tool}: entry_id ${out.entry_id}`);
  expect(out[idField] === idValue, `${tool}: ${idField} ${out[idField]}, want ${idValue}`);
  expect(out.duplicate === false, `${tool}: duplicate ${out.duplicate}`);
  expect(!Number.isNaN(Date.parse(out.timestamp)), `${tool}: timestamp ${out.timestamp}`);
}

async function main() {
  await client.connect(transport);
  report.server = client.getServerVersion() ?? null;
  report.protocol_version = transport.protocolVersion ?? null;
  const caps = client.getServerCapabilities() ?? {};
  expect(caps.tools !== undefined, `server capabilities lack tools: ${JSON.stringify(caps)}`);

  const { tools } = await client.listTools(undefined, { timeout });
  report.tools = tools.map((t) => t.name).sort();
  expect(
    JSON.stringify(report.tools) === JSON.stringify(EXPECTED_TOOLS),
    `tools/list: ${report.tools.length} tools ${report.tools.join(",")}, want ${EXPECTED_TOOLS.join(",")}`,
  );
  for (const t of tools) {
    expect(t.outputSchema?.type === "object", `${t.name}: no object outputSchema`);
    const a = t.annotations ?? {};
    for (const hint of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"]) {
      expect(typeof a[hint] === "boolean", `${t.name}: annotation ${hint} not stated`);
    }
  }

  const wf = `${id}-wf`;
  const session = `${id}-session`;
  const user = `${id}-user`;

  let out = await call("audit_log", {
    module: "node-e2e",
    procedure: "client.mjs",
    status: "ok",
    inputs: { transport: opts.transport, n: [1, 2.5, true] },
    outputs: { ok: true },
    session_id: session,
    workflow_id: wf,
    user_id: user,
    rationale: "the official SDK calls every tool",
    log_id: `${id}-log`,
  });
  expectWrite("audit_log", out, "audit_log_stream", "log_id", `${id}-log`);

  const value = [{ step: "fetch" }, "store", 3];
  out = await call("publish_ccwj_delta", {
    workflow_id: wf,
    phase_id: "plan",
    field: "steps",
    value,
    event_id: `${id}-delta`,
  });
  expectWrite("publish_ccwj_delta", out, "ccwj_update_stream", "event_id", `${id}-delta`);

  out = await call("submit_feedback", {
    feedback: "good plan",
    session_id: session,
    user_id: user,
    module: "node-e2e",
    procedure: "client.mjs",
    event_id: `${id}-feedback`,
  });
  expectWrite("submit_feedback", out, "user_feedback", "event_id", `${id}-feedback`);

  out = await call("emit_workflow_event", {
    workflow_id: wf,
    phase: "plan",
    event_type: "phase_completed",
    details: `done over ${opts.transport}`,
    event_id: `${id}-event`,
  });
  expectWrite("emit_workflow_event", out, "workflow_events", "event_id", `${id}-event`);
  const eventEntry = out?.entry_id;

  out = await call("read_stream", { stream: "workflow_events", workflow_id: wf, count: 10 });
  if (out) {
    expect(out.stream === prefix + "workflow_events", `read_stream: stream ${out.stream}`);
    const got = out.entries ?? [];
    expect(
      got.length === 1 && got[0].id === eventEntry && got[0].fields?.event_id === `${id}-event`,
      `read_stream: entries ${JSON.stringify(got)}, want the one event ${eventEntry}`,
    );
  }

  out = await call("get_context", { workflow_id: wf });
  if (out) {
    expect(out.workflow_id === wf, `get_context: workflow_id ${out.workflow_id}`);
    expect(
      JSON.stringify(out.context) === JSON.stringify({ plan: { steps: value } }),
      `get_context: context ${JSON.stringify(out.context)}`,
    );
  }

  const resource = `node-e2e/${id}`;
  const lock = await call("acquire_lock", { resource, ttl_ms: 30000, owner: `node-e2e ${opts.transport}` });
  if (lock) {
    expect(lock.acquired === true, `acquire_lock: acquired ${lock.acquired}`);
    expect(typeof lock.token === "string" && lock.token.length > 0, "acquire_lock: no token");
    expect(lock.key === `${prefix}locks:${resource}`, `acquire_lock: key ${lock.key}`);
    expect(Number.isInteger(lock.fencing_token) && lock.fencing_token >= 1, `acquire_lock: fencing_token ${lock.fencing_token}`);
  }
  const lockToken = lock?.token ?? "none";
  out = await call("extend_lock", { resource, token: lockToken, ttl_ms: 60000 });
  if (out) expect(out.extended === true && out.ttl_ms === 60000, `extend_lock: ${JSON.stringify(out)}`);
  out = await call("release_lock", { resource, token: lockToken });
  if (out) expect(out.released === true, `release_lock: ${JSON.stringify(out)}`);

  out = await call("check_rate", { subject: `node-e2e-${id}` });
  if (out) {
    expect(out.allowed === true && out.policy === "default" && out.subject === `node-e2e-${id}`, `check_rate: ${JSON.stringify(out)}`);
    expect(out.remaining === out.limit - 1, `check_rate: remaining ${out.remaining} of ${out.limit}`);
  }

  // A worker of a group of this run's own claims every event (this run's
  // among them), acknowledges them, and the group is settled.
  const group = `${id}-workers`;
  const claimed = await call("claim_events", { stream: "workflow_events", group, consumer: "w1", from: "0", count: 100 });
  const claimedIDs = (claimed?.entries ?? []).map((e) => e.id);
  if (claimed) {
    expect(claimed.created === true && claimed.stream === prefix + "workflow_events", `claim_events: ${JSON.stringify(claimed)}`);
    const mine = (claimed.entries ?? []).find((e) => e.id === eventEntry);
    expect(
      mine?.fields?.event_id === `${id}-event` && mine?.delivery_count === 1,
      `claim_events: entries ${JSON.stringify(claimed.entries)}, want the event ${eventEntry} delivered once`,
    );
  }
  out = await call("ack_events", { stream: "workflow_events", group, ids: claimedIDs.length ? claimedIDs : ["1-0"] });
  if (out && claimedIDs.length) {
    expect(
      JSON.stringify(out.acked) === JSON.stringify(claimedIDs) && out.not_pending.length === 0,
      `ack_events: ${JSON.stringify(out)}`,
    );
  }
  out = await call("stream_info", { stream: "workflow_events" });
  if (out) {
    const g = (out.groups ?? []).find((x) => x.name === group);
    expect(out.length >= 1 && g?.pending === 0 && g?.lag === 0, `stream_info: ${JSON.stringify(out)}`);
  }

  out = await call("show_dashboard", {});
  if (out) {
    expect(
      Array.isArray(out.streams) && out.streams.length === 4 && out.server?.redis_ok === true,
      `show_dashboard: ${JSON.stringify(out).slice(0, 300)}`,
    );
  }

  out = await call("append_batch", {
    stream: "audit_log_stream",
    entries: [
      { module: "node-e2e", procedure: "batch", status: "ok", workflow_id: wf, log_id: `${id}-batch-1` },
      { module: "node-e2e", procedure: "batch", status: "error", error_code: "e1", log_id: `${id}-batch-2` },
    ],
  });
  if (out) {
    expect(
      out.stream === prefix + "audit_log_stream" && out.appended === 2 && out.duplicates === 0 &&
        out.entries?.length === 2 && out.entries[1].log_id === `${id}-batch-2`,
      `append_batch: ${JSON.stringify(out)}`,
    );
  }

  out = await call("verify_audit", {});
  if (out) {
    expect(out.ok === true && out.stream === prefix + "audit_log_stream" && out.checked >= 1, `verify_audit: ${JSON.stringify(out)}`);
  }

  const called = report.calls.map((c) => c.tool).sort();
  expect(JSON.stringify(called) === JSON.stringify(EXPECTED_TOOLS), `called ${called.join(",")}`);

  if (transport instanceof StreamableHTTPClientTransport && transport.sessionId) {
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
