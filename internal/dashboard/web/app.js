// mcp-redis dashboard: overview, live tail and workflow view.
//
// Plain ES2020 in one function, no modules and no dependencies, because it
// runs twice over: as /ui/app.js under a strict CSP (no eval, no inline
// code), and inlined into the one HTML document of the MCP App, where the
// host allows no network at all. Every entry it shows was written by some
// agent, so data reaches the DOM only as text (textContent, text nodes,
// attributes), never as HTML.
(function () {
  "use strict";

  const MODE = document.documentElement.getAttribute("data-mode") === "app" ? "app" : "http";
  const STREAMS = ["audit_log_stream", "ccwj_update_stream", "user_feedback", "workflow_events"];
  // The read_stream filters each stream takes (its record's fields, in the
  // tool schema's order); a filter a stream lacks is an invalid_argument.
  const FILTERS = {
    audit_log_stream: ["module", "status", "procedure", "workflow_id", "session_id", "user_id", "caller"],
    ccwj_update_stream: ["phase_id", "workflow_id", "caller"],
    user_feedback: ["phase_id", "module", "procedure", "workflow_id", "session_id", "user_id", "caller"],
    workflow_events: ["event_type", "phase", "workflow_id", "caller"],
  };
  // The fields an entry's header line shows, per stream.
  const HEADLINE = {
    audit_log_stream: ["module", "procedure", "status", "workflow_id"],
    ccwj_update_stream: ["workflow_id", "phase_id", "field"],
    user_feedback: ["workflow_id", "module", "procedure", "user_id"],
    workflow_events: ["workflow_id", "phase", "event_type"],
  };
  // The fields the server stamps on every entry: shown small, under the header.
  const STAMPED = ["caller", "client", "origin", "mcp_session_id", "recorded_at"];
  const MAX_SHOWN = 500;
  const TOKEN_KEY = "mcp-redis-token";
  const OK_WORDS = /^(ok|success|succeeded|done|completed?|passed|approved)$/i;
  const BAD_WORDS = /^(error|errored|fail|failed|failure|denied|rejected|timeout|timed_out|aborted|crashed)$/i;

  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat("en");

  // el("td", {class: "num", text: "3"}, child…) builds an element; data
  // goes in only as text or attribute values.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === "text") e.textContent = String(v);
        else if (k === "class") e.className = v;
        else e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  function setText(node, text) {
    text = String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---------------------------------------------------------------- ids

  // Stream ids are "<ms>-<seq>"; compare them as the two integers.
  function parseId(id) {
    const m = /^(\d+)-(\d+)$/.exec(id || "");
    return m ? [BigInt(m[1]), BigInt(m[2])] : null;
  }
  function cmpId(a, b) {
    const x = parseId(a), y = parseId(b);
    if (!x || !y) return x ? 1 : y ? -1 : 0;
    if (x[0] !== y[0]) return x[0] < y[0] ? -1 : 1;
    return x[1] === y[1] ? 0 : x[1] < y[1] ? -1 : 1;
  }
  const maxId = (a, b) => (!a ? b : !b ? a : cmpId(a, b) >= 0 ? a : b);
  function idTime(id) {
    const p = parseId(id);
    return p ? new Date(Number(p[0])) : null;
  }

  // ---------------------------------------------------------- formats

  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function fmtClock(d) {
    if (!d) return "";
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return t;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
  }
  function fmtAge(ms) {
    if (ms === undefined || ms === null || ms < 0) return "—";
    const s = Math.floor(ms / 1000);
    if (s < 1) return "now";
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }
  function fmtSpan(ms) {
    if (ms === undefined || ms === null) return "—";
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }
  function fmtWindow(ms) {
    const s = Math.round(ms / 1000);
    if (s % 3600 === 0) return `${s / 3600} h`;
    return s % 60 === 0 ? `${s / 60} min` : `${s} s`;
  }
  function fmtTTL(remainingMs) {
    if (remainingMs <= 0) return "expired";
    const s = Math.ceil(remainingMs / 1000);
    if (s < 60) return `${s} s`;
    return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  }
  const fmtNum = (n) => (typeof n === "number" ? nf.format(n) : "—");
  function fmtRate(n) {
    if (typeof n !== "number") return "—";
    return n >= 100 ? nf.format(Math.round(n)) : n.toFixed(n >= 10 ? 1 : 2).replace(/\.?0+$/, "") || "0";
  }
  function fmtPct(f) {
    if (typeof f !== "number") return "—";
    const p = f * 100;
    return (p === 0 ? "0" : p < 1 ? p.toFixed(2) : p < 10 ? p.toFixed(1) : Math.round(p).toString()) + " %";
  }

  // ----------------------------------------------------------- status

  // The connection state shown in the header (data-testid="status"):
  // "live", "reconnecting…", "connecting…", "token needed", and "paused"
  // while the tail is paused.
  const conn = { state: "connecting…", kind: "wait" };
  function setConn(state, kind) {
    conn.state = state;
    conn.kind = kind;
    paintStatus();
  }
  function paintStatus() {
    let text = conn.state, kind = conn.kind;
    if (route.view === "tail" && tail.paused && conn.state === "live") {
      text = "paused";
      kind = "wait";
    }
    setText($("status"), text);
    $("conn-dot").className = "dot " + kind;
  }

  function banner(msg) {
    const b = $("banner");
    if (!msg) {
      b.hidden = true;
      return;
    }
    setText(b, msg);
    b.hidden = false;
  }

  // ------------------------------------------------------ data: call()

  class CallError extends Error {
    constructor(code, message, status) {
      super(message);
      this.code = code;
      this.status = status || 0;
    }
  }

  // A read_stream filter the stream lacks: invalid_argument over HTTP; in
  // the App only the error's text says which field.
  function isInvalidArg(err, field) {
    if (!(err instanceof CallError)) return false;
    if (err.code === "invalid_argument") return true;
    return err.code === "tool_error" && err.message.includes(field);
  }

  // call(name, args) is the one way the page reads: it calls a read-only
  // MCP tool and resolves to its structuredContent, over HTTP (api/call)
  // or, in the App, over the host's bridge.
  function call(name, args) {
    return MODE === "app" ? appCall(name, args || {}) : httpCall(name, args || {});
  }

  async function httpCall(name, args) {
    const url = "api/call?name=" + encodeURIComponent(name) + "&arguments=" + encodeURIComponent(JSON.stringify(args));
    let res;
    try {
      res = await fetch(url, { headers: auth.headers(), cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new CallError("network", "the server cannot be reached", 0);
    }
    if (res.status === 401) {
      auth.refused();
      throw new CallError("unauthorized", "this page needs a bearer token", 401);
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      // Not JSON: reported below with the status.
    }
    if (res.ok && body && "result" in body) return body.result;
    const err = (body && body.error) || {};
    throw new CallError(err.code || "internal", err.message || `HTTP ${res.status} from api/call`, res.status);
  }

  async function appCall(name, args) {
    // A waiting read gets its block_ms on top of the usual bound.
    const wait = (args.block_ms || 0) + 30000;
    const res = await bridge.request("tools/call", { name, arguments: args }, wait);
    if (res && res.isError) {
      const text = (res.content || []).map((c) => (c && c.type === "text" ? c.text : "")).join(" ").trim();
      throw new CallError("tool_error", text || name + " failed");
    }
    if (res && res.structuredContent !== undefined) return res.structuredContent;
    // A host that drops structuredContent still passes the same JSON as text.
    const text = res && res.content && res.content[0] && res.content[0].text;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new CallError("internal", name + " returned no structured content");
    }
  }

  // ------------------------------------------------- HTTP: the token

  const auth = {
    token: "",
    load() {
      try {
        this.token = sessionStorage.getItem(TOKEN_KEY) || "";
      } catch (e) {
        this.token = "";
      }
    },
    save(tok) {
      this.token = tok;
      try {
        if (tok) sessionStorage.setItem(TOKEN_KEY, tok);
        else sessionStorage.removeItem(TOKEN_KEY);
      } catch (e) {
        // No storage (private mode): the token lives until the tab closes.
      }
    },
    // The token goes only in this header: never in a URL or a cookie.
    headers() {
      return this.token ? { Authorization: "Bearer " + this.token } : {};
    },
    // A 401: stop everything and ask; a token we sent was refused.
    refused() {
      const hadToken = !!this.token;
      this.save("");
      stopAll();
      route.key = null;
      showTokenForm(hadToken);
    },
  };

  function showTokenForm(refused) {
    for (const v of ["overview", "tail", "workflow"]) $("view-" + v).hidden = true;
    $("view-token").hidden = false;
    $("token-error").hidden = !refused;
    setConn("token needed", "down");
    const input = $("token-input");
    input.value = "";
    input.focus();
  }

  async function submitToken(ev) {
    ev.preventDefault();
    const input = $("token-input");
    const tok = input.value.trim();
    input.value = "";
    if (!tok) return;
    auth.save(tok);
    $("token-error").hidden = true;
    try {
      renderOverview(await call("show_dashboard", {}));
    } catch (e) {
      if (e.code === "unauthorized") return; // the form is shown again
      banner("The dashboard could not load: " + e.message);
    }
    $("view-token").hidden = true;
    onRoute();
  }

  // ------------------------------------------------ App: the bridge

  // The host's side of the MCP Apps bridge (JSON-RPC 2.0 over
  // postMessage). Written here, not taken from @modelcontextprotocol/
  // ext-apps' App class: its self-contained build (app-with-deps.js) is
  // about 530 KiB, over this page's whole budget, and the page needs only
  // initialize, tools/call, a few notifications and ping.
  const bridge = {
    seq: 0,
    pending: new Map(),
    hostCapabilities: {},
    tornDown: false,
    post(msg) {
      window.parent.postMessage(msg, "*");
    },
    request(method, params, timeoutMs) {
      const id = ++this.seq;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new CallError("timeout", method + ": the host did not answer"));
        }, timeoutMs || 30000);
        this.pending.set(id, { resolve, reject, timer });
        this.post({ jsonrpc: "2.0", id, method, params: params || {} });
      });
    },
    notify(method, params) {
      this.post({ jsonrpc: "2.0", method, params: params || {} });
    },
    receive(ev) {
      // Only the host may speak to us.
      if (ev.source !== window.parent) return;
      let msg = ev.data;
      if (typeof msg === "string") {
        try {
          msg = JSON.parse(msg);
        } catch (e) {
          return;
        }
      }
      if (!msg || typeof msg !== "object" || msg.jsonrpc !== "2.0") return;
      if (typeof msg.method === "string") {
        if (msg.id !== undefined && msg.id !== null) this.answer(msg);
        else this.notified(msg.method, msg.params || {});
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.error) p.reject(new CallError("rpc_error", msg.error.message || "JSON-RPC error " + msg.error.code));
      else p.resolve(msg.result);
    },
    answer(msg) {
      const reply = (body) => this.post(Object.assign({ jsonrpc: "2.0", id: msg.id }, body));
      switch (msg.method) {
        case "ping":
          reply({ result: {} });
          return;
        case "ui/resource-teardown":
          // Stop polling first, then say we are done.
          this.tornDown = true;
          stopAll();
          setConn("closed", "down");
          reply({ result: {} });
          return;
        default:
          reply({ error: { code: -32601, message: "method not found: " + msg.method } });
      }
    },
    notified(method, params) {
      switch (method) {
        case "ui/notifications/tool-result":
          if (params && params.structuredContent && Array.isArray(params.structuredContent.streams)) {
            renderOverview(params.structuredContent);
          }
          return;
        case "ui/notifications/host-context-changed":
          applyHostContext(params);
          return;
        default:
        // tool-input and the rest: nothing to do.
      }
    },
  };

  function applyHostContext(ctx) {
    if (!ctx) return;
    if (ctx.theme === "light" || ctx.theme === "dark") document.documentElement.setAttribute("data-theme", ctx.theme);
    const vars = ctx.styles && ctx.styles.variables;
    if (vars && typeof vars === "object") {
      // Only the host's fonts: its colours need not meet our status colours' contrast.
      for (const k of ["--font-sans", "--font-mono"]) {
        if (typeof vars[k] === "string") document.documentElement.style.setProperty(k, vars[k]);
      }
    }
  }

  async function startApp() {
    window.addEventListener("message", (ev) => bridge.receive(ev));
    let init;
    try {
      init = await bridge.request(
        "ui/initialize",
        { protocolVersion: "2026-01-26", appInfo: { name: "mcp-redis-dashboard", version: "1" }, appCapabilities: {} },
        15000,
      );
    } catch (e) {
      setConn("no host", "down");
      banner("The MCP App host did not answer ui/initialize: " + e.message);
      return;
    }
    bridge.hostCapabilities = (init && init.hostCapabilities) || {};
    applyHostContext(init && init.hostContext);
    bridge.notify("ui/notifications/initialized", {});
    if (!bridge.hostCapabilities.serverTools) {
      banner("This host does not let the dashboard call the server's tools, so it shows only what the host sends.");
    }
    watchSize();
    onRoute();
  }

  // Tell the host our size whenever it changes, so it can fit the frame.
  function watchSize() {
    if (typeof ResizeObserver !== "function") return;
    let last = "";
    const ro = new ResizeObserver(() => {
      const r = document.documentElement.getBoundingClientRect();
      const size = { width: Math.ceil(r.width), height: Math.ceil(r.height) };
      const key = size.width + "x" + size.height;
      if (key === last || bridge.tornDown) return;
      last = key;
      bridge.notify("ui/notifications/size-changed", size);
    });
    ro.observe(document.documentElement);
  }

  // ------------------------------------------------------ overview

  // Lock countdowns and ages tick in the page between overviews: each
  // is measured from the moment the overview arrived (performance.now),
  // not from the server's clock.
  const ov = { at: 0, data: null };

  function renderOverview(o) {
    if (!o || !Array.isArray(o.streams)) return;
    ov.at = performance.now();
    ov.data = o;
    const srv = o.server || {};
    setText($("version"), srv.version ? srv.version.replace(/^(\d)/, "v$1") : "");
    renderHealth(srv);
    renderStreams(o.streams);
    renderLocks(o.locks || [], o.locks_total, o.locks_truncated);
    renderRates(o.rates || []);
    renderGroups(o.groups || []);
    updateRecent(o.streams);
    const notes = $("notes");
    notes.replaceChildren(...(o.notes || []).map((n) => el("li", { text: n })));
    tick();
  }

  function stat(label, value, extra, cls) {
    const dd = el("dd", { class: cls }, value);
    if (extra) dd.append(" ", el("small", { text: extra }));
    return el("div", null, el("dt", { text: label }), dd);
  }

  function renderHealth(s) {
    const box = $("health");
    box.setAttribute("data-redis", s.redis_ok ? "ok" : "down");
    const redis = el("span", { class: "badge " + (s.redis_ok ? "ok" : "bad"), text: s.redis_ok ? "reachable" : "down" });
    const errCls = s.error_rate >= 0.1 ? "bad-text" : s.error_rate >= 0.01 ? "warn-text" : null;
    const items = [
      stat("Redis", redis, s.redis_ok && typeof s.redis_latency_ms === "number" ? s.redis_latency_ms.toFixed(2) + " ms" : null),
      stat("Calls", fmtRate(s.calls_per_s), "/ s"),
      stat("Errors", fmtRate(s.errors_per_s), "/ s", errCls),
      stat("Error rate", fmtPct(s.error_rate), null, errCls),
      stat("In flight", fmtNum(s.in_flight)),
      stat("Uptime", fmtSpan(s.uptime_ms)),
    ];
    if (!s.redis_ok && s.redis_error) items.push(stat("Why", el("span", { class: "bad-text small", text: s.redis_error })));
    $("health-stats").replaceChildren(...items);
  }

  // syncRows keeps one row per key in tbody, in the order of items: rows
  // are made once and updated in place, so focus and hover survive the
  // overview that arrives every 2 s.
  function syncRows(tbody, items, keyOf, make, update) {
    const old = new Map();
    for (const tr of tbody.children) old.set(tr._key, tr);
    let prev = null;
    for (const it of items) {
      const k = keyOf(it);
      let tr = old.get(k);
      if (tr) old.delete(k);
      else {
        tr = make(it);
        tr._key = k;
      }
      update(tr, it);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of old.values()) tr.remove();
  }

  function tailHref(stream, filters) {
    const q = new URLSearchParams();
    for (const k of Object.keys(filters || {})) if (filters[k]) q.set(k, filters[k]);
    const qs = q.toString();
    return "#/tail/" + encodeURIComponent(stream) + (qs ? "?" + qs : "");
  }

  const SVG = "http://www.w3.org/2000/svg";
  function sparkline(counts) {
    const n = counts.length || 1, w = 150, h = 26, gap = 1;
    const bw = (w - gap * (n - 1)) / n;
    const top = Math.max(1, ...counts);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const total = counts.reduce((a, b) => a + b, 0);
    svg.setAttribute("aria-label", `${total} entries in the last ${n} minutes, ${counts[n - 1] || 0} this minute`);
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", "0");
    base.setAttribute("x2", String(w));
    base.setAttribute("y1", String(h - 0.5));
    base.setAttribute("y2", String(h - 0.5));
    svg.append(base);
    counts.forEach((c, i) => {
      if (!c) return;
      const bh = Math.max(2, (c / top) * (h - 2));
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", (i * (bw + gap)).toFixed(2));
      r.setAttribute("y", (h - bh).toFixed(2));
      r.setAttribute("width", bw.toFixed(2));
      r.setAttribute("height", bh.toFixed(2));
      if (i === n - 1) r.setAttribute("class", "now");
      svg.append(r);
    });
    return svg;
  }

  function renderStreams(streams) {
    syncRows(
      $("streams-body"),
      streams,
      (s) => s.name,
      (s) => {
        const a = el("a", { href: tailHref(s.name), title: "Live tail of " + s.name });
        // A narrow screen may break the name after an underscore only.
        s.name.split("_").forEach((part, i) => a.append(...(i ? [el("wbr"), "_" + part] : [part])));
        return el("tr", { "data-testid": "stream-" + s.name },
          el("td", { class: "name" }, a, el("div", { class: "muted small mono" })),
          el("td", { class: "num" }), el("td"), el("td", { class: "num age" }), el("td", { class: "num" }));
      },
      (tr, s) => {
        const c = tr.children;
        tr.setAttribute("data-length", String(s.length));
        setText(c[0].children[1], s.key || "");
        setText(c[1], fmtNum(s.length));
        const pm = Array.isArray(s.per_minute) ? s.per_minute : [];
        const sig = pm.join(",");
        if (tr._spark !== sig) {
          tr._spark = sig;
          c[2].replaceChildren(sparkline(pm));
        }
        tr._age = typeof s.newest_age_ms === "number" ? s.newest_age_ms : null;
        c[4].className = "num" + (s.dead_letters > 0 ? " bad-text" : "");
        setText(c[4], fmtNum(s.dead_letters));
      },
    );
  }

  function renderLocks(locks, total, truncated) {
    const now = performance.now();
    syncRows(
      $("locks-body"),
      locks,
      (l) => l.resource,
      (l) =>
        el("tr", { "data-testid": "lock-" + l.resource },
          el("td", { class: "name", text: l.resource }), el("td"), el("td", { class: "num mono" }),
          el("td", { class: "num" }, el("span", { class: "ttl", "data-testid": "lock-ttl" }))),
      (tr, l) => {
        const c = tr.children;
        setText(c[1], l.owner || "—");
        c[1].className = l.owner ? "" : "muted";
        setText(c[2], String(l.fencing_token));
        tr._deadline = l.ttl_ms < 0 ? null : now + l.ttl_ms;
        tr._ttl = l.ttl_ms;
        if (l.expires_at) c[3].title = "expires at " + l.expires_at;
      },
    );
    $("locks-empty").hidden = locks.length > 0;
    const n = typeof total === "number" ? total : locks.length;
    setText($("locks-count"), n ? `${n}${truncated ? ", not all shown" : ""}` : "");
  }

  function renderRates(rates) {
    syncRows(
      $("rates-body"),
      rates,
      (r) => r.policy + "\u0000" + r.subject,
      (r) =>
        el("tr", null, el("td", { class: "name", text: r.subject }), el("td", { class: "muted", text: r.policy }),
          el("td", null, el("span", { class: "small" }), el("div", { class: "bar" }, el("span")))),
      (tr, r) => {
        const cell = tr.children[2];
        const f = Math.max(0, Math.min(1, r.fraction || 0));
        setText(cell.children[0], `${fmtNum(r.used)} of ${fmtNum(r.limit)} per ${fmtWindow(r.window_ms)}`);
        cell.children[1].className = "bar" + (f >= 0.9 ? " bad" : "");
        // CSSOM, not a style attribute: the CSP forbids inline styles.
        cell.children[1].firstChild.style.width = (f * 100).toFixed(1) + "%";
      },
    );
    $("rates-empty").hidden = rates.length > 0;
  }

  function renderGroups(groups) {
    syncRows(
      $("groups-body"),
      groups,
      (g) => g.stream + "\u0000" + g.name,
      (g) =>
        el("tr", null, el("td", { class: "muted", text: g.stream }), el("td", { class: "name", text: g.name }),
          el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" }), el("td", { class: "num" }),
          el("td", { class: "num" })),
      (tr, g) => {
        const c = tr.children;
        setText(c[2], fmtNum(g.consumers));
        setText(c[3], typeof g.lag === "number" ? fmtNum(g.lag) : "—");
        c[3].className = "num" + (g.lag > 1000 ? " warn-text" : "");
        setText(c[4], fmtNum(g.pending));
        const oldest = typeof g.oldest_pending_age_ms === "number" ? fmtAge(g.oldest_pending_age_ms) : "—";
        setText(c[5], oldest);
        c[5].title = g.oldest_pending_id
          ? `${g.oldest_pending_id}, idle ${fmtSpan(g.oldest_pending_idle_ms)}`
          : "nothing pending";
        c[6].className = "num" + (g.dead_letters > 0 ? " bad-text" : "");
        setText(c[6], fmtNum(g.dead_letters));
      },
    );
    $("groups-empty").hidden = groups.length > 0;
  }

  // Latest entries: when a stream's newest id moves, read its newest few
  // again; the server's own call records are left out (the audit stream
  // would be nothing else).
  const recent = { last: {}, byStream: new Map(), busy: false };

  function updateRecent(streams) {
    if (recent.busy || route.view !== "overview") return;
    const moved = streams.filter((s) => s.last_id && recent.last[s.name] !== s.last_id);
    if (!moved.length) return;
    recent.busy = true;
    Promise.all(
      moved.map((s) =>
        call("read_stream", { stream: s.name, reverse: true, count: s.name === "audit_log_stream" ? 60 : 12 }).then((r) => {
          recent.byStream.set(s.name, r.entries.filter((e) => e.fields && e.fields.origin !== "server"));
          recent.last[s.name] = s.last_id;
        }),
      ),
    )
      .catch(() => {
        // Shown again with the next overview.
      })
      .finally(() => {
        recent.busy = false;
        renderRecent();
      });
  }

  function renderRecent() {
    const all = [];
    for (const [stream, es] of recent.byStream) for (const e of es) all.push({ stream, e });
    all.sort((a, b) => cmpId(b.e.id, a.e.id));
    syncRows($("recent"), all.slice(0, 12), (x) => x.stream + " " + x.e.id, (x) => {
      const f = x.e.fields || {};
      const t = idTime(x.e.id);
      const li = el("li", { "data-stream": x.stream, "data-id": x.e.id },
        el("time", { datetime: t ? t.toISOString() : null, text: fmtClock(t) }),
        el("a", { class: "sname", href: tailHref(x.stream), text: x.stream }));
      for (const k of HEADLINE[x.stream]) if (f[k] !== undefined) li.append(chip(k, f[k], x.stream));
      if (f.caller) li.append(el("span", { class: "by", text: "by " + f.caller }));
      return li;
    }, () => {});
    $("recent-empty").hidden = all.length > 0;
  }

  // tick repaints what moves between overviews: lock TTLs, entry ages,
  // and how old the overview itself is.
  function tick() {
    if (!ov.data) return;
    const now = performance.now();
    const since = now - ov.at;
    for (const tr of $("locks-body").children) {
      const span = tr.children[3].firstChild;
      if (tr._deadline === null) setText(span, "no expiry");
      else {
        const left = tr._deadline - now;
        setText(span, fmtTTL(left));
        span.className = "ttl" + (left < 5000 ? " low" : "");
      }
    }
    for (const tr of $("streams-body").children) {
      setText(tr.children[3], tr._age === null ? "—" : fmtAge(tr._age + since));
    }
    const gen = $("generated");
    const stale = since > 10000;
    setText(gen, `Updated ${fmtClock(new Date(Date.now() - since))}${stale ? " — not updated for " + fmtSpan(since) : ""}`);
    gen.className = "foot " + (stale ? "warn-text" : "muted");
  }

  // ------------------------------------------------- entry rendering

  function scalar(v) {
    if (v === null) return el("span", { class: "v-null", text: "null" });
    if (typeof v === "number" || typeof v === "boolean") return el("span", { class: "v-" + (typeof v === "number" ? "num" : "bool"), text: String(v) });
    const s = String(v);
    if (s.length <= 600) return document.createTextNode(s);
    // A long text folds: its first line shows, the rest on demand.
    const d = el("details", null, el("summary", { text: s.slice(0, 160) + `… (${nf.format(s.length)} characters)` }));
    d.addEventListener("toggle", () => {
      if (d.open && d.childNodes.length === 1) d.append(document.createTextNode(s));
    }, { once: true });
    return d;
  }

  // brief is a one-line preview of a value: "a: 1, b: {…}, c: […]".
  function brief(v, room) {
    if (v === null || typeof v !== "object") return typeof v === "string" ? JSON.stringify(v) : String(v);
    const arr = Array.isArray(v);
    const parts = [];
    let used = 0;
    for (const k of arr ? v.keys() : Object.keys(v)) {
      const x = v[k];
      const s = (arr ? "" : k + ": ") + (x !== null && typeof x === "object" ? (Array.isArray(x) ? "[…]" : "{…}") : brief(x));
      parts.push(s);
      used += s.length + 2;
      if (used > room) break;
    }
    const text = parts.join(", ");
    return text.length > room ? text.slice(0, room - 1) + "…" : text;
  }

  // value renders any JSON value: scalars as text; objects and arrays as
  // a folded tree (details/summary, keyboard-operable) whose children are
  // built when it is first opened. open unfolds a small one at once.
  function value(v, depth, open) {
    if (v === null || typeof v !== "object") return scalar(v);
    const arr = Array.isArray(v);
    const keys = arr ? v.map((_, i) => i) : Object.keys(v);
    const n = keys.length;
    const label = arr ? `[${n}]` : `{${n}}`;
    const summary = el("summary", null, el("span", { class: "muted", text: label }), " ", el("span", { class: "pv", text: brief(v, 110) }));
    const d = el("details", null, summary);
    let built = false;
    const build = () => {
      if (built) return;
      built = true;
      const dl = el("dl", { class: "kv" });
      for (const k of keys) dl.append(el("dt", { text: String(k) }), el("dd", null, value(v[k], depth + 1, false)));
      d.append(dl);
    };
    d.addEventListener("toggle", () => d.open && build());
    if (open && n <= 6 && depth < 2) {
      build();
      d.open = true;
    }
    return d;
  }

  function chip(field, v, stream) {
    const s = typeof v === "string" ? v : JSON.stringify(v);
    const c = el("span", { class: "chip" }, el("b", { text: field }));
    if (field === "workflow_id" && typeof v === "string") {
      const a = el("a", { href: "#/workflow/" + encodeURIComponent(v), text: s });
      a.title = "Open workflow " + s;
      c.append(a);
    } else c.append(s);
    if (field === "status" && typeof v === "string") {
      if (OK_WORDS.test(v)) c.className = "chip ok";
      else if (BAD_WORDS.test(v)) c.className = "chip bad";
    }
    if (stream === "audit_log_stream" && field === "module" && v === "mcp-redis") c.title = "the server's own record of a tool call";
    return c;
  }

  // In the workflow view (showStream) every entry is of that workflow:
  // its workflow_id chip would only repeat it.
  function renderEntry(e, stream, testid, showStream) {
    const f = e.fields || {};
    const li = el("li", { class: "entry", "data-testid": testid, "data-id": e.id, "data-stream": stream });
    const t = idTime(e.id);
    const head = el("div", { class: "eh" }, el("time", { datetime: t ? t.toISOString() : null, text: fmtClock(t) }));
    if (showStream) head.append(el("span", { class: "sname", text: stream }));
    const shown = new Set(STAMPED);
    for (const k of HEADLINE[stream] || []) {
      if (f[k] === undefined || (showStream && k === "workflow_id")) continue;
      head.append(chip(k, f[k], stream));
      shown.add(k);
    }
    head.append(el("span", { class: "eid", text: e.id }));
    li.append(head);
    const meta = [];
    if (f.caller) meta.push("by " + f.caller);
    if (f.client) meta.push(String(f.client));
    if (f.origin === "server") meta.push("server record");
    if (f.mcp_session_id) meta.push("session " + String(f.mcp_session_id).slice(0, 18));
    // The audit chain's hashes are for verify_audit, not for reading.
    if (typeof f.hash === "string") {
      meta.push("chain " + f.hash.slice(0, 10) + "…");
      shown.add("hash").add("prev_hash");
    }
    if (meta.length) {
      const m = el("div", { class: "meta", text: meta.join(" · ") });
      if (f.hash) m.title = `hash ${f.hash}\nprev_hash ${f.prev_hash || ""}`;
      li.append(m);
    }
    if (f.origin === "server") li.setAttribute("data-origin", "server");
    const dl = el("dl", { class: "kv" });
    for (const k of Object.keys(f)) {
      if (shown.has(k)) continue;
      dl.append(el("dt", { text: k }), el("dd", null, value(f[k], 0, false)));
    }
    if (dl.childNodes.length) li.append(dl);
    return li;
  }

  // ----------------------------------------------------------- tail

  const tail = {
    stream: "workflow_events",
    filters: {},
    newest: null,
    paused: false,
    queue: [],
    dropped: 0,
    gen: 0,
    count: 0,
  };

  function filtersFrom(params, stream) {
    const out = {};
    for (const k of FILTERS[stream] || []) {
      const v = params.get(k);
      if (v) out[k] = v;
    }
    return out;
  }

  function buildFilterInputs(stream, values) {
    const box = $("tail-filters");
    const keep = {};
    for (const inp of box.querySelectorAll("input")) if (inp.value) keep[inp.name] = inp.value;
    Object.assign(keep, values || {});
    box.replaceChildren(
      ...FILTERS[stream].map((k) => {
        const id = "tail-f-" + k;
        const inp = el("input", { id, name: k, "data-testid": "tail-filter-" + k, spellcheck: "false", autocomplete: "off" });
        inp.value = keep[k] || "";
        return el("div", { class: "field" }, el("label", { for: id, text: k }), inp);
      }),
    );
  }

  function tailFormValues() {
    const stream = $("tail-stream").value;
    const filters = {};
    for (const inp of $("tail-filters").querySelectorAll("input")) {
      const v = inp.value.trim();
      if (v) filters[inp.name] = v;
    }
    return { stream, filters };
  }

  function tailInfo() {
    const parts = [];
    const fs = Object.keys(tail.filters).map((k) => `${k} = ${tail.filters[k]}`);
    parts.push(`${tail.count} shown${tail.count >= MAX_SHOWN ? " (the newest " + MAX_SHOWN + ")" : ""}`);
    if (fs.length) parts.push("only " + fs.join(", "));
    setText($("tail-info"), parts.join(" · "));
  }

  function tailError(msg) {
    const p = $("tail-error");
    p.hidden = !msg;
    setText(p, msg || "");
  }

  async function openTail(stream, filters) {
    const g = ++tail.gen;
    tail.stream = stream;
    tail.filters = filters;
    tail.newest = null;
    tail.queue = [];
    tail.dropped = 0;
    tail.count = 0;
    $("tail-stream").value = stream;
    buildFilterInputs(stream, filters);
    for (const inp of $("tail-filters").querySelectorAll("input")) inp.value = filters[inp.name] || "";
    $("tail-entries").replaceChildren();
    $("nav-tail").setAttribute("href", tailHref(stream, filters));
    paintQueued();
    tailError("");
    setText($("tail-info"), "loading…");
    try {
      // The stream's newest id first, then the newest matching entries:
      // the live stream continues after the later of the two, so an entry
      // added in between is in one or the other.
      let floor = null;
      if (Object.keys(filters).length) {
        const r0 = await call("read_stream", { stream, reverse: true, count: 1 });
        floor = r0.entries.length ? r0.entries[0].id : null;
      }
      const r = await call("read_stream", Object.assign({ stream, reverse: true, count: 100 }, filters));
      if (g !== tail.gen) return;
      const frag = document.createDocumentFragment();
      for (const e of r.entries) frag.append(renderEntry(e, stream, "tail-entry", false));
      $("tail-entries").append(frag);
      tail.count = r.entries.length;
      // Both empty: the stream was, so all it holds by the time the live
      // stream starts is new (0-0 is below every entry id).
      tail.newest = maxId(r.entries.length ? r.entries[0].id : null, floor) || "0-0";
      tailInfo();
      if (MODE === "app") setConn("live", "live");
    } catch (e) {
      if (g !== tail.gen || e.code === "unauthorized") return;
      tailError(`Cannot read ${stream}: ${e.message}`);
      setText($("tail-info"), "");
      if (e.code === "invalid_argument" || e.code === "tool_error") {
        setConn("not live", "down");
        return;
      }
    }
    if (g !== tail.gen) return;
    if (MODE === "app") appTailLoop(g);
    else live.connect();
  }

  // addToTail takes new entries, oldest first; ids at or below the
  // newest shown are repeats (a reconnect's after= overlap) and dropped.
  function addToTail(entries) {
    const fresh = [];
    for (const e of entries) {
      if (tail.newest && cmpId(e.id, tail.newest) <= 0) continue;
      tail.newest = e.id;
      fresh.push(e);
    }
    if (!fresh.length) return;
    if (tail.paused) {
      tail.queue.push(...fresh);
      if (tail.queue.length > MAX_SHOWN) tail.dropped += tail.queue.splice(0, tail.queue.length - MAX_SHOWN).length;
      paintQueued();
      return;
    }
    showInTail(fresh);
  }

  function showInTail(entries) {
    const list = $("tail-entries");
    const frag = document.createDocumentFragment();
    for (let i = entries.length - 1; i >= 0; i--) {
      const li = renderEntry(entries[i], tail.stream, "tail-entry", false);
      li.classList.add("fresh");
      frag.append(li);
    }
    list.insertBefore(frag, list.firstChild);
    while (list.childElementCount > MAX_SHOWN) list.lastElementChild.remove();
    tail.count = list.childElementCount;
    tailInfo();
  }

  function paintQueued() {
    const n = tail.queue.length + tail.dropped;
    setText($("tail-queued"), tail.paused ? (n ? `${nf.format(n)} new while paused` : "paused") : "");
  }

  function togglePause() {
    tail.paused = !tail.paused;
    const b = $("tail-pause");
    b.setAttribute("aria-pressed", String(tail.paused));
    setText(b, tail.paused ? "Resume" : "Pause");
    if (!tail.paused && tail.queue.length) {
      const q = tail.queue;
      tail.queue = [];
      tail.dropped = 0;
      showInTail(q);
    }
    paintQueued();
    paintStatus();
  }

  // In the App there is no SSE: a forward read that waits up to 25 s, then
  // the next from where it ended (next), for as long as this tail is open.
  // Every call through the host is an ordinary tool call, which the server
  // records in its audit trail (audit.tool_calls): a long wait keeps an
  // idle tail at one call per 25 s. A server that waits less
  // (streams.max_block) refuses block_ms; then it is polled every 5 s.
  let appBlock = 25000;
  async function appTailLoop(g) {
    let start = tail.newest && tail.newest !== "0-0" ? "(" + tail.newest : "-";
    let backoff = 1000;
    while (g === tail.gen && !bridge.tornDown) {
      try {
        if (document.hidden) {
          await sleep(1000);
          continue;
        }
        const args = Object.assign({ stream: tail.stream, start, count: 100 }, tail.filters);
        if (appBlock) args.block_ms = appBlock;
        const r = await call("read_stream", args);
        if (g !== tail.gen) return;
        addToTail(r.entries);
        if (r.next) start = r.next;
        else if (r.entries.length) start = "(" + r.entries[r.entries.length - 1].id;
        backoff = 1000;
        if (!appBlock && !r.entries.length) await sleep(5000);
        setConn("live", "live");
      } catch (e) {
        if (g !== tail.gen) return;
        if (appBlock && /block_ms/.test(String(e && e.message))) {
          appBlock = 0;
          continue;
        }
        setConn("reconnecting…", "wait");
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  }

  // ------------------------------------------------------- workflow

  const wf = { id: "", gen: 0, timer: 0, reloadTimer: 0, noWorkflowField: new Set(), items: new Map() };

  function wfError(msg) {
    const p = $("wf-error");
    p.hidden = !msg;
    setText(p, msg || "");
  }

  function openWorkflow(id) {
    wf.gen++;
    clearTimeout(wf.timer);
    wf.id = id;
    wf.items = new Map();
    $("workflow-id").value = id;
    $("workflow-timeline").replaceChildren();
    setText($("tl-count"), "");
    wfError("");
    $("nav-workflow").setAttribute("href", "#/workflow/" + encodeURIComponent(id));
    if (!id) {
      $("workflow-context").replaceChildren(el("p", { class: "empty", text: "Open a workflow to see its context and timeline." }));
      if (MODE === "http") live.connect();
      else setConn("live", "live");
      return;
    }
    $("workflow-context").replaceChildren(el("p", { class: "empty", text: "loading…" }));
    const g = wf.gen;
    loadWorkflow(g).then(() => {
      if (g !== wf.gen) return;
      if (MODE === "http") live.connect();
      else pollWorkflow(g);
    });
  }

  // Every 10 s (five tool calls, each recorded), and not while hidden.
  function pollWorkflow(g) {
    wf.timer = setTimeout(async () => {
      if (g !== wf.gen || bridge.tornDown) return;
      if (!document.hidden) await loadWorkflow(g);
      pollWorkflow(g);
    }, 10000);
  }

  // A `workflow` event may come in bursts: one reload for each burst.
  function scheduleWorkflowReload() {
    if (wf.reloadTimer) return;
    wf.reloadTimer = setTimeout(() => {
      wf.reloadTimer = 0;
      loadWorkflow(wf.gen);
    }, 150);
  }

  async function loadWorkflow(g) {
    const id = wf.id;
    if (!id) return;
    // Only the streams whose entries have a workflow_id (user_feedback has
    // none today): a filter the stream lacks is an error, and in the App
    // every call is recorded.
    const reads = STREAMS.filter((s) => (FILTERS[s] || []).includes("workflow_id") && !wf.noWorkflowField.has(s)).map((s) =>
      call("read_stream", { stream: s, workflow_id: id, reverse: true, count: 200 }).then(
        (r) => ({ stream: s, entries: r.entries }),
        (err) => {
          // A server whose stream lacks the field: leave it out quietly.
          if (isInvalidArg(err, "workflow_id")) {
            wf.noWorkflowField.add(s);
            return { stream: s, entries: [] };
          }
          throw err;
        },
      ),
    );
    let ctx, results;
    try {
      [ctx, results] = await Promise.all([
        call("get_context", { workflow_id: id }).catch((e) => (e.code === "not_found" ? null : Promise.reject(e))),
        Promise.all(reads),
      ]);
    } catch (e) {
      if (g === wf.gen && e.code !== "unauthorized") wfError(`Cannot read workflow ${id}: ${e.message}`);
      return;
    }
    if (g !== wf.gen) return;
    wfError("");
    if (MODE === "app") setConn("live", "live");
    renderContext(ctx);
    const all = [];
    for (const r of results) for (const e of r.entries) all.push({ stream: r.stream, e });
    all.sort((a, b) => cmpId(b.e.id, a.e.id) || (a.stream < b.stream ? -1 : 1));
    renderTimeline(all);
  }

  function renderContext(ctx) {
    const box = $("workflow-context");
    const phases = ctx && ctx.context ? Object.keys(ctx.context) : [];
    if (!phases.length) {
      box.replaceChildren(el("p", { class: "empty", text: "No context for this workflow yet (publish_ccwj_delta sets it)." }));
      return;
    }
    const out = [];
    for (const ph of phases.sort()) {
      const fields = ctx.context[ph] || {};
      const dl = el("dl", { class: "kv" });
      for (const k of Object.keys(fields).sort()) dl.append(el("dt", { text: k }), el("dd", null, value(fields[k], 0, true)));
      out.push(el("div", { class: "phase" }, el("h3", { text: ph }), dl));
    }
    const when = [];
    if (ctx.updated_at) when.push("updated " + ctx.updated_at);
    if (ctx.last_delta_id) when.push("last delta " + ctx.last_delta_id);
    if (when.length) out.push(el("p", { class: "muted small", text: when.join(" · ") }));
    box.replaceChildren(...out);
  }

  // Entries never change, so the timeline keeps the items it has (and
  // whatever the reader unfolded) and only inserts the new ones.
  function renderTimeline(all) {
    const list = $("workflow-timeline");
    const keep = new Map();
    const first = wf.items.size === 0;
    let prev = null;
    for (const { stream, e } of all) {
      const k = stream + " " + e.id;
      let li = wf.items.get(k);
      if (!li) {
        li = renderEntry(e, stream, "timeline-entry", true);
        if (!first) li.classList.add("fresh");
      }
      keep.set(k, li);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== li) list.insertBefore(li, want);
      prev = li;
    }
    for (const [k, li] of wf.items) if (!keep.has(k)) li.remove();
    wf.items = keep;
    countTimeline();
    if (!all.length) list.replaceChildren(el("li", { class: "empty", text: "No entry names this workflow." }));
    else for (const li of [...list.children]) if (!li.hasAttribute("data-id")) li.remove();
  }

  function countTimeline() {
    const list = $("workflow-timeline");
    const all = list.querySelectorAll("[data-id]").length;
    const hidden = list.classList.contains("hide-server") ? list.querySelectorAll('[data-origin="server"]').length : 0;
    setText($("tl-count"), all ? (hidden ? `${all - hidden} (and ${hidden} call records)` : String(all)) : "");
  }

  // -------------------------------------------- HTTP: live updates (SSE)

  // One api/live stream at a time, carrying the overview and what the
  // current view follows. fetch, not EventSource, because it must send the
  // Authorization header; so the text/event-stream body is parsed here.
  const live = {
    gen: 0,
    ctrl: null,
    timer: 0,
    backoff: 1000,
    lastByte: 0,

    close() {
      this.gen++;
      clearTimeout(this.timer);
      if (this.ctrl) this.ctrl.abort();
      this.ctrl = null;
    },

    connect() {
      this.close();
      const g = this.gen;
      setConn("connecting…", "wait");
      this.run(g);
    },

    retry(g) {
      if (g !== this.gen) return;
      setConn("reconnecting…", "wait");
      this.timer = setTimeout(() => g === this.gen && this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    },

    params() {
      const q = new URLSearchParams();
      if (route.view === "tail") {
        q.set("tail", tail.stream);
        if (tail.newest) q.set("after", tail.newest);
        for (const k of Object.keys(tail.filters)) q.set(k, tail.filters[k]);
      } else if (route.view === "workflow" && wf.id) {
        q.set("workflow", wf.id);
      }
      return q.toString();
    },

    async run(g) {
      const ctrl = new AbortController();
      this.ctrl = ctrl;
      const qs = this.params();
      let res;
      try {
        res = await fetch("api/live" + (qs ? "?" + qs : ""), {
          headers: Object.assign({ Accept: "text/event-stream" }, auth.headers()),
          cache: "no-store",
          credentials: "omit",
          signal: ctrl.signal,
        });
      } catch (e) {
        return this.retry(g);
      }
      if (g !== this.gen) {
        ctrl.abort();
        return;
      }
      if (res.status === 401) {
        auth.refused();
        return;
      }
      if (res.status === 400) {
        // Bad filters: the stream will not start with these; say why, and
        // wait for the reader to change them.
        let msg = "the server refused the live stream's parameters";
        try {
          const b = await res.json();
          if (b && b.error && b.error.message) msg = b.error.message;
        } catch (e) {
          // keep the generic message
        }
        tailError(msg);
        setConn("not live", "down");
        return;
      }
      if (!res.ok || !res.body) return this.retry(g);
      try {
        await this.read(res.body, g, ctrl);
      } catch (e) {
        // Aborted or cut: reconnect below.
      }
      if (g === this.gen) this.retry(g);
    },

    async read(body, g, ctrl) {
      const reader = body.getReader();
      const dec = new TextDecoder();
      let buf = "", type = "", data = [];
      this.lastByte = performance.now();
      // The server pings every 15 s; a silent minute means a dead link.
      const dog = setInterval(() => {
        if (performance.now() - this.lastByte > 45000) ctrl.abort();
      }, 5000);
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || g !== this.gen) break;
          this.lastByte = performance.now();
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.search(/\r\n|\r|\n/)) >= 0) {
            // A CR at the end may be half of a CRLF: wait for the next chunk.
            if (buf[i] === "\r" && i === buf.length - 1) break;
            const line = buf.slice(0, i);
            buf = buf.slice(i + (buf[i] === "\r" && buf[i + 1] === "\n" ? 2 : 1));
            if (line === "") {
              if (data.length) this.dispatch(type || "message", data.join("\n"), g);
              type = "";
              data = [];
              continue;
            }
            if (line[0] === ":") continue;
            const c = line.indexOf(":");
            const field = c < 0 ? line : line.slice(0, c);
            let v = c < 0 ? "" : line.slice(c + 1);
            if (v[0] === " ") v = v.slice(1);
            if (field === "event") type = v;
            else if (field === "data") data.push(v);
          }
          if (g !== this.gen) break;
        }
      } finally {
        clearInterval(dog);
        reader.cancel().catch(() => {});
      }
    },

    dispatch(type, raw, g) {
      if (g !== this.gen) return;
      let d;
      try {
        d = JSON.parse(raw);
      } catch (e) {
        return;
      }
      switch (type) {
        case "ready":
          this.backoff = 1000;
          banner("");
          setConn("live", "live");
          // What changed before this stream began (the first read, or the
          // time away) is read once more.
          if (route.view === "workflow" && wf.id) scheduleWorkflowReload();
          return;
        case "overview":
          renderOverview(d);
          return;
        case "entries":
          if (route.view === "tail" && d.stream === tail.stream && Array.isArray(d.entries)) addToTail(d.entries);
          return;
        case "workflow":
          if (route.view === "workflow" && d.workflow_id === wf.id) scheduleWorkflowReload();
          return;
        case "resync": {
          // The server lost track and closes the stream: read again what
          // this view shows, then follow from there.
          this.close();
          setConn("reconnecting…", "wait");
          const wait = this.backoff;
          this.backoff = Math.min(this.backoff * 2, 10000);
          this.timer = setTimeout(() => openView(true), wait);
          return;
        }
        default:
      }
    },
  };

  // ------------------------------------------------- App: overview poll

  // Every 5 s, and not while the App is hidden: each poll is a tool call
  // the server records in its audit trail.
  const poll = { timer: 0, gen: 0 };
  function pollOverview(g) {
    clearTimeout(poll.timer);
    if (document.hidden) {
      poll.timer = setTimeout(() => pollOverview(g), 1000);
      return;
    }
    call("show_dashboard", {})
      .then((o) => {
        if (g !== poll.gen) return;
        renderOverview(o);
        setConn("live", "live");
      })
      .catch(() => g === poll.gen && setConn("reconnecting…", "wait"))
      .finally(() => {
        if (g === poll.gen && !bridge.tornDown) poll.timer = setTimeout(() => pollOverview(g), 5000);
      });
  }

  // ---------------------------------------------------------- routing

  // #/ overview · #/tail/<stream>?<filters> · #/workflow/<id>
  const route = { view: "overview", key: null };

  // In the App the route is kept here, not in location: a srcdoc
  // document resolves "#/…" against its parent's URL, so following such a
  // link would navigate the frame away from the App.
  let appHash = "#/";
  const currentHash = () => (MODE === "app" ? appHash : location.hash);

  function navigate(hash) {
    if (MODE === "app") {
      appHash = hash;
      onRoute();
    } else location.hash = hash;
  }

  function parseHash() {
    const h = currentHash().replace(/^#/, "");
    if (h.startsWith("/tail/") || h === "/tail") {
      const rest = h.slice(6);
      const q = rest.indexOf("?");
      let stream = q < 0 ? rest : rest.slice(0, q);
      try {
        stream = decodeURIComponent(stream);
      } catch (e) {
        stream = "";
      }
      if (!STREAMS.includes(stream)) stream = "workflow_events";
      return { view: "tail", stream, filters: filtersFrom(new URLSearchParams(q < 0 ? "" : rest.slice(q + 1)), stream) };
    }
    if (h.startsWith("/workflow")) {
      let id = h.slice(10);
      try {
        id = decodeURIComponent(id);
      } catch (e) {
        id = "";
      }
      return { view: "workflow", id };
    }
    return { view: "overview" };
  }

  function stopAll() {
    live.close();
    tail.gen++;
    wf.gen++;
    clearTimeout(wf.timer);
    poll.gen++;
    clearTimeout(poll.timer);
  }

  function onRoute() {
    if (MODE === "http" && !$("view-token").hidden) return;
    openView(false);
  }

  // openView shows the view the hash names and starts following it;
  // force re-reads it even when it is the one already shown.
  function openView(force) {
    const r = parseHash();
    const key = JSON.stringify(r);
    if (!force && key === route.key) return;
    stopAll();
    // Until the new view's stream (or first read) answers, it is not live.
    setConn("connecting…", "wait");
    route.key = key;
    route.view = r.view;
    for (const v of ["overview", "tail", "workflow"]) $("view-" + v).hidden = v !== r.view;
    for (const a of document.querySelectorAll(".tabs a")) {
      if (a.getAttribute("data-view") === r.view) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.title = (r.view === "tail" ? r.stream + " · " : r.view === "workflow" && r.id ? r.id + " · " : "") + "mcp-redis dashboard";
    if (r.view === "tail") openTail(r.stream, r.filters);
    else if (r.view === "workflow") openWorkflow(r.id);
    else if (MODE === "http") live.connect();
    if (MODE === "app" && r.view === "overview") pollOverview(++poll.gen);
    paintStatus();
  }

  // ------------------------------------------------------------ start

  function wire() {
    $("skip").addEventListener("click", (ev) => {
      // The hash is the router's: move focus without touching it.
      ev.preventDefault();
      $("main").focus();
    });
    $("token-form").addEventListener("submit", submitToken);
    $("tail-stream").addEventListener("change", () => buildFilterInputs($("tail-stream").value));
    $("tail-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const { stream, filters } = tailFormValues();
      const href = tailHref(stream, filters);
      if (currentHash() === href) openView(true);
      else navigate(href);
    });
    $("tail-pause").addEventListener("click", togglePause);
    $("tl-server").addEventListener("change", (ev) => {
      $("workflow-timeline").classList.toggle("hide-server", !ev.target.checked);
      countTimeline();
    });
    $("wf-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const id = $("workflow-id").value.trim();
      const href = "#/workflow/" + encodeURIComponent(id);
      if (currentHash() === href) openView(true);
      else navigate(href);
    });
    window.addEventListener("hashchange", onRoute);
    if (MODE === "app") {
      // Every in-page link goes through navigate (see appHash).
      document.addEventListener("click", (ev) => {
        const a = ev.target instanceof Element ? ev.target.closest('a[href^="#"]') : null;
        if (!a || ev.defaultPrevented) return;
        ev.preventDefault();
        navigate(a.getAttribute("href"));
      });
    }
    setInterval(tick, 250);
    buildFilterInputs(tail.stream);
  }

  async function startHTTP() {
    auth.load();
    try {
      renderOverview(await call("show_dashboard", {}));
    } catch (e) {
      if (e.code === "unauthorized") return;
      banner("The dashboard could not load the overview: " + e.message);
    }
    onRoute();
  }

  function start() {
    wire();
    if (MODE === "app") startApp();
    else startHTTP();
  }

  // Served as a deferred script, or inlined at the end of the App's body:
  // either way the DOM may or may not be parsed yet.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
