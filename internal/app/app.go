// Package app is the composition root: it builds the Redis connection, the
// stores, the tools and the MCP server from one Config, and serves them.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/mod/semver"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/dashboard"
	"github.com/mcp-redis/mcp-redis/internal/embedded"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/httpsec"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/metrics"
	"github.com/mcp-redis/mcp-redis/internal/ratelimit"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
	"github.com/mcp-redis/mcp-redis/internal/transport"
	"github.com/mcp-redis/mcp-redis/prompts"
	"github.com/mcp-redis/mcp-redis/tools"
)

// Version is the server's semantic version, stamped at build time with
// -ldflags "-X github.com/mcp-redis/mcp-redis/internal/app.Version=…"
// (make build stamps the nearest v* tag, git describe). Unstamped, it is
// the version the build information records (`go install
// …/cmd/mcp-redis@v1.2.3`: v1.2.3), else v0.0.0-dev.
var Version = ""

// Commit is the commit the server was built from, stamped like Version
// (….Commit=…); unstamped, the build information's VCS revision, else
// "unknown".
var Commit = ""

func init() { Version, Commit = versionOf(Version, Commit, debug.ReadBuildInfo) }

// versionOf fills what the linker did not stamp from the build information
// read returns (debug.ReadBuildInfo).
func versionOf(version, commit string, read func() (*debug.BuildInfo, bool)) (string, string) {
	bi, ok := read()
	if version == "" {
		version = "v0.0.0-dev"
		if ok && semver.IsValid(bi.Main.Version) {
			version = bi.Main.Version
		}
	}
	if commit == "" {
		commit = "unknown"
		if ok {
			var rev string
			var dirty bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if rev != "" {
				commit = rev[:min(len(rev), 12)]
				if dirty {
					commit += "-dirty"
				}
			}
		}
	}
	return version, commit
}

// Instructions tell a model what the server is for.
const Instructions = "mcp-redis gives agents typed, validated, audited Redis primitives for coordinating work: " +
	"append-only streams (audit trail, context-window deltas, feedback, workflow events) with pub/sub notices, " +
	"the current context of each workflow, distributed locks with fencing tokens, and rate limits. " +
	"Every entry is stamped with who wrote it, and the audit trail is a hash chain that verify_audit checks. " +
	"Pass log_id/event_id on writes to make retries safe; keep a lock's token to release or extend it."

// maxInFlight bounds the tool calls one stdio client may have running.
const maxInFlight = 64

// App is one running server.
type App struct {
	Config  config.Config
	Conn    *rdb.Conn
	Tools   []mcpkit.Tool
	MCP     *server.MCPServer
	Log     *slog.Logger
	Metrics *metrics.Metrics

	locker      *lock.Locker
	checkpoints *audit.Checkpointer // nil without a signing key
	stopLooking context.CancelFunc  // ends the look for earlier-layout keys and the rights check
	rights      *rightsCheck        // nil with the embedded Redis
	looking     sync.WaitGroup
	embedded    *embedded.Redis // the in-process Redis, for redis.url "embedded"
	resources   *resourceSet    // the MCP resources and their subscriptions
	auditor     *tools.Auditor  // the call records (with audit.tool_calls false, the denials only)
	access      *access         // which tools a call may reach
	live        *dashboard.Live // the dashboard's live updates
	ui          *dashboard.Handler
	// calls finds a tool's handler for the stdio fast path; nil with
	// debug logging (transport.Stdio.Calls).
	calls transport.ToolCalls
	// sessions are the sessions MCP registers, for the HTTP fast path.
	sessions *transport.SessionTable
}

