// What the dashboard's browser tests share: Debian's headless Chromium
// driven by playwright-core (never a browser playwright downloads), a
// guard that fails on any console error or request leaving loopback, an
// MCP client to write what the page should show, and the one JSON report
// line the Go test reads.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

export const CHROMIUM = process.env.MCP_REDIS_CHROMIUM || "/usr/bin/chromium";

// launch starts Chromium with a fresh profile, removed on close.
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), "mcp-redis-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

// isLoopback: a URL the page may fetch (data: and about: are not network).
export function isLoopback(u) {
  let url;
  try {
    url = new URL(u);
  } catch {
    return false;
  }
  if (url.protocol === "data:" || url.protocol === "about:" || url.protocol === "blob:") return true;
  return LOOPBACK.has(url.hostname);
}

// Report collects the cases and failures and prints the one JSON line.
export class Report {
  constructor(fields) {
    this.data = { ok: false, ...fields, cases: [], failures: [], requests: 0 };
  }
  fail(msg) {
    this.data.failures.push(msg);
  }
  // run times one named case; an exception fails it with its message.
  async run(name, fn) {
    const c = { name, ok: false, ms: 0 };
    this.data.cases.push(c);
    const t0 = performance.now();
    const before = this.data.failures.length;
    try {
      const detail = await fn();
      if (detail !== undefined) c.detail = detail;
    } catch (err) {
      this.fail(`${name}: ${err?.message ?? err}`);
    }
    c.ms = Math.round(performance.now() - t0);
    c.ok = this.data.failures.length === before;
    return c.ok;
  }
  finish() {
    this.data.ok = this.data.failures.length === 0 && this.data.cases.every((c) => c.ok);
    process.stdout.write(JSON.stringify(this.data) + "\n");
    process.exit(this.data.ok ? 0 : 1);
  }
}

// guard fails the report on every console error, uncaught page error, and
// request whose host is not loopback; secrets must never be in a URL.
// A console error that expected(msg) accepts is counted, not failed.
export function guard(page, report, secrets = [], expected = () => false) {
  report.data.expected_console_errors = 0;
  page.on("console", (msg) => {
    if (msg.type() === "error" && expected(msg)) report.data.expected_console_errors++;
    else if (msg.type() === "error") report.fail(`console error: ${msg.text()} (${msg.location()?.url ?? ""})`);
  });
  page.on("pageerror", (err) => report.fail(`page error: ${err.message}`));
  page.on("request", (req) => {
    report.data.requests++;
    const u = req.url();
    if (!isLoopback(u)) report.fail(`request leaves loopback: ${req.method()} ${u}`);
    for (const s of secrets) if (s && u.includes(s)) report.fail(`a secret is in a request URL: ${u}`);
  });
}

// until polls fn (sync or async) until it returns a truthy value, or
// throws after ms with what it last saw.
export async function until(what, ms, fn, every = 50) {
  const t0 = performance.now();
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err?.message ?? err;
    }
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

// structured is a tool result's structuredContent; a tool error throws.
export function structured(name, res) {
  if (res.isError) {
    const text = (res.content ?? []).map((c) => c.text ?? "").join("");
    throw new Error(`${name} is a tool error: ${text}`);
  }
  return res.structuredContent;
}
