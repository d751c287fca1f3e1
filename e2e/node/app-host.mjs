// Plays an MCP Apps host for the dashboard App (ui://mcp-redis/dashboard)
// and prints one JSON line: {ok, transport, cases: [...], failures}.
// Exits 1 when any case failed, 2 on bad usage.
//
//   node e2e/node/app-host.mjs --url http://127.0.0.1:PORT/mcp   (Streamable HTTP; token in MCP_REDIS_TOKEN)
//   node e2e/node/app-host.mjs --stdio /path/to/mcp-redis      (spawns `mcp-redis serve`; Redis URL and
//                                                               prefix from MCP_REDIS_REDIS_URL/_PREFIX)
//
// The host side is the official one: the MCP SDK v2 Client connected to
// the server, and AppBridge from @modelcontextprotocol/ext-apps/app-bridge,
// here in node. The App itself runs in headless Chromium, in an iframe
// with sandbox="allow-scripts" and srcdoc, on a host page this script
// serves on loopback under a CSP that allows no network at all (the srcdoc
// document inherits it). The bridge's transport is this script's own:
// send() posts into the iframe through page.evaluate, and the host page
// forwards what the iframe posts to window.parent through a binding.

import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { AppBridge, RESOURCE_MIME_TYPE } from "@modelcontextprotocol/ext-apps/app-bridge";
import { z } from "zod";

import { Report, guard, launch, structured, until } from "./browser.mjs";