// New builds the server from cfg. It does not wait for Redis: calls made
// while Redis is down get tool errors, and succeed once it is back.
func New(cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rdb.SetLogger(log)
	conn, emb, err := openRedis(cfg.Redis, log)
	if err != nil {
		return nil, err
	}
	m := metrics.New(Version)
	conn.Client.AddHook(m.RedisHook())
	// The rights are asked of Redis while the tools are built (CheckRights
	// takes the answer); ctx ends the question with the App.
	ctx, stop := context.WithCancel(context.Background())
	var rights *rightsCheck
	if emb == nil {
		rights = startRightsCheck(ctx, conn, cfg)
	}
	fail := func(err error) (*App, error) {
		stop()
		rights.wait()
		_ = conn.Close()
		if emb != nil {
			_ = emb.Close()
		}
		return nil, err
	}
	keys := keyspace.Keyspace{Prefix: cfg.Redis.Prefix}
	lockOpts := []lock.Option{lock.WithLogger(log)}
	if cfg.Redis.ShardedPubSub {
		lockOpts = append(lockOpts, lock.WithShardedPubSub())
	}
	locker := lock.New(conn.Writer, keys, lockOpts...)
	deps := depsFrom(cfg)
	chained, checkpoints := chainStore(cfg, conn, keys, log)
	deps.Streams = chained
	deps.Audit = chained
	deps.Locks = locker
	deps.Limiter = ratelimit.New(conn.Writer, keys)
	deps.Groups = newGroups(cfg, conn, keys)
	// The one Redis subscription starts with the first subscriber: a
	// resource subscription, a dashboard page, or an overview (it counts
	// the entries per minute from the notices).
	var res *resourceSet
	listen := func() {
		if res != nil {
			res.listen()
		}
	}
	collector := newCollector(cfg, conn, keys, deps, locker, m, listen, log)
	deps.Dashboard = collector

	all := tools.All(deps)
	acc, err := newAccess(cfg.Tools, all)
	if err != nil {
		return fail(err)
	}
	hooks := &server.Hooks{}
	hooks.AddAfterListTools(acc.filterList)
	hooks.AddOnRequestInitialization(acc.vetResources)
	sessions := &transport.SessionTable{}
	sessions.Watch(hooks)
	opts := []server.ServerOption{
		server.WithHooks(hooks),
		server.WithToolCapabilities(false),
		server.WithPromptCapabilities(false),
		server.WithInstructions(Instructions),
	}
	debug := log.Enabled(context.Background(), slog.LevelDebug)
	if debug {
		opts = append(opts, server.WithLogger(slog.New(asDebug{log.Handler()})))
	}
	s := server.NewMCPServer("mcp-redis", Version, opts...)
	auditor := tools.NewAuditor(deps, cfg.Redis.Timeout, log, cfg.Audit.ToolCallsWait, m.RecordFailed)
	obs := func(ctx context.Context, c mcpkit.Call) {
		// Every call is recorded; with audit.tool_calls false, the
		// denials still are (a call the server or the credential does
		// not allow).
		if cfg.Audit.ToolCalls || fault.CodeOf(c.Err) == fault.Forbidden {
			auditor.Observe(ctx, c)
		}
		m.Observe(ctx, c)
	}
	acc.deny = func(ctx context.Context, what string, err error) {
		id, _ := httpsec.IdentityFrom(ctx)
		auditor.Observe(ctx, mcpkit.Call{Tool: what, Err: err, Message: mcpkit.Message(err, what, log),
			Provenance: mcpkit.Provenance{Caller: id.Name}})
	}
	handlers := make(map[string]server.ToolHandlerFunc, len(all))
	for _, t := range all {
		name := t.Name()
		t.Gate = func(ctx context.Context) error { return acc.check(ctx, name) }
		h := m.Track(t.Handler(obs, cfg.Redis.Timeout, log))
		s.AddTool(t.Def, h)
		handlers[t.Name()] = h
	}
	for _, p := range prompts.All(prompts.Deps{LockMaxTTL: cfg.Locks.MaxTTL, IdempotencyTTL: cfg.Idempotency.TTL, MaxBlock: cfg.Streams.MaxBlock}) {
		if acc.offersAll(p.Uses) {
			s.AddPrompt(p.Def, p.Handler())
		}
	}
	a := &App{access: acc, Config: cfg, Conn: conn, Tools: all, MCP: s, Log: log, Metrics: m, locker: locker, checkpoints: checkpoints, auditor: auditor, sessions: sessions, rights: rights}
	if !debug {
		// The stdio fast path skips what mcp-go does around a call that
		// this server does not use; with debug logging mcp-go's request
		// log is one of them, so every call goes through mcp-go.
		a.calls = func(name string) server.ToolHandlerFunc { return handlers[name] }
	}
	if err := addDashboardApp(s); err != nil {
		return fail(err)
	}
	a.live, a.ui = newDashboard(cfg, keys, chained, collector, all, listen, log)
	res = newResources(cfg, conn, keys, chained, locker, s, a.live, log)
	a.resources = res
	a.stopLooking = stop
	a.embedded = emb
	if emb == nil {
		a.looking.Add(1)
		go func() {
			defer a.looking.Done()
			warnLegacy(ctx, conn.Client, keys, log)
		}()
	}
	return a, nil
}

