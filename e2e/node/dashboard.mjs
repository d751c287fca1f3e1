// Drives the dashboard page (/ui/) of a running mcp-redis in headless
// Chromium while the official MCP SDK client writes through /mcp, and
// prints one JSON line: {ok, mode, cases: [{name, ok, ms, detail}],
// failures, …}. Exits 1 when any case failed, 2 on bad usage.
//
//   node e2e/node/dashboard.mjs --url http://127.0.0.1:PORT --mode page [--screenshots DIR]
//   node e2e/node/dashboard.mjs --url http://127.0.0.1:PORT --mode token   (token in MCP_REDIS_TOKEN)
//
// --mode page: a server without tokens; the page loads clean, a write shows
// in the live tail within 2 s, pause, filters, the workflow view, a lock's
// countdown, keyboard access, light and dark screenshots.
// --mode token: a server with tokens; the page asks for one, refuses a
// wrong one, takes the right one.

import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { Report, guard, launch, structured, until } from "./browser.mjs";

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      url: { type: "string" },
      mode: { type: "string", default: "page" },
      screenshots: { type: "string" },
    },
    strict: true,
  }));
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
if (!opts.url || !["page", "token"].includes(opts.mode)) {
  process.stderr.write("usage: node dashboard.mjs --url BASE --mode page|token [--screenshots DIR]\n");
  process.exit(2);
}

const base = opts.url.replace(/\/$/, "");
const token = process.env.MCP_REDIS_TOKEN ?? "";
const run = randomBytes(4).toString("hex");
const report = new Report({ mode: opts.mode, run, screenshots: [] });
const secrets = token ? [token] : [];

// The MCP client that writes what the page must show.
const mcp = new Client({ name: "mcp-redis-dashboard-e2e", version: "1.0.0" });
async function tool(name, args) {
  return structured(name, await mcp.callTool({ name, arguments: args }, undefined, { timeout: 20000 }));
}

const { context, close } = await launch();
const page = context.pages()[0] ?? (await context.newPage());
// Chromium logs every 4xx as a console error. The expected ones: in
// --mode token, the 401s that make the page ask, until the right token is
// given.
let asking = opts.mode === "token";
// And the 503s the reconnect case fakes.
let faking = false;
const expected = (msg) => {
  const url = msg.location()?.url ?? "";
  if (asking && /status of 401/.test(msg.text()) && url.startsWith(base + "/ui/api/")) return true;
  return faking && /status of 503/.test(msg.text()) && url.startsWith(base + "/ui/api/live?");
};
guard(page, report, secrets, expected);

const q = (testid) => page.locator(`[data-testid="${testid}"]`);
const statusText = () => q("status").textContent();
const waitLive = (ms = 5000) => until("status live", ms, async () => (await statusText()) === "live");
const tailIds = () => page.$$eval('[data-testid="tail-entry"]', (els) => els.map((e) => e.dataset.id));

// goto opens a route of the page and waits until its stream is live.
async function goto(hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  await waitLive();
}

try {
  if (opts.mode === "page") await pageMode();
  else await tokenMode();
} catch (err) {
  report.fail(`driver: ${err?.stack ?? err}`);
}
await close();
await mcp.close().catch(() => {});
report.finish();