let opts;
try {
  ({ values: opts } = parseArgs({
    options: { url: { type: "string" }, stdio: { type: "string" }, screenshot: { type: "string" } },
    strict: true,
  }));
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
if (!opts.url === !opts.stdio) {
  process.stderr.write("usage: node app-host.mjs --url URL/mcp | --stdio BIN [--screenshot FILE]\n");
  process.exit(2);
}

const URI = "ui://mcp-redis/dashboard";
const token = process.env.MCP_REDIS_TOKEN ?? "";
const run = Math.random().toString(16).slice(2, 10);
const report = new Report({ transport: opts.stdio ? "stdio" : "streamable", run });

const client = new Client({ name: "mcp-redis-app-host-e2e", version: "1.0.0" });
let workDir = null;
let transport;
if (opts.stdio) {
  // An empty directory of its own, so no stray config.yaml is read.
  workDir = mkdtempSync(join(tmpdir(), "mcp-redis-app-"));
  transport = new StdioClientTransport({
    command: opts.stdio,
    args: ["serve"],
    env: { ...process.env },
    cwd: workDir,
    stderr: "inherit",
  });
} else {
  transport = new StreamableHTTPClientTransport(new URL(opts.url), {
    requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : undefined,
  });
}
async function tool(name, args) {
  return structured(name, await client.callTool({ name, arguments: args }));
}

// The host page: the App's frame and a listener that hands what the App
// posts to its parent on to node. The srcdoc document inherits this CSP,
// so the App can run its inline script and style but fetch nothing.
const HOST_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; frame-src 'self' about:";
const HOST_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>e2e MCP Apps host</title>
<style>body{margin:0;background:#888} iframe{display:block;width:1200px;height:780px;border:0}</style></head>
<body><iframe id="app" sandbox="allow-scripts" title="mcp-redis dashboard"></iframe>
<script>
window.addEventListener("message", (ev) => {
  if (ev.source !== document.getElementById("app").contentWindow) return;
  window.__fromApp(ev.data);
});
</script></body></html>`;

const server = createServer((req, res) => {
  if (req.url !== "/") {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": HOST_CSP });
  res.end(HOST_PAGE);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const hostURL = `http://127.0.0.1:${server.address().port}/`;

const { context, close } = await launch();
const page = context.pages()[0] ?? (await context.newPage());
guard(page, report, token ? [token] : []);
// The App must fetch nothing: any request from its frame is a failure.
page.on("request", (req) => {
  if (req.url() !== hostURL) report.fail(`a request other than the host page's own (the App's?): ${req.method()} ${req.url()}`);
});

// What the App sent, for the checks below (method and when).
const fromApp = [];

// The bridge's transport: JSON-RPC messages in and out of the iframe.
class FrameTransport {
  async start() {}
  async send(message) {
    await page.evaluate((m) => document.getElementById("app").contentWindow.postMessage(m, "*"), message);
  }
  async close() {
    this.onclose?.();
  }
}
const frameTransport = new FrameTransport();
await page.exposeBinding("__fromApp", (source, msg) => {
  if (source.frame !== page.mainFrame()) return;
  fromApp.push({ method: msg?.method, at: performance.now() });
  frameTransport.onmessage?.(msg);
});

const app = page.frameLocator("#app");
const q = (testid) => app.locator(`[data-testid="${testid}"]`);

try {
  await main();
} catch (err) {
  report.fail(`driver: ${err?.stack ?? err}`);
}
await close();
await client.close().catch(() => {});
server.close();
if (workDir) rmSync(workDir, { recursive: true, force: true });
report.finish();

async function main() {
  await client.connect(transport);

  let html;
  await report.run("the server offers the App", async () => {
    const { tools } = await client.listTools();
    const show = tools.find((t) => t.name === "show_dashboard");
    if (!show) throw new Error(`no show_dashboard in tools/list: ${tools.map((t) => t.name)}`);
    if (show._meta?.ui?.resourceUri !== URI) throw new Error(`show_dashboard _meta ${JSON.stringify(show._meta)}`);
    const res = await client.readResource({ uri: URI });
    const c = res.contents?.[0];
    if (!c || c.uri !== URI) throw new Error(`resources/read ${URI}: ${JSON.stringify(res).slice(0, 300)}`);
    if (c.mimeType !== "text/html;profile=mcp-app" || c.mimeType !== RESOURCE_MIME_TYPE) throw new Error(`mimeType ${c.mimeType}`);
    html = c.text;
    if (!html.includes('data-mode="app"')) throw new Error("the App's document is not in app mode");
    if (/<script[^>]*\ssrc=|<link[^>]*\shref="app\.css"/.test(html)) throw new Error("the App's document loads a file");
    return { bytes: html.length };
  });
  if (!html) return;

  let initialized;
  const ready = new Promise((r) => (initialized = r));
  const sizes = [];
  const bridge = new AppBridge(
    client,
    { name: "mcp-redis-e2e-host", version: "1.0.0" },
    { serverTools: {}, serverResources: {} },
    { hostContext: { theme: "dark", displayMode: "inline", platform: "web", containerDimensions: { width: 1200, maxHeight: 780 } } },
  );
  bridge.oninitialized = () => initialized();
  bridge.onsizechange = (s) => sizes.push(s);

  await report.run("the App initializes", async () => {
    await page.goto(hostURL);
    await bridge.connect(frameTransport);
    await page.evaluate((doc) => {
      document.getElementById("app").srcdoc = doc;
    }, html);
    await Promise.race([ready, new Promise((_, no) => setTimeout(() => no(new Error("no ui/notifications/initialized within 10 s")), 10000))]);
    const v = bridge.getAppVersion();
    if (v?.name !== "mcp-redis-dashboard") throw new Error(`appInfo ${JSON.stringify(v)}`);
    const theme = await app.locator("html").getAttribute("data-theme");
    if (theme !== "dark") throw new Error(`the host's theme is not applied: data-theme=${theme}`);
  });

  await report.run("renders the overview through tools/call", async () => {
    await until("the four stream rows", 10000, async () => (await app.locator('[data-testid="streams"] tbody tr').count()) === 4);
    const redis = await q("health").getAttribute("data-redis");
    if (redis !== "ok") throw new Error(`health data-redis=${redis}`);
    // The host hands the App the result of the call it made.
    await bridge.sendToolResult(await client.callTool({ name: "show_dashboard", arguments: {} }));
    if ((await q("status").textContent()) !== "live") throw new Error(`status ${await q("status").textContent()}`);
  });

  await report.run("shows what is written meanwhile", async () => {
    const row = q("stream-workflow_events");
    const before = Number(await row.getAttribute("data-length"));
    const w = await tool("emit_workflow_event", { workflow_id: `wf-app-${run}`, phase: "plan", event_type: "from_app_test" });
    await until("the new length", 6000, async () => Number(await row.getAttribute("data-length")) > before);
    // The tail, reached the way a reader does: the view's link.
    await app.locator('a[data-view="tail"]').click();
    await app.locator(`[data-testid="tail-entry"][data-id="${w.entry_id}"]`).waitFor({ timeout: 5000 });
    const later = await tool("emit_workflow_event", { workflow_id: `wf-app-${run}`, phase: "plan", event_type: "from_app_test_2" });
    await app.locator(`[data-testid="tail-entry"][data-id="${later.entry_id}"]`).waitFor({ timeout: 3000 });
  });

  await report.run("follows the host's theme and tells its size", async () => {
    bridge.setHostContext({ theme: "light", displayMode: "inline", platform: "web", containerDimensions: { width: 1200, maxHeight: 780 } });
    await until("the light theme", 3000, async () => (await app.locator("html").getAttribute("data-theme")) === "light");
    if (!sizes.length) throw new Error("no ui/notifications/size-changed");
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot });
    return { sizes: sizes.length };
  });

  await report.run("answers ping, refuses an unknown request", async () => {
    await bridge.request({ method: "ping", params: {} }, { timeout: 5000 });
    let refused = null;
    try {
      // A method outside the spec needs its result's schema.
      await bridge.request({ method: "ui/no-such-method", params: {} }, z.object({}), { timeout: 5000 });
    } catch (err) {
      refused = err;
    }
    if (!refused || refused.code !== -32601) throw new Error(`unknown request: ${refused?.code} ${refused?.message}`);
  });

  await report.run("stops on teardown", async () => {
    await bridge.teardownResource({}, { timeout: 5000 });
    const at = performance.now();
    await new Promise((r) => setTimeout(r, 2500));
    const after = fromApp.filter((m) => m.method === "tools/call" && m.at > at + 50);
    if (after.length) throw new Error(`${after.length} tools/call after teardown`);
  });
}