// openRedis connects to cfg's Redis, first starting the in-process one
// when redis.url is "embedded" (then returned, to close after conn).
func openRedis(r config.Redis, log *slog.Logger) (*rdb.Conn, *embedded.Redis, error) {
	o := rdb.Options{URL: r.URL, Timeout: r.Timeout, TLS: rdb.TLS(r.TLS), WaitReplicas: r.WaitReplicas, WaitTimeout: r.WaitTimeout}
	var e *embedded.Redis
	if r.URL == config.Embedded {
		var err error
		if e, err = embedded.Start(log); err != nil {
			return nil, nil, err
		}
		o.URL = e.URL()
	}
	conn, err := rdb.Open(o, log)
	if err != nil {
		if e != nil {
			_ = e.Close()
		}
		return nil, nil, err
	}
	return conn, e, nil
}

// depsFrom carries the configuration the tools' schemas and checks need;
// the Redis-backed parts are added by New.
func depsFrom(cfg config.Config) *tools.Deps {
	policies := make(map[string]ratelimit.Policy, len(cfg.Rate.Policies))
	for name, p := range cfg.Rate.Policies {
		policies[name] = ratelimit.Policy{Name: name, Limit: p.Limit, Window: p.Window}
	}
	return &tools.Deps{
		MaxEntryBytes:   cfg.Limits.MaxEntryBytes,
		IdempotencyTTL:  cfg.Idempotency.TTL,
		LockMaxTTL:      cfg.Locks.MaxTTL,
		LockMaxWait:     cfg.Locks.MaxWait,
		MaxBlock:        cfg.Streams.MaxBlock,
		Policies:        policies,
		MaxClockSkew:    cfg.Audit.MaxClockSkew,
		RecordArguments: cfg.Audit.RecordArguments,
		WaitReplicas:    cfg.Redis.WaitReplicas,
		ReclaimIdle:     cfg.Groups.ReclaimIdle,
		MaxDeliveries:   cfg.Groups.MaxDeliveries,
	}
}

// ServeStdio serves MCP over in/out (a host's pipe) until in ends or ctx
// is cancelled. out carries JSON-RPC only. What the client writes is
// stamped with audit.stdio_caller, by default the OS user and host the
// server runs as: whoever can spawn it over a pipe is that user.
func (a *App) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	caller := a.Config.Audit.StdioCaller
	if caller == "" {
		caller = osCaller()
	}
	ctx = mcpkit.WithCaller(ctx, caller)
	s := &transport.Stdio{Server: a.MCP, MaxMessageBytes: a.Config.Stdio.MaxMessageBytes, MaxInFlight: maxInFlight, Calls: a.calls, Offered: a.access.offered, Log: a.Log}
	if err := s.Serve(ctx, in, out); err != nil {
		return fmt.Errorf("serve stdio: %w", err)
	}
	return nil
}

// osCaller names the OS user and host the server runs as, user@host.
func osCaller() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "uid" + strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return name + "@" + host
}