async function pageMode() {
  await mcp.connect(new StreamableHTTPClientTransport(new URL(base + "/mcp")));

  await report.run("loads clean", async () => {
    const res = await page.goto(base + "/ui/");
    if (res.status() !== 200) throw new Error(`GET /ui/ = ${res.status()}`);
    const csp = res.headers()["content-security-policy"] ?? "";
    if (!csp.includes("script-src 'self'")) throw new Error(`CSP of /ui/: ${csp}`);
    await waitLive();
    const rows = await page.$$eval('[data-testid="streams"] tbody tr', (trs) => trs.map((t) => t.dataset.testid));
    const want = ["audit_log_stream", "ccwj_update_stream", "user_feedback", "workflow_events"].map((s) => "stream-" + s);
    if (JSON.stringify(rows) !== JSON.stringify(want)) throw new Error(`stream rows ${rows}`);
    const redis = await q("health").getAttribute("data-redis");
    if (redis !== "ok") throw new Error(`health data-redis=${redis}`);
    return { stream_rows: rows.length };
  });

  await report.run("keyboard: skip link and focus", async () => {
    await page.keyboard.press("Tab");
    const first = await page.evaluate(() => document.activeElement?.textContent);
    if (first !== "Skip to content") throw new Error(`first Tab stop is ${JSON.stringify(first)}`);
    await page.keyboard.press("Enter");
    const now = await page.evaluate(() => document.activeElement?.id);
    if (now !== "main") throw new Error(`Enter on the skip link focused ${now}`);
    await page.keyboard.press("Tab");
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    if (outline === "none") throw new Error("the focused element shows no outline");
  });

  const wfA = `wf-a-${run}`;
  const wfB = `wf-b-${run}`;

  await report.run("a write shows in the live tail within 2 s", async () => {
    await goto("#/tail/workflow_events");
    const hostile = `<img src="http://evil.example/x" onerror="window.__pwned=1">`;
    const t0 = performance.now();
    const w = await tool("emit_workflow_event", {
      workflow_id: wfA,
      phase: "plan",
      event_type: "phase_started",
      details: hostile,
    });
    const sel = `[data-testid="tail-entry"][data-id="${w.entry_id}"]`;
    await page.waitForSelector(sel, { timeout: 2000 });
    const ms = Math.round(performance.now() - t0);
    // The attacker's text is shown as text: no element, no request.
    const text = await page.locator(sel).innerText();
    if (!text.includes(hostile)) throw new Error(`entry text lacks the details as text: ${text}`);
    if (await page.evaluate(() => window.__pwned)) throw new Error("markup in an entry ran");
    if ((await page.locator(`${sel} img`).count()) !== 0) throw new Error("markup in an entry became an element");
    return { latency_ms: ms };
  });

  await report.run("reconnects after the stream ends, and misses nothing", async () => {
    await goto("#/");
    const seen = [];
    const onReq = (req) => req.url().includes("/ui/api/live") && seen.push(new URL(req.url()).searchParams);
    page.on("request", onReq);
    // The tail's first stream ends at once, the next attempts fail: the
    // page must say so, back off, and come back after the id it has.
    let n = 0;
    faking = true;
    await page.route("**/ui/api/live?*", (route) =>
      n++ === 0
        ? route.fulfill({ status: 200, contentType: "text/event-stream", body: 'event: ready\ndata: {"version":"x"}\n\n' })
        : route.fulfill({ status: 503, contentType: "text/plain", body: "down for the test" }),
    );
    try {
      await page.evaluate(() => {
        location.hash = "#/tail/workflow_events";
      });
      await until("status reconnecting", 4000, async () => (await statusText()) === "reconnecting…");
      const newest = await page.$eval('[data-testid="tail-entries"] > li', (li) => li.dataset.id);
      const missed = await tool("emit_workflow_event", { workflow_id: wfA, phase: "plan", event_type: "while_away" });
      await until("a retry", 4000, async () => n >= 2);
      await page.unroute("**/ui/api/live?*");
      await page.waitForSelector(`[data-testid="tail-entry"][data-id="${missed.entry_id}"]`, { timeout: 6000 });
      await waitLive();
      const last = seen[seen.length - 1];
      if (last.get("tail") !== "workflow_events" || last.get("after") !== newest) {
        throw new Error(`reconnected with ${last}, want after=${newest}`);
      }
      return { attempts: seen.length };
    } finally {
      page.off("request", onReq);
      await page.unroute("**/ui/api/live?*").catch(() => {});
      faking = false;
    }
  });

  await report.run("objects are shown as trees", async () => {
    const w = await tool("audit_log", {
      module: "planner",
      procedure: "draft",
      status: "ok",
      workflow_id: wfA,
      inputs: { query: "find flights", limits: { max: 3, strict: true }, tags: ["a", "b"] },
    });
    await goto("#/tail/audit_log_stream");
    const sel = `[data-testid="tail-entry"][data-id="${w.entry_id}"]`;
    await page.waitForSelector(sel, { timeout: 3000 });
    // Folded at first, with a one-line preview; Enter unfolds, as a click does.
    const inputs = page.locator(`${sel} dt:text-is("inputs") + dd > details`);
    if (await inputs.getAttribute("open") !== null) throw new Error("inputs is unfolded at first");
    await inputs.locator("> summary").focus();
    await page.keyboard.press("Enter");
    await inputs.locator('dt:text-is("limits") + dd > details > summary').click();
    // A folded object's fields are drawn when it opens (its toggle event,
    // after the click returns): wait for them rather than race them.
    await inputs.locator('dt:text-is("limits") + dd > details dt:text-is("max")').waitFor({ timeout: 2000 }).catch(() => {});
    const tree = await page.$eval(sel, (li) => ({
      details: li.querySelectorAll("details").length,
      keys: [...li.querySelectorAll("dt")].map((d) => d.textContent),
    }));
    for (const k of ["inputs", "query", "limits", "max"]) {
      if (!tree.keys.includes(k)) throw new Error(`entry tree lacks ${k}: ${JSON.stringify(tree)}`);
    }
    if (tree.details < 2) throw new Error(`inputs is not a tree: ${JSON.stringify(tree)}`);
  });

  await report.run("pause queues entries, resume shows them", async () => {
    await goto("#/tail/workflow_events");
    await q("tail-pause").click();
    if ((await q("tail-pause").getAttribute("aria-pressed")) !== "true") throw new Error("pause is not pressed");
    if ((await statusText()) !== "paused") throw new Error(`status while paused: ${await statusText()}`);
    const w = await tool("emit_workflow_event", { workflow_id: wfA, phase: "plan", event_type: "paused_write" });
    await until("the queued counter", 3000, async () => /1 new/.test(await page.locator("#tail-queued").textContent()));
    if ((await tailIds()).includes(w.entry_id)) throw new Error("an entry was shown while paused");
    await q("tail-pause").click();
    await page.waitForSelector(`[data-testid="tail-entry"][data-id="${w.entry_id}"]`, { timeout: 1000 });
    if ((await statusText()) !== "live") throw new Error(`status after resume: ${await statusText()}`);
  });

  await report.run("filters show only matching entries", async () => {
    const a = await tool("emit_workflow_event", { workflow_id: wfA, phase: "build", event_type: `alpha_${run}` });
    const b = await tool("emit_workflow_event", { workflow_id: wfB, phase: "build", event_type: `beta_${run}` });
    await goto("#/tail/workflow_events");
    await page.waitForSelector(`[data-testid="tail-entry"][data-id="${b.entry_id}"]`, { timeout: 3000 });
    await q("tail-filter-event_type").fill(`alpha_${run}`);
    await q("tail-apply").click();
    await until("the filtered tail", 5000, async () => {
      const ids = await tailIds();
      return (await statusText()) === "live" && ids.length === 1 && ids[0] === a.entry_id;
    });
    if (!(await page.evaluate(() => location.hash)).includes(`event_type=alpha_${run}`)) throw new Error("the filter is not in the route");
    // Live entries are filtered too.
    const c = await tool("emit_workflow_event", { workflow_id: wfB, phase: "build", event_type: `beta_${run}` });
    const d = await tool("emit_workflow_event", { workflow_id: wfA, phase: "build", event_type: `alpha_${run}` });
    await page.waitForSelector(`[data-testid="tail-entry"][data-id="${d.entry_id}"]`, { timeout: 2000 });
    const ids = await tailIds();
    if (ids.includes(c.entry_id) || ids.includes(b.entry_id)) throw new Error(`a non-matching entry is shown: ${ids}`);
    // The same through the route, by workflow_id.
    await goto(`#/tail/workflow_events?workflow_id=${wfB}`);
    await until("the tail of workflow B", 5000, async () => {
      const got = await tailIds();
      return got.length === 2 && got[0] === c.entry_id && got[1] === b.entry_id;
    });
  });

  await report.run("workflow view: context and timeline, live", async () => {
    const delta = await tool("publish_ccwj_delta", {
      workflow_id: wfA,
      phase_id: "plan",
      field: "steps",
      value: [{ step: "fetch" }, "store", 3],
    });
    await goto(`#/workflow/${encodeURIComponent(wfA)}`);
    await until("the context", 5000, async () => {
      const t = await q("workflow-context").innerText();
      return t.includes("plan") && t.includes("steps") && t.includes("fetch");
    });
    const streams = await until("the timeline", 5000, async () => {
      const s = await page.$$eval('[data-testid="timeline-entry"]', (els) => [...new Set(els.map((e) => e.dataset.stream))].sort());
      return s.length === 3 ? s : null;
    });
    if (!(await page.locator(`[data-testid="timeline-entry"][data-id="${delta.entry_id}"]`).count())) throw new Error("the delta is not in the timeline");
    const later = await tool("emit_workflow_event", { workflow_id: wfA, phase: "ship", event_type: "phase_completed" });
    await page.waitForSelector(`[data-testid="timeline-entry"][data-stream="workflow_events"][data-id="${later.entry_id}"]`, { timeout: 3000 });
    // The form opens another workflow.
    await q("workflow-id").fill(wfB);
    await q("workflow-open").click();
    await until("workflow B", 5000, async () => (await page.evaluate(() => location.hash)) === `#/workflow/${wfB}` &&
      (await page.locator('[data-testid="timeline-entry"][data-stream="workflow_events"]').count()) === 2);
    return { streams };
  });

  const resource = `e2e/${run}`;
  await report.run("a lock shows with its countdown, and goes when released", async () => {
    await goto("#/");
    const lock = await tool("acquire_lock", { resource, ttl_ms: 30000, owner: "agent-e2e" });
    if (!lock.acquired) throw new Error(`acquire_lock: ${JSON.stringify(lock)}`);
    const row = q(`lock-${resource}`);
    await row.waitFor({ timeout: 3000 });
    const ttl = row.locator('[data-testid="lock-ttl"]');
    const first = await ttl.textContent();
    const m = /^(\d+) s$/.exec(first);
    if (!m || Number(m[1]) > 30 || Number(m[1]) < 20) throw new Error(`lock-ttl ${JSON.stringify(first)}`);
    await until("the countdown to move", 3000, async () => (await ttl.textContent()) !== first);
    const rowText = await row.innerText();
    if (!rowText.includes("agent-e2e") || !rowText.includes(String(lock.fencing_token))) throw new Error(`lock row ${rowText}`);
    const html = await page.content();
    if (lock.token && html.includes(lock.token)) throw new Error("the page shows the lock's token");
    const rel = await tool("release_lock", { resource, token: lock.token });
    if (!rel.released) throw new Error(`release_lock: ${JSON.stringify(rel)}`);
    await row.waitFor({ state: "detached", timeout: 3000 });
    return { ttl: first };
  });

  await report.run("screenshots, light and dark", async () => {
    // Something to look at: a held lock, a group with pending entries, a
    // rate subject near its limit, a few entries of every stream.
    await tool("acquire_lock", { resource: "repo/main", ttl_ms: 45000, owner: "agent-7" });
    await tool("acquire_lock", { resource: "deploy/eu-west", ttl_ms: 20000, owner: "release-bot" });
    await tool("submit_feedback", { feedback: "the plan skipped a step", user_id: "u-42", module: "planner" });
    await tool("claim_events", { stream: "workflow_events", group: "workers", consumer: "w1", count: 3, from: "0" });
    await tool("check_rate", { subject: "agent-7", cost: 48 });
    await goto("#/");
    await q("lock-repo/main").waitFor({ timeout: 3000 });
    await until("the group", 4000, async () => (await page.locator('[data-testid="groups"] tbody tr').count()) > 0);
    // A missing rate fails the case, but the pictures are still taken.
    await until("the rate subject near its limit", 4000, async () => (await page.locator('[data-testid="rates"] tbody tr').count()) > 0)
      .catch((err) => report.fail(`screenshots: ${err.message}`));
    const bgs = {};
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.mouse.move(0, 0);
      await page.evaluate(() => document.activeElement?.blur());
      bgs[scheme] = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      if (opts.screenshots) {
        mkdirSync(opts.screenshots, { recursive: true });
        const path = join(opts.screenshots, `dashboard-${scheme}.png`);
        await page.screenshot({ path, fullPage: false });
        report.data.screenshots.push(path);
      }
    }
    await page.emulateMedia({ colorScheme: "light" });
    if (bgs.light === bgs.dark) throw new Error(`light and dark look the same: ${JSON.stringify(bgs)}`);
    return bgs;
  });
}

async function tokenMode() {
  if (!token) throw new Error("--mode token needs MCP_REDIS_TOKEN");
  await mcp.connect(
    new StreamableHTTPClientTransport(new URL(base + "/mcp"), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }),
  );

  await report.run("asks for a token", async () => {
    await page.goto(base + "/ui/");
    await q("token-form").waitFor({ timeout: 5000 });
    const type = await q("token-input").getAttribute("type");
    if (type !== "password") throw new Error(`token input type ${type}`);
    const label = await page.locator('label[for="token-input"]').textContent();
    if (label !== "Bearer token") throw new Error(`label ${label}`);
    if (await q("token-error").isVisible()) throw new Error("an error shows before any token was given");
    if (await q("overview").isVisible()) throw new Error("the overview shows without a token");
  });

  await report.run("refuses a wrong token", async () => {
    await q("token-input").fill("wrong-" + randomBytes(12).toString("hex"));
    await q("token-submit").click();
    await q("token-error").waitFor({ state: "visible", timeout: 5000 });
    const text = await q("token-error").textContent();
    if (!text.includes("The server refused this token")) throw new Error(`token-error says ${text}`);
    if (!(await q("token-form").isVisible())) throw new Error("the form is gone after a refusal");
    if (await page.evaluate(() => sessionStorage.getItem("mcp-redis-token"))) throw new Error("a refused token was kept");
  });

  await report.run("takes the right token", async () => {
    asking = false;
    await q("token-input").fill(token);
    await q("token-submit").click();
    await q("stream-workflow_events").waitFor({ timeout: 5000 });
    await waitLive();
    if (await q("token-form").isVisible()) throw new Error("the form still shows");
    if ((await page.evaluate(() => sessionStorage.getItem("mcp-redis-token"))) !== token) throw new Error("the token is not in sessionStorage");
    if ((await page.content()).includes(token)) throw new Error("the page shows the token");
    if ((await page.context().cookies()).length) throw new Error("the page set a cookie");
    // A write made with the token shows live, over the authorised stream.
    await goto("#/tail/workflow_events");
    const w = await tool("emit_workflow_event", { workflow_id: `wf-${run}`, phase: "plan", event_type: "with_token" });
    await page.waitForSelector(`[data-testid="tail-entry"][data-id="${w.entry_id}"]`, { timeout: 2000 });
    const caller = await page.locator(`[data-testid="tail-entry"][data-id="${w.entry_id}"]`).innerText();
    if (caller.includes(token)) throw new Error("an entry shows the token");
    // A reload keeps the token for this tab.
    await page.reload();
    await waitLive();
    if (await q("token-form").isVisible()) throw new Error("a reload asked for the token again");
  });
}