// ServeHTTP serves Streamable HTTP, SSE, health, readiness and metrics on
// ln (or on http.listen when ln is nil) until ctx is cancelled, then shuts
// down gracefully.
func (a *App) ServeHTTP(ctx context.Context, ln net.Listener) error {
	h := a.Config.HTTP
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", h.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", h.Listen, err)
		}
	}
	a.Log.Info("serving http", "addr", ln.Addr().String(), "auth", len(h.AuthTokens) > 0, "stateless", h.Stateless)
	t := &transport.HTTP{
		Server: a.MCP, Calls: a.calls, Sessions: a.sessions, Stateless: h.Stateless, Tokens: h.AuthTokens, TokenScopes: tokenScopes(h), Offered: a.access.offered, AllowedOrigins: h.AllowedOrigins,
		Loopback: h.Loopback(), MaxBodyBytes: h.MaxBodyBytes,
		ReadHeaderTimeout: h.ReadHeaderTimeout, ReadTimeout: h.ReadTimeout, WriteTimeout: h.WriteTimeout,
		IdleTimeout: h.IdleTimeout, ShutdownTimeout: h.ShutdownTimeout,
		MaxConnections: h.MaxConnections, MaxSessions: h.MaxSessions, SessionIdleTimeout: h.SessionIdleTimeout,
		Ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, a.Config.Redis.Timeout)
			defer cancel()
			return rdb.Ping(ctx, a.Conn.Client)
		},
		Metrics: a.Metrics.Handler(),
		Log:     a.Log,
	}
	if h.ServesUI() {
		t.UIPages, t.UIAPI = a.ui.Pages(), a.access.dashboardData(a.ui.API())
	}
	if o := h.OAuth; o.Enabled() {
		t.OAuth = &httpsec.OAuthConfig{Issuer: o.Issuer, Resource: o.Resource, AuthorizationServers: o.Servers(),
			JWKSURL: o.JWKSURL, JWKSFile: o.JWKSFile, RefreshInterval: o.JWKSRefreshInterval, Algorithms: o.Algorithms,
			ClockSkew: o.ClockSkew, Scopes: o.GrantedScopes(), ServerScopes: mcpkit.Scopes, NameClaim: o.NameClaim, ResourceName: "mcp-redis"}
		t.ScopeOf = func(tool string) string { return toolScopes[tool] }
		t.Denied = func(ctx context.Context, tool, need string) {
			if err := lacks(ctx, tool, need); err != nil {
				a.access.denied(ctx, tool, err)
			}
		}
	}
	// Each tenant namespace is a server of its own under its own prefix,
	// on the same Redis: its tools, resources, subscriptions and dashboard
	// data see its keys alone.
	if spaces := h.Namespaces(); len(spaces) > 0 {
		t.TokenNamespaces, t.Tenants = h.TokenNamespaces, map[string]transport.Tenant{}
		for _, ns := range spaces {
			tc := a.Config
			tc.Redis.Prefix = a.Config.Redis.Prefix + ns + ":"
			tc.HTTP.TokenNamespaces = nil
			if a.embedded != nil {
				tc.Redis.URL = a.embedded.URL()
			}
			ta, err := New(tc, a.Log.With("namespace", ns))
			if err != nil {
				return fmt.Errorf("namespace %s: %w", ns, err)
			}
			defer ta.Close()
			tenant := transport.Tenant{Server: ta.MCP, Offered: ta.access.offered, Calls: ta.calls, Sessions: ta.sessions}
			if h.ServesUI() {
				tenant.UIAPI = ta.access.dashboardData(ta.ui.API())
			}
			t.Tenants[ns] = tenant
		}
	}
	return t.Serve(ctx, ln)
}

// Settle waits until the call records of the calls answered so far are
// written (audit.tool_calls_wait false writes them in the background).
func (a *App) Settle() {
	if a.auditor != nil {
		a.auditor.Close()
	}
}

// Close ends the lock subscription and the checkpointer, and releases
// Redis.
func (a *App) Close() error {
	a.stopLooking()
	a.looking.Wait()
	a.rights.wait()
	if a.auditor != nil {
		// The call records still being written go out before Redis
		// closes.
		a.auditor.Close()
	}
	a.live.Close()
	a.resources.Close()
	a.locker.Close()
	if a.checkpoints != nil {
		a.checkpoints.Close()
	}
	err := a.Conn.Close()
	if a.embedded != nil {
		_ = a.embedded.Close()
	}
	return err
}

// asDebug hands every record to the handler at level debug: mcp-go logs a
// line per request and per tool call at info, and with --log-level debug
// only, so they are the server's debug output and are labelled so.
type asDebug struct{ slog.Handler }

func (a asDebug) Enabled(ctx context.Context, _ slog.Level) bool {
	return a.Handler.Enabled(ctx, slog.LevelDebug)
}

func (a asDebug) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return a.Handler.Handle(ctx, r)
}

func (a asDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	return asDebug{a.Handler.WithAttrs(attrs)}
}

func (a asDebug) WithGroup(name string) slog.Handler { return asDebug{a.Handler.WithGroup(name)} }
