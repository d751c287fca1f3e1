// Package config loads the server's one typed configuration: defaults <
// config.yaml < MCP_REDIS_* environment < command-line flags. Viper lives
// only here.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/suggest"
)

// EnvPrefix is the prefix of every environment variable the server reads:
// redis.url is MCP_REDIS_REDIS_URL.
const EnvPrefix = "MCP_REDIS"

// Config is the whole configuration of one server.
type Config struct {
	Redis       Redis       `mapstructure:"redis"`
	Streams     Streams     `mapstructure:"streams"`
	Limits      Limits      `mapstructure:"limits"`
	Audit       Audit       `mapstructure:"audit"`
	Idempotency Idempotency `mapstructure:"idempotency"`
	Log         Log         `mapstructure:"log"`
	Transport   string      `mapstructure:"transport"`
	Stdio       Stdio       `mapstructure:"stdio"`
	Locks       Locks       `mapstructure:"locks"`
	Rate        Rate        `mapstructure:"rate"`
	HTTP        HTTP        `mapstructure:"http"`
	Groups      Groups      `mapstructure:"groups"`
	Tools       Tools       `mapstructure:"tools"`
}

// Tools decides which tools the server offers: a tool left out is neither
// listed nor callable, on every transport.
type Tools struct {
	// ReadOnly offers only the tools whose readOnlyHint is true.
	ReadOnly bool `mapstructure:"read_only"`
	// Enabled, when not empty, is every tool offered, by name; Disabled
	// names tools not offered. The names are checked against the tools
	// there are when the server starts.
	Enabled  []string `mapstructure:"enabled"`
	Disabled []string `mapstructure:"disabled"`
}

// Scopes are the scopes a token may be given (http.token_scopes), as
// internal/mcpkit names them; a test holds the two lists equal.
var Scopes = []string{"streams:read", "streams:write", "streams:consume", "locks", "rate", "admin"}

// Groups configures the consumer groups of claim_events.
type Groups struct {
	// ReclaimIdle is how long an entry may stay pending with a consumer
	// before another may claim it; claim_events' reclaim_idle_ms default.
	ReclaimIdle time.Duration `mapstructure:"reclaim_idle"`
	// MaxDeliveries is how often an entry may be delivered before it is
	// moved to the stream's dead letters.
	MaxDeliveries int `mapstructure:"max_deliveries"`
}

// HTTP configures the Streamable HTTP and SSE listener.
type HTTP struct {
	// Listen is the address to listen on; loopback by default.
	Listen string `mapstructure:"listen"`
	// Stateless serves Streamable HTTP without sessions, for deployments
	// behind a load balancer.
	Stateless bool `mapstructure:"stateless"`
	// AuthTokens are the accepted bearer tokens, by name. The name is what
	// logs and audit records show; the token never is.
	AuthTokens map[string]string `mapstructure:"auth_tokens"`
	// TokenScopes gives named tokens scopes, space-separated ("streams:read
	// locks"); a token not named here has every scope.
	TokenScopes map[string]string `mapstructure:"token_scopes"`
	// TokenNamespaces puts named tokens in a tenant namespace: such a
	// token works under redis.prefix + namespace + ":" (its streams,
	// locks, rate subjects, notices, resources and dashboard), apart
	// from every other namespace and from the tokens not named here.
	TokenNamespaces map[string]string `mapstructure:"token_namespaces"`
	// AllowedOrigins are the Origin values a browser request may carry;
	// requests without Origin pass.
	AllowedOrigins []string `mapstructure:"allowed_origins"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// Timeouts: reading the headers, reading a body, writing an answer
	// (not a stream), an idle keep-alive connection, and draining in-flight
	// calls at shutdown.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	ShutdownTimeout   time.Duration `mapstructure:"shutdown_timeout"`
	// MaxConnections bounds the open connections; one more is answered
	// 503 and closed at once.
	MaxConnections int `mapstructure:"max_connections"`
	// MaxSessions bounds the live MCP sessions (Streamable HTTP and SSE
	// together); an initialize beyond it is answered 503 with Retry-After.
	MaxSessions int `mapstructure:"max_sessions"`
	// SessionIdleTimeout frees a Streamable HTTP session no request has
	// used for that long.
	SessionIdleTimeout time.Duration `mapstructure:"session_idle_timeout"`
	// UI serves the live dashboard at /ui: "auto" (the default) when
	// Listen is loopback, "true" always, "false" never.
	UI string `mapstructure:"ui"`
	// OAuth makes the listener an OAuth 2.1 resource server: it accepts
	// access tokens (JWTs) of an authorization server beside AuthTokens.
	OAuth OAuth `mapstructure:"oauth"`
}

// OAuth configures the access tokens the listener accepts (README,
// Security, OAuth 2.1). It is off while Issuer is empty.
type OAuth struct {
	// Issuer is the authorization server's issuer identifier: a token's
	// iss must equal it.
	Issuer string `mapstructure:"issuer"`
	// Resource is this server's canonical resource URI (RFC 8707), e.g.
	// https://mcp.example.com/mcp: a token's aud must contain it, and the
	// Protected Resource Metadata (RFC 9728) is served under its path.
	Resource string `mapstructure:"resource"`
	// AuthorizationServers are the issuers the metadata names; [Issuer]
	// when empty.
	AuthorizationServers []string `mapstructure:"authorization_servers"`
	// JWKSURL or JWKSFile (exactly one) holds the keys tokens are signed
	// with. The URL is fetched at start, every JWKSRefreshInterval, and
	// on a token whose kid it lacks, at most once per that interval; the
	// file is read at start.
	JWKSURL             string        `mapstructure:"jwks_url"`
	JWKSFile            string        `mapstructure:"jwks_file"`
	JWKSRefreshInterval time.Duration `mapstructure:"jwks_refresh_interval"`
	// Algorithms are the signature algorithms accepted; never none or an
	// HMAC (HS*), whose key a resource server would have to share.
	Algorithms []string `mapstructure:"algorithms"`
	// ClockSkew is the leeway on exp, nbf and iat.
	ClockSkew time.Duration `mapstructure:"clock_skew"`
	// Scopes maps an OAuth scope to the server's scopes (Scopes) it
	// grants; empty means each of Scopes grants itself.
	//
	// viper folds a key to lower case and splits it at dots, while a
	// scope is case-sensitive and may hold dots: Load reads this map from
	// the file itself (and from MCP_REDIS_HTTP_OAUTH_SCOPES), not through
	// viper.
	Scopes map[string][]string `mapstructure:"-"`
	// NameClaim is the claim that names the caller: a token whose
	// NameClaim is alice writes as oauth:alice.
	NameClaim string `mapstructure:"name_claim"`
}

// Enabled reports whether the listener accepts access tokens.
func (o OAuth) Enabled() bool { return o.Issuer != "" }

// GrantedScopes is Scopes, or each of the server's scopes granting itself
// when Scopes is empty.
func (o OAuth) GrantedScopes() map[string][]string {
	if len(o.Scopes) > 0 {
		return o.Scopes
	}
	m := make(map[string][]string, len(Scopes))
	for _, s := range Scopes {
		m[s] = []string{s}
	}
	return m
}

// Servers is AuthorizationServers, or [Issuer] when it is empty.
func (o OAuth) Servers() []string {
	if len(o.AuthorizationServers) > 0 {
		return o.AuthorizationServers
	}
	return []string{o.Issuer}
}

// OAuthAlgorithms are the signature algorithms http.oauth.algorithms may
// name: asymmetric ones only.
var OAuthAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// MaxOAuthClockSkew bounds http.oauth.clock_skew.
const MaxOAuthClockSkew = 5 * time.Minute

// ServesUI reports whether the listener serves the dashboard at /ui.
func (h HTTP) ServesUI() bool {
	switch uiMode(h.UI) {
	case "true":
		return true
	case "false":
		return false
	default:
		return h.Loopback()
	}
}

// uiMode is http.ui's value as one of auto, true and false ("" when it
// is none of them): a YAML boolean arrives as 1 or 0.
func uiMode(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "auto", "":
		return "auto"
	case "true", "1", "on", "yes":
		return "true"
	case "false", "0", "off", "no":
		return "false"
	}
	return ""
}

// Loopback reports whether Listen binds only the loopback interface.
func (h HTTP) Loopback() bool {
	host, _, err := net.SplitHostPort(h.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Locks bounds what acquire_lock and extend_lock may ask for.
type Locks struct {
	// MaxTTL is the longest ttl_ms a caller may ask for.
	MaxTTL time.Duration `mapstructure:"max_ttl"`
	// MaxWait is the longest wait_ms a caller may ask for.
	MaxWait time.Duration `mapstructure:"max_wait"`
}

// Rate holds the rate-limit policies, by name. Callers pick a policy by
// name and can never set their own limit.
type Rate struct {
	Policies map[string]RatePolicy `mapstructure:"policies"`
}

// RatePolicy allows Limit units of cost in any Window (an exact sliding
// window).
type RatePolicy struct {
	Limit  int           `mapstructure:"limit"`
	Window time.Duration `mapstructure:"window"`
}

// Stdio bounds what a host may send over stdio.
type Stdio struct {
	// MaxMessageBytes bounds one JSON-RPC message (one line).
	MaxMessageBytes int `mapstructure:"max_message_bytes"`
}

// Redis says where Redis is and how long to wait for it.
type Redis struct {
	URL     string        `mapstructure:"url"`
	Prefix  string        `mapstructure:"prefix"`
	Timeout time.Duration `mapstructure:"timeout"`
	TLS     TLS           `mapstructure:"tls"`
	// WaitReplicas, when above 0, has every write answered OK only once
	// WAIT confirms that many replicas hold it; otherwise the call gets a
	// tool error saying durability was not confirmed.
	WaitReplicas int `mapstructure:"wait_replicas"`
	// WaitTimeout bounds that WAIT; it must be shorter than Timeout.
	WaitTimeout time.Duration `mapstructure:"wait_timeout"`
	// ShardedPubSub sends notices with SPUBLISH (Redis 7 sharded pub/sub)
	// instead of PUBLISH; meant for Cluster, where a PUBLISH is relayed to
	// every node and an SPUBLISH stays on its shard.
	ShardedPubSub bool `mapstructure:"sharded_pubsub"`
}

// TLS refines the TLS that a rediss://, rediss+sentinel:// or
// rediss+cluster:// URL turns on; with any other URL it must stay unset.
type TLS struct {
	// CAFile is a PEM file of the CAs that may sign the server's
	// certificate; it replaces the system roots. "" means the system roots.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are the client certificate and its key, PEM,
	// for a server with tls-auth-clients yes. Both or neither.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName is the name the server's certificate must carry. ""
	// means the host connected to (for Sentinel and Cluster: each node's
	// own host).
	ServerName string `mapstructure:"server_name"`
	// MinVersion is the lowest TLS version offered: "1.2" or "1.3".
	MinVersion string `mapstructure:"min_version"`
	// InsecureSkipVerify accepts any certificate from the server. The
	// server warns at start; for tests only.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// Set reports whether any TLS setting differs from its default.
func (t TLS) Set() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" ||
		(t.MinVersion != "" && t.MinVersion != "1.2") || t.InsecureSkipVerify
}

// TLSURL reports whether url turns TLS on (rediss://, rediss+sentinel://,
// rediss+cluster://).
func TLSURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "rediss" || strings.HasPrefix(u.Scheme, "rediss+"))
}

// problems checks the files exist and parse, and that the certificate and
// key pair up.
func (t TLS) problems() []error {
	var p []error
	add := func(key, format string, a ...any) {
		p = append(p, &problem{key: "redis.tls." + key, msg: fmt.Sprintf(format, a...)})
	}
	if t.CAFile != "" {
		if pem, err := os.ReadFile(t.CAFile); err != nil {
			add("ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			add("ca_file", "%s holds no PEM certificate", t.CAFile)
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		add("key_file", "needed with cert_file: set both or neither")
	case t.CertFile == "" && t.KeyFile != "":
		add("cert_file", "needed with key_file: set both or neither")
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			add("cert_file", "with key_file: %v", err)
		}
	}
	if strings.ContainsFunc(t.ServerName, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' }) {
		add("server_name", "%q is not a host name", t.ServerName)
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		add("min_version", "%q is not one of 1.2, 1.3", t.MinVersion)
	}
	return p
}

// Streams holds the retention of each stream.
type Streams struct {
	// MaxBlock bounds how long read_stream's block_ms may wait.
	MaxBlock      time.Duration `mapstructure:"max_block"`
	AuditLog      Stream        `mapstructure:"audit_log_stream"`
	CCWJUpdate    Stream        `mapstructure:"ccwj_update_stream"`
	UserFeedback  Stream        `mapstructure:"user_feedback"`
	WorkflowEvent Stream        `mapstructure:"workflow_events"`
}

// Get returns the settings of a stream by its name (keyspace.AuditLog, …).
func (s Streams) Get(name string) Stream {
	switch name {
	case keyspace.AuditLog:
		return s.AuditLog
	case keyspace.CCWJUpdate:
		return s.CCWJUpdate
	case keyspace.UserFeedback:
		return s.UserFeedback
	case keyspace.WorkflowEvent:
		return s.WorkflowEvent
	}
	return Stream{}
}

// Stream is the retention of one stream: XADD … MAXLEN ~ MaxLen.
type Stream struct {
	MaxLen int64 `mapstructure:"maxlen"`
}

// Limits bound what one call may write.
type Limits struct {
	MaxEntryBytes int `mapstructure:"max_entry_bytes"`
}

// Audit controls the server's own record of every tool call.
type Audit struct {
	ToolCalls bool `mapstructure:"tool_calls"`
	// ToolCallsWait writes each call's record before the call is
	// answered (one more round trip per call); false writes it in the
	// background, batched (tools.Auditor says what a crash can lose).
	ToolCallsWait bool `mapstructure:"tool_calls_wait"`
	// StdioCaller is the caller stamped on what a stdio client writes;
	// "" means the OS user and host ("user@host").
	StdioCaller string `mapstructure:"stdio_caller"`
	// RecordArguments is what a call record keeps of the arguments:
	// "identifying" (the fields that name the action) or "all".
	RecordArguments string `mapstructure:"record_arguments"`
	// MaxClockSkew bounds how far in the future a caller's timestamp may be.
	MaxClockSkew time.Duration `mapstructure:"max_clock_skew"`
	// Chain lists the streams whose entries are hash-chained.
	Chain []string `mapstructure:"chain"`
	// SigningKeyFile holds the Ed25519 key that signs chain checkpoints;
	// generated on first start when absent. "" means the file
	// mcp-redis/audit-signing.key under the user's config directory.
	SigningKeyFile string `mapstructure:"signing_key_file"`
	// A checkpoint is signed every CheckpointEvery entries of a chained
	// stream, or every CheckpointInterval while it has new entries.
	CheckpointEvery    int           `mapstructure:"checkpoint_every"`
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
}

// Idempotency controls how long a caller-supplied log_id/event_id is
// remembered for retries.
type Idempotency struct {
	TTL time.Duration `mapstructure:"ttl"`
}

// Log controls the server's own log on stderr.
type Log struct {
	Level string `mapstructure:"level"`
}

// Embedded is the redis.url value that runs an in-process Redis.
const Embedded = "embedded"

// Defaults is the configuration when nothing is set.
func Defaults() Config {
	s := Stream{MaxLen: 100000}
	return Config{
		Redis: Redis{URL: Embedded, Prefix: "mcp:", Timeout: 2 * time.Second, TLS: TLS{MinVersion: "1.2"},
			WaitTimeout: time.Second},
		Streams: Streams{MaxBlock: 30 * time.Second, AuditLog: s, CCWJUpdate: s, UserFeedback: s, WorkflowEvent: s},
		Limits:  Limits{MaxEntryBytes: 64 << 10},
		Audit: Audit{ToolCalls: true, RecordArguments: "identifying", MaxClockSkew: 24 * time.Hour,
			Chain: []string{keyspace.AuditLog}, CheckpointEvery: 1000, CheckpointInterval: time.Minute},
		Idempotency: Idempotency{TTL: 24 * time.Hour},
		Groups:      Groups{ReclaimIdle: time.Minute, MaxDeliveries: 5},
		Log:         Log{Level: "info"},
		Transport:   "stdio",
		Stdio:       Stdio{MaxMessageBytes: 4 << 20},
		Locks:       Locks{MaxTTL: 10 * time.Minute, MaxWait: 30 * time.Second},
		Rate:        Rate{Policies: map[string]RatePolicy{"default": {Limit: 60, Window: time.Minute}}},
		HTTP: HTTP{
			Listen: "127.0.0.1:8080", MaxBodyBytes: 1 << 20, AllowedOrigins: []string{},
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 90 * time.Second,
			IdleTimeout: 2 * time.Minute, ShutdownTimeout: 15 * time.Second,
			MaxConnections: 1024, MaxSessions: 2000, SessionIdleTimeout: 10 * time.Minute, UI: "auto",
			OAuth: OAuth{AuthorizationServers: []string{}, Algorithms: []string{"RS256", "ES256"},
				ClockSkew: time.Minute, JWKSRefreshInterval: 5 * time.Minute, NameClaim: "sub"},
		},
		Tools: Tools{Enabled: []string{}, Disabled: []string{}},
	}
}

// defaultsMap flattens Defaults into viper keys; it is also the list of
// every known key.
func defaultsMap() map[string]any {
	d := Defaults()
	m := map[string]any{
		"redis.url":                        d.Redis.URL,
		"redis.prefix":                     d.Redis.Prefix,
		"redis.timeout":                    d.Redis.Timeout,
		"redis.tls.ca_file":                d.Redis.TLS.CAFile,
		"redis.tls.cert_file":              d.Redis.TLS.CertFile,
		"redis.tls.key_file":               d.Redis.TLS.KeyFile,
		"redis.tls.server_name":            d.Redis.TLS.ServerName,
		"redis.tls.min_version":            d.Redis.TLS.MinVersion,
		"redis.tls.insecure_skip_verify":   d.Redis.TLS.InsecureSkipVerify,
		"redis.wait_replicas":              d.Redis.WaitReplicas,
		"redis.wait_timeout":               d.Redis.WaitTimeout,
		"redis.sharded_pubsub":             d.Redis.ShardedPubSub,
		"limits.max_entry_bytes":           d.Limits.MaxEntryBytes,
		"audit.tool_calls":                 d.Audit.ToolCalls,
		"audit.tool_calls_wait":            d.Audit.ToolCallsWait,
		"audit.stdio_caller":               d.Audit.StdioCaller,
		"audit.record_arguments":           d.Audit.RecordArguments,
		"audit.max_clock_skew":             d.Audit.MaxClockSkew,
		"audit.chain":                      d.Audit.Chain,
		"audit.signing_key_file":           d.Audit.SigningKeyFile,
		"audit.checkpoint_every":           d.Audit.CheckpointEvery,
		"audit.checkpoint_interval":        d.Audit.CheckpointInterval,
		"idempotency.ttl":                  d.Idempotency.TTL,
		"streams.max_block":                d.Streams.MaxBlock,
		"groups.reclaim_idle":              d.Groups.ReclaimIdle,
		"groups.max_deliveries":            d.Groups.MaxDeliveries,
		"log.level":                        d.Log.Level,
		"transport":                        d.Transport,
		"stdio.max_message_bytes":          d.Stdio.MaxMessageBytes,
		"locks.max_ttl":                    d.Locks.MaxTTL,
		"locks.max_wait":                   d.Locks.MaxWait,
		"http.listen":                      d.HTTP.Listen,
		"http.stateless":                   d.HTTP.Stateless,
		"http.allowed_origins":             []string{},
		"tools.read_only":                  d.Tools.ReadOnly,
		"tools.enabled":                    []string{},
		"tools.disabled":                   []string{},
		"http.max_body_bytes":              d.HTTP.MaxBodyBytes,
		"http.read_header_timeout":         d.HTTP.ReadHeaderTimeout,
		"http.read_timeout":                d.HTTP.ReadTimeout,
		"http.write_timeout":               d.HTTP.WriteTimeout,
		"http.idle_timeout":                d.HTTP.IdleTimeout,
		"http.shutdown_timeout":            d.HTTP.ShutdownTimeout,
		"http.max_connections":             d.HTTP.MaxConnections,
		"http.max_sessions":                d.HTTP.MaxSessions,
		"http.session_idle_timeout":        d.HTTP.SessionIdleTimeout,
		"http.ui":                          d.HTTP.UI,
		"http.oauth.issuer":                d.HTTP.OAuth.Issuer,
		"http.oauth.resource":              d.HTTP.OAuth.Resource,
		"http.oauth.authorization_servers": []string{},
		"http.oauth.jwks_url":              d.HTTP.OAuth.JWKSURL,
		"http.oauth.jwks_file":             d.HTTP.OAuth.JWKSFile,
		"http.oauth.jwks_refresh_interval": d.HTTP.OAuth.JWKSRefreshInterval,
		"http.oauth.algorithms":            d.HTTP.OAuth.Algorithms,
		"http.oauth.clock_skew":            d.HTTP.OAuth.ClockSkew,
		"http.oauth.name_claim":            d.HTTP.OAuth.NameClaim,
	}
	for name, p := range d.Rate.Policies {
		m["rate.policies."+name+".limit"] = p.Limit
		m["rate.policies."+name+".window"] = p.Window
	}
	for _, name := range keyspace.Streams {
		m["streams."+name+".maxlen"] = d.Streams.Get(name).MaxLen
	}
	return m
}

// Flags are the command-line flags that override configuration keys, by
// flag name → key.
var Flags = map[string]string{
	"redis-url": "redis.url",
	"prefix":    "redis.prefix",
	"transport": "transport",
	"log-level": "log.level",
	"listen":    "http.listen",
	"read-only": "tools.read_only",
}

// AddFlags declares --config and the override flags on fs.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "config file (default ./config.yaml when present)")
	fs.String("redis-url", "", `Redis URL: "embedded", redis://, rediss://, unix://, redis+sentinel://, redis+cluster:// (key redis.url)`)
	fs.String("prefix", "", `prefix of every key and channel (key redis.prefix, default "mcp:")`)
	fs.String("transport", "", `transport to serve: stdio or http (key transport, default stdio)`)
	fs.String("listen", "", `address for --transport http (key http.listen, default 127.0.0.1:8080)`)
	fs.String("log-level", "", "log level on stderr: debug, info, warn, error (key log.level)")
	fs.Bool("read-only", false, "offer only the tools that read (key tools.read_only)")
}

// Load reads the configuration. flags may be nil (no flags). Every problem
// found is reported in one error.
func Load(flags *pflag.FlagSet) (Config, error) {
	v := viper.New()
	for k, val := range defaultsMap() {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// A plain REDIS_URL is honoured when MCP_REDIS_REDIS_URL is unset.
	if _, ok := os.LookupEnv(EnvPrefix + "_REDIS_URL"); !ok {
		if _, ok := os.LookupEnv("REDIS_URL"); ok {
			_ = v.BindEnv("redis.url", "REDIS_URL")
		}
	}

	path, explicit := "", false
	if flags != nil {
		if f := flags.Lookup("config"); f != nil && f.Changed {
			path, explicit = f.Value.String(), true
		}
		for name, key := range Flags {
			if f := flags.Lookup(name); f != nil && f.Changed {
				v.Set(key, f.Value.String())
			}
		}
	}
	if !explicit {
		path = "config.yaml"
	}
	var problems []error
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		if explicit || !errors.Is(err, fs.ErrNotExist) {
			return Config{}, fmt.Errorf("read config %s: %w", path, err)
		}
	}

	known := defaultsMap()
	// settings are the keys the environment may set: the known ones and
	// the tokens and policies the file names.
	settings := slices.Collect(maps.Keys(known))
	for _, k := range v.AllKeys() {
		if _, ok := known[k]; ok {
			continue
		}
		if strings.HasPrefix(k, "http.oauth.scopes.") {
			continue // read by oauthScopes
		}
		if strings.HasPrefix(k, "http.auth_tokens.") || strings.HasPrefix(k, "http.token_scopes.") || strings.HasPrefix(k, "http.token_namespaces.") {
			settings = append(settings, k)
			continue
		}
		if _, field, ok := policyKey(k); ok {
			switch field {
			case "limit", "window":
				settings = append(settings, k)
				continue
			case "burst":
				problems = append(problems, fmt.Errorf("%s: not supported: the limiter is an exact sliding window, which never allows more than limit in any window; set limit and window", k))
				continue
			}
		}
		problems = append(problems, fmt.Errorf("%s: unknown key", k))
	}
	problems = append(problems, readEnv(v, settings)...)
	// Tokens, and their namespaces and scopes, may come from the
	// environment as name=value pairs:
	// MCP_REDIS_HTTP_AUTH_TOKENS="ci=…,alice=…",
	// MCP_REDIS_HTTP_TOKEN_NAMESPACES="ci=teamA,alice=teamB",
	// MCP_REDIS_HTTP_TOKEN_SCOPES="ci=streams:read locks,alice=admin".
	for _, e := range []struct{ key, value string }{
		{"http.auth_tokens", "token"},
		{"http.token_namespaces", "namespace"},
		{"http.token_scopes", "scopes (space-separated)"},
	} {
		problems = append(problems, namedPairs(v, e.key, e.value)...)
	}
	var c Config
	// A key that failed to decode is left zero in c: report why it failed,
	// not that zero is out of range.
	failed := map[string]bool{}
	if err := v.Unmarshal(&c); err != nil {
		for _, p := range decodeProblems(err) {
			if pr, ok := p.(*problem); ok {
				failed[pr.key] = true
			}
			problems = append(problems, p)
		}
	}
	scopes, err := oauthScopes(path, v.ConfigFileUsed() != "" && v.InConfig("http.oauth"))
	if err != nil {
		problems = append(problems, err)
	}
	c.HTTP.OAuth.Scopes = scopes
	for _, p := range c.problems() {
		if pr, ok := p.(*problem); !ok || !failed[pr.key] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return Config{}, &InvalidError{Problems: problems}
	}
	return c, nil
}

// InvalidError lists every problem of a configuration.
type InvalidError struct {
	Problems []error
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  - " + p.Error()
	}
	slices.Sort(lines)
	return "invalid configuration:\n" + strings.Join(lines, "\n")
}

// namedPairs sets key, a map by token name, from its environment variable
// when that is set: comma-separated name=value pairs, names lower-cased.
func namedPairs(v *viper.Viper, key, value string) []error {
	env, ok := os.LookupEnv(EnvName(key))
	if !ok || env == "" {
		return nil
	}
	var problems []error
	m := map[string]any{}
	for _, pair := range strings.Split(env, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || name == "" {
			problems = append(problems, fmt.Errorf("%s: each entry is name=%s", EnvName(key), value))
			continue
		}
		m[strings.ToLower(name)] = val
	}
	v.Set(key, m)
	return problems
}

// namespaceName is what a tenant namespace may be (http.token_namespaces).
var namespaceName = bounded{regexp.MustCompile(`^[A-Za-z0-9_-]+$`), 32}

// Namespaces are the distinct namespaces of http.token_namespaces, sorted.
func (h HTTP) Namespaces() []string {
	var out []string
	for _, ns := range h.TokenNamespaces {
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// ParseScopes reads a space-separated list of scopes (http.token_scopes):
// at least one, each one of Scopes.
func ParseScopes(s string) ([]string, error) {
	names := strings.Fields(s)
	if len(names) == 0 {
		return nil, fmt.Errorf("no scopes: give at least one of %s (a token not named here has every scope)", strings.Join(Scopes, ", "))
	}
	for _, n := range names {
		if !slices.Contains(Scopes, n) {
			msg := fmt.Sprintf("%q is not a scope (%s)", n, strings.Join(Scopes, ", "))
			if near, ok := suggest.Closest(n, Scopes); ok {
				msg += "; did you mean " + near + "?"
			}
			return nil, errors.New(msg)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// oauthScopes reads http.oauth.scopes from the file at path (when inFile)
// and MCP_REDIS_HTTP_OAUTH_SCOPES, which replaces it:
// "mcp:read=streams:read,mcp:write=streams:write locks". It keeps each
// scope as written: viper would fold its case and split it at dots.
func oauthScopes(path string, inFile bool) (map[string][]string, error) {
	const env = EnvPrefix + "_HTTP_OAUTH_SCOPES"
	if s := os.Getenv(env); s != "" {
		out := map[string][]string{}
		for _, pair := range strings.Split(s, ",") {
			scope, names, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || scope == "" {
				return nil, fmt.Errorf("%s: each entry is scope=names (the server's scopes, space-separated)", env)
			}
			out[scope] = strings.Fields(names)
		}
		return out, nil
	}
	if !inFile {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("http.oauth.scopes: %w", err)
	}
	var file struct {
		HTTP struct {
			OAuth struct {
				Scopes map[string][]string `yaml:"scopes"`
			} `yaml:"oauth"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		return nil, &problem{key: "http.oauth.scopes", msg: "a map of scope → list of the server's scopes (" + strings.Join(Scopes, ", ") + ")"}
	}
	return file.HTTP.OAuth.Scopes, nil
}

// Validate reports every problem of c at once, or nil.
func (c Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return &InvalidError{Problems: p}
	}
	return nil
}

// problem is one problem of one key.
type problem struct {
	key, msg string
}

func (p *problem) Error() string { return p.key + ": " + p.msg }

// decodeProblems splits viper's one decoding error ("decoding failed due
// to the following error(s): 'redis.timeout' …, 'streams.x.maxlen' …")
// into one problem per key.
func decodeProblems(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if n, ok := e.(interface {
			Name() string
			Unwrap() error
		}); ok && n.Name() != "" {
			out = append(out, &problem{key: n.Name(), msg: n.Unwrap().Error()})
			return
		}
		switch w := e.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range w.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(w.Unwrap())
		default:
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

func (c Config) problems() []error {
	var p []error
	add := func(key, format string, a ...any) {
		p = append(p, &problem{key: key, msg: fmt.Sprintf(format, a...)})
	}
	if err := ValidateURL(c.Redis.URL); err != nil {
		add("redis.url", "%v", err)
	}
	if err := keyspace.ValidatePrefix(c.Redis.Prefix); err != nil {
		add("redis.prefix", "%v", err)
	} else {
		for _, ns := range c.HTTP.Namespaces() {
			if err := keyspace.ValidatePrefix(c.Redis.Prefix + ns + ":"); err != nil && namespaceName.MatchString(ns) {
				add("http.token_namespaces", "the namespace %s makes the prefix %q: %v", ns, c.Redis.Prefix+ns+":", err)
			}
		}
	}
	if c.Redis.Timeout < 10*time.Millisecond || c.Redis.Timeout > time.Minute {
		add("redis.timeout", "%v is out of range (10ms to 1m)", c.Redis.Timeout)
	}
	p = append(p, c.Redis.TLS.problems()...)
	if n := c.Redis.WaitReplicas; n < 0 || n > 64 {
		add("redis.wait_replicas", "%d is out of range (0 to 64)", n)
	}
	if c.Redis.WaitReplicas > 0 {
		if c.Redis.URL == Embedded {
			add("redis.wait_replicas", "the embedded Redis has no replicas; set redis.url to a Redis with replicas, or leave redis.wait_replicas at 0")
		}
		if c.Redis.WaitTimeout < time.Millisecond || c.Redis.WaitTimeout >= c.Redis.Timeout {
			add("redis.wait_timeout", "%v must be at least 1ms and shorter than redis.timeout (%v): the WAIT runs within a call's Redis time", c.Redis.WaitTimeout, c.Redis.Timeout)
		}
	}
	if c.Redis.ShardedPubSub && c.Redis.URL == Embedded {
		add("redis.sharded_pubsub", "the embedded Redis has no sharded pub/sub (SPUBLISH, Redis 7); leave it off, or set redis.url")
	}
	if c.Redis.TLS.Set() && !TLSURL(c.Redis.URL) {
		add("redis.tls", "set, but redis.url does not use TLS: TLS is turned on by the URL (rediss://, rediss+sentinel://, rediss+cluster://); "+
			"redis.tls only refines it. Use a rediss URL or unset redis.tls")
	}
	for _, name := range keyspace.Streams {
		if n := c.Streams.Get(name).MaxLen; n < 1 {
			add("streams."+name+".maxlen", "%d must be at least 1", n)
		}
	}
	if n := c.Limits.MaxEntryBytes; n < 1024 || n > 16<<20 {
		add("limits.max_entry_bytes", "%d is out of range (1024 to 16777216)", n)
	}
	if c.Idempotency.TTL < time.Second {
		add("idempotency.ttl", "%v must be at least 1s", c.Idempotency.TTL)
	}
	if c.Streams.MaxBlock < 0 || c.Streams.MaxBlock > 5*time.Minute {
		add("streams.max_block", "%v is out of range (0 to 5m)", c.Streams.MaxBlock)
	}
	if c.Groups.ReclaimIdle < time.Second || c.Groups.ReclaimIdle > 24*time.Hour {
		add("groups.reclaim_idle", "%v is out of range (1s to 24h)", c.Groups.ReclaimIdle)
	}
	if n := c.Groups.MaxDeliveries; n < 1 || n > 1000 {
		add("groups.max_deliveries", "%d is out of range (1 to 1000)", n)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if n := c.Stdio.MaxMessageBytes; n < 64<<10 || n > 256<<20 {
		add("stdio.max_message_bytes", "%d is out of range (65536 to 268435456)", n)
	}
	if c.Locks.MaxTTL < 100*time.Millisecond || c.Locks.MaxTTL > 24*time.Hour {
		add("locks.max_ttl", "%v is out of range (100ms to 24h)", c.Locks.MaxTTL)
	}
	if c.Locks.MaxWait < 0 || c.Locks.MaxWait > 10*time.Minute {
		add("locks.max_wait", "%v is out of range (0 to 10m)", c.Locks.MaxWait)
	}
	if len(c.Rate.Policies) == 0 {
		add("rate.policies", "at least one policy is needed")
	}
	a := c.Audit
	if len(a.StdioCaller) > 256 || strings.ContainsFunc(a.StdioCaller, unicode.IsControl) {
		add("audit.stdio_caller", "must be at most 256 bytes, without control characters")
	}
	switch a.RecordArguments {
	case "identifying", "all":
	default:
		add("audit.record_arguments", "%q is not one of identifying, all", a.RecordArguments)
	}
	if a.MaxClockSkew < time.Second || a.MaxClockSkew > 365*24*time.Hour {
		add("audit.max_clock_skew", "%v is out of range (1s to 8760h)", a.MaxClockSkew)
	}
	for _, name := range a.Chain {
		if !slices.Contains(keyspace.Streams, name) {
			add("audit.chain", "%q is not one of %s", name, strings.Join(keyspace.Streams, ", "))
		}
	}
	if a.CheckpointEvery < 1 || a.CheckpointEvery > 1_000_000 {
		add("audit.checkpoint_every", "%d is out of range (1 to 1000000)", a.CheckpointEvery)
	}
	if a.CheckpointInterval < time.Second || a.CheckpointInterval > 24*time.Hour {
		add("audit.checkpoint_interval", "%v is out of range (1s to 24h)", a.CheckpointInterval)
	}
	for name, p := range c.Rate.Policies {
		key := "rate.policies." + name
		if !policyName.MatchString(name) {
			add(key, "policy names are 1 to 64 of a-z, 0-9, _ and -")
		}
		// A policy given by one variable alone has its other field zero.
		switch {
		case p.Limit == 0:
			add(key+".limit", "0 or not set: a policy needs a limit (1 to %d) and a window", MaxRateLimit)
		case p.Limit < 1 || p.Limit > MaxRateLimit:
			add(key+".limit", "%d is out of range (1 to %d)", p.Limit, MaxRateLimit)
		}
		switch {
		case p.Window == 0:
			add(key+".window", "0 or not set: a policy needs a window (10ms to 24h) and a limit")
		case p.Window < 10*time.Millisecond || p.Window > 24*time.Hour:
			add(key+".window", "%v is out of range (10ms to 24h)", p.Window)
		}
	}
	// The HTTP settings' values are checked whatever the transport: a
	// mistake is told when it is made, not the day the server is first
	// served over HTTP. What depends on serving HTTP is checked then.
	p = append(p, c.HTTP.problems()...)
	switch c.Transport {
	case "stdio":
	case "http":
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err == nil && !c.HTTP.Loopback() && len(c.HTTP.AuthTokens) == 0 && !c.HTTP.OAuth.Enabled() {
			add("http.listen", "%s is not a loopback address, and no bearer token is set: anyone who can reach it could call every tool. "+
				"Set http.auth_tokens (or MCP_REDIS_HTTP_AUTH_TOKENS=name=token) or http.oauth, or listen on 127.0.0.1", c.HTTP.Listen)
		}
		if c.HTTP.WriteTimeout <= c.Locks.MaxWait+c.Redis.Timeout {
			add("http.write_timeout", "%v must exceed locks.max_wait + redis.timeout (%v), or a waiting acquire_lock is cut off", c.HTTP.WriteTimeout, c.Locks.MaxWait+c.Redis.Timeout)
		}
		if c.HTTP.WriteTimeout <= c.Streams.MaxBlock+c.Redis.Timeout {
			add("http.write_timeout", "%v must exceed streams.max_block + redis.timeout (%v), or a waiting read_stream or claim_events is cut off", c.HTTP.WriteTimeout, c.Streams.MaxBlock+c.Redis.Timeout)
		}
	default:
		add("transport", "%q is not one of stdio, http", c.Transport)
	}
	return p
}

// MinTokenBytes is the shortest bearer token accepted.
const MinTokenBytes = 16

func (h HTTP) problems() []error {
	var p []error
	add := func(key, format string, a ...any) {
		p = append(p, fmt.Errorf("%s: "+format, append([]any{key}, a...)...))
	}
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		add("http.listen", "%q is not host:port", h.Listen)
	}
	seen := map[string]string{}
	for name, tok := range h.AuthTokens {
		if other, dup := seen[tok]; dup {
			a, b := min(name, other), max(name, other)
			add("http.auth_tokens."+b, "the same token as %s: each token must name one caller", a)
		}
		seen[tok] = name
		if !policyName.MatchString(name) {
			add("http.auth_tokens."+name, "token names are 1 to 64 of a-z, 0-9, _ and -")
		}
		if len(tok) < MinTokenBytes {
			add("http.auth_tokens."+name, "the token is shorter than %d bytes", MinTokenBytes)
		}
	}
	for name, ns := range h.TokenNamespaces {
		if _, ok := h.AuthTokens[name]; !ok {
			add("http.token_namespaces."+name, "names no token of http.auth_tokens")
		}
		if !namespaceName.MatchString(ns) {
			add("http.token_namespaces."+name, "%q: a namespace is 1 to 32 of A-Z, a-z, 0-9, _ and -", ns)
		}
	}
	for name, sc := range h.TokenScopes {
		if _, ok := h.AuthTokens[name]; !ok {
			add("http.token_scopes."+name, "names no token of http.auth_tokens")
		}
		if _, err := ParseScopes(sc); err != nil {
			add("http.token_scopes."+name, "%v", err)
		}
	}
	for _, o := range h.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			add("http.allowed_origins", "%q is not an origin (scheme://host[:port])", o)
		}
	}
	if h.MaxBodyBytes < 1024 || h.MaxBodyBytes > 256<<20 {
		add("http.max_body_bytes", "%d is out of range (1024 to 268435456)", h.MaxBodyBytes)
	}
	for key, d := range map[string]time.Duration{"read_header_timeout": h.ReadHeaderTimeout, "read_timeout": h.ReadTimeout,
		"write_timeout": h.WriteTimeout, "idle_timeout": h.IdleTimeout, "shutdown_timeout": h.ShutdownTimeout,
		"session_idle_timeout": h.SessionIdleTimeout} {
		if d < 100*time.Millisecond || d > 24*time.Hour {
			add("http."+key, "%v is out of range (100ms to 24h)", d)
		}
	}
	if h.MaxConnections < 8 || h.MaxConnections > 1<<20 {
		add("http.max_connections", "%d is out of range (8 to 1048576)", h.MaxConnections)
	}
	if h.MaxSessions < 1 || h.MaxSessions > 1<<20 {
		add("http.max_sessions", "%d is out of range (1 to 1048576)", h.MaxSessions)
	}
	if uiMode(h.UI) == "" {
		add("http.ui", "%q is not auto, true or false", h.UI)
	}
	return append(p, h.OAuth.problems()...)
}

// problems checks http.oauth: its values whether or not it is on, and
// that what identifies an authorization server is not set without an
// issuer.
func (o OAuth) problems() []error {
	var p []error
	add := func(key, format string, a ...any) {
		p = append(p, &problem{key: "http.oauth." + key, msg: fmt.Sprintf(format, a...)})
	}
	if o.JWKSRefreshInterval < 10*time.Second || o.JWKSRefreshInterval > 24*time.Hour {
		add("jwks_refresh_interval", "%v is out of range (10s to 24h)", o.JWKSRefreshInterval)
	}
	if o.ClockSkew < 0 || o.ClockSkew > MaxOAuthClockSkew {
		add("clock_skew", "%v is out of range (0 to 5m)", o.ClockSkew)
	}
	if len(o.Algorithms) == 0 {
		add("algorithms", "at least one is needed, of %s", strings.Join(OAuthAlgorithms, ", "))
	}
	for _, a := range o.Algorithms {
		switch {
		case strings.EqualFold(a, "none"):
			add("algorithms", "none is refused: a token must be signed")
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			add("algorithms", "%s is refused: an HMAC key would have to be shared with every resource server, which could then mint tokens; use one of %s", a, strings.Join(OAuthAlgorithms, ", "))
		case !slices.Contains(OAuthAlgorithms, a):
			add("algorithms", "%q is not one of %s", a, strings.Join(OAuthAlgorithms, ", "))
		}
	}
	if o.NameClaim == "" || len(o.NameClaim) > 64 || strings.ContainsFunc(o.NameClaim, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		add("name_claim", "%q is not a claim name (1 to 64 bytes, no spaces)", o.NameClaim)
	}
	for scope, names := range o.Scopes {
		if !oauthScope.MatchString(scope) {
			add("scopes", "%q is not an OAuth scope (RFC 6749 §3.3: printable ASCII without space, \" or \\)", scope)
		}
		if len(names) == 0 {
			add("scopes."+scope, "grants nothing: give a list of %s", strings.Join(Scopes, ", "))
		}
		for _, n := range names {
			if !slices.Contains(Scopes, n) {
				msg := fmt.Sprintf("%q is not one of the server's scopes (%s)", n, strings.Join(Scopes, ", "))
				if near, ok := suggest.Closest(n, Scopes); ok {
					msg += "; did you mean " + near + "?"
				}
				add("scopes."+scope, "%s", msg)
			}
		}
	}
	if !o.Enabled() {
		for key, set := range map[string]bool{"resource": o.Resource != "", "jwks_url": o.JWKSURL != "", "jwks_file": o.JWKSFile != "",
			"authorization_servers": len(o.AuthorizationServers) > 0, "scopes": len(o.Scopes) > 0} {
			if set {
				add(key, "set, but http.oauth.issuer is empty: OAuth is off without an issuer; set it too, or unset %s", "http.oauth."+key)
			}
		}
		return p
	}
	if err := oauthURL(o.Issuer); err != nil {
		add("issuer", "%v", err)
	}
	switch err := oauthURL(o.Resource); {
	case o.Resource == "":
		add("resource", "needed with http.oauth.issuer: this server's canonical URI, the audience its tokens carry (https://mcp.example.com/mcp)")
	case err != nil:
		add("resource", "%v", err)
	}
	for _, s := range o.AuthorizationServers {
		if err := oauthURL(s); err != nil {
			add("authorization_servers", "%v", err)
		}
	}
	switch {
	case o.JWKSURL == "" && o.JWKSFile == "":
		add("jwks_url", "needed with http.oauth.issuer (or http.oauth.jwks_file): where the authorization server publishes its signing keys")
	case o.JWKSURL != "" && o.JWKSFile != "":
		add("jwks_file", "set with http.oauth.jwks_url: set exactly one")
	case o.JWKSURL != "":
		if err := oauthURL(o.JWKSURL); err != nil {
			add("jwks_url", "%v", err)
		}
	default:
		if err := jwksFile(o.JWKSFile); err != nil {
			add("jwks_file", "%v", err)
		}
	}
	return p
}

// oauthScope is a scope token of RFC 6749 §3.3.
var oauthScope = bounded{regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`), 256}

// oauthURL checks a URL of http.oauth: absolute, without a fragment, and
// https, or http on a loopback host (an authorization server on this
// machine, as in the tests).
func oauthURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an absolute https URL", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q has a fragment, which RFC 8707 and RFC 8414 forbid", raw)
	}
	if u.Scheme == "http" && !(HTTP{Listen: net.JoinHostPort(u.Hostname(), "0")}).Loopback() {
		return fmt.Errorf("%q is not https: only a loopback host may be reached over plain http", raw)
	}
	return nil
}

// jwksFile checks that path holds a JWK Set with at least one key.
func jwksFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return fmt.Errorf("%s is not a JWK Set (RFC 7517): %v", path, err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("%s holds no key", path)
	}
	return nil
}

// MaxRateLimit bounds a policy's limit: the sliding window keeps one
// member per unit in Redis.
const MaxRateLimit = 10000

var policyName = bounded{regexp.MustCompile(`^[a-z0-9_-]+$`), 64}

// bounded is a pattern of one ASCII class, repeated, and a bound on its
// length: ^[class]{1,max}$ written so. Go's regexp compiles a {1,max}
// repetition into max copies of the class, which cost every start of the
// server a third of a millisecond for {1,256}.
type bounded struct {
	re  *regexp.Regexp
	max int
}

// MatchString reports whether s is 1 to max characters of the class.
func (b bounded) MatchString(s string) bool { return len(s) <= b.max && b.re.MatchString(s) }

// policyKey splits "rate.policies.<name>.<field>".
func policyKey(k string) (name, field string, ok bool) {
	rest, ok := strings.CutPrefix(k, "rate.policies.")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// NotSettings are the project's own MCP_REDIS_* variables that configure
// no server: the tests, docker-compose.yml and e2e/node read them, and
// the server inherits them, so they must not be reported as unknown.
var NotSettings = []string{
	EnvPrefix + "_TEST_URL",        // internal/testredis: the Redis the tests use
	EnvPrefix + "_TOKEN",           // docker-compose.yml, e2e/node: a client's bearer token
	EnvPrefix + "_E2E_BIN",         // cmd/mcp-redis: the binary the e2e tests run
	EnvPrefix + "_E2E_LOCK_ROUNDS", // cmd/mcp-redis: rounds of the lock e2e test
	EnvPrefix + "_LOAD_CALLS",      // cmd/mcp-redis: calls of the load test
	EnvPrefix + "_SCREENSHOTS",     // cmd/mcp-redis: where dashboard screenshots go
	EnvPrefix + "_CLIENT_SECRET",   // e2e/node/oauth.mjs: the OAuth client's secret
	EnvPrefix + "_CHROMIUM",        // cmd/mcp-redis, e2e/node: the browser to drive
}

// EnvName is the environment variable of a key: redis.url is
// MCP_REDIS_REDIS_URL.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// readEnv sets the rate policies the environment defines and reports
// every MCP_REDIS_* variable that is not a setting. settings are the keys
// viper's AutomaticEnv already reads.
//
// viper reads a variable only for a key it knows from elsewhere, so a
// policy named only in the environment, MCP_REDIS_RATE_POLICIES_<NAME>_LIMIT
// and _WINDOW, is set here, under its name in lower case. A name with "-"
// in it (strict-api) may be written with "_" (STRICT_API) when the
// defaults or the file name that policy, since a shell cannot export a
// name with "-".
func readEnv(v *viper.Viper, settings []string) []error {
	known := map[string]bool{EnvPrefix + "_HTTP_AUTH_TOKENS": true, EnvPrefix + "_HTTP_TOKEN_SCOPES": true, EnvPrefix + "_HTTP_TOKEN_NAMESPACES": true, EnvPrefix + "_HTTP_OAUTH_SCOPES": true}
	var policies []string
	for _, k := range settings {
		known[EnvName(k)] = true
		if name, _, ok := policyKey(k); ok && !slices.Contains(policies, name) {
			policies = append(policies, name)
		}
	}
	candidates := slices.Sorted(maps.Keys(known))
	var p []error
	bad := func(name, format string, a ...any) {
		p = append(p, &problem{key: name, msg: fmt.Sprintf(format, a...)})
	}
	const policyPrefix = EnvPrefix + "_RATE_POLICIES_"
	for _, kv := range os.Environ() {
		name, val, _ := strings.Cut(kv, "=")
		// viper treats an empty variable as unset; so does this.
		if !strings.HasPrefix(name, EnvPrefix+"_") || val == "" || known[name] || slices.Contains(NotSettings, name) {
			continue
		}
		near := candidates
		if rest, ok := strings.CutPrefix(name, policyPrefix); ok {
			if i := strings.LastIndexByte(rest, '_'); i > 0 {
				policy, field := strings.ToLower(rest[:i]), strings.ToLower(rest[i+1:])
				switch field {
				case "limit", "window":
					if !policyName.MatchString(policy) {
						bad(name, "policy names are 1 to 64 of a-z, 0-9, _ and - (the variable's name in lower case)")
						continue
					}
					for _, named := range policies {
						if named != policy && strings.ReplaceAll(named, "-", "_") == policy {
							policy = named
						}
					}
					key := "rate.policies." + policy + "." + field
					if other := EnvName(key); other != name && os.Getenv(other) != "" {
						bad(name, "sets %s, as %s does: set one of them", key, other)
						continue
					}
					v.Set(key, val)
					continue
				case "burst":
					bad(name, "not supported: the limiter is an exact sliding window, which never allows more than limit in any window; set %s_LIMIT and %s_WINDOW",
						policyPrefix+rest[:i], policyPrefix+rest[:i])
					continue
				}
				near = append(slices.Clip(candidates), policyPrefix+rest[:i]+"_LIMIT", policyPrefix+rest[:i]+"_WINDOW")
			}
		}
		if strings.HasPrefix(name, EnvPrefix+"_HTTP_AUTH_TOKENS_") {
			bad(name, "not a setting: tokens are given as %s_HTTP_AUTH_TOKENS=name=token,… or under http.auth_tokens in the file", EnvPrefix)
			continue
		}
		if s, ok := suggest.Closest(name, near); ok {
			bad(name, "not a setting; did you mean %s?", s)
			continue
		}
		switch {
		case strings.HasPrefix(name, policyPrefix):
			bad(name, "not a setting: a policy is given as %s<NAME>_LIMIT and %s<NAME>_WINDOW", policyPrefix, policyPrefix)
		default:
			bad(name, "not a setting: a key is set by %s_ and the key in upper case with dots as underscores, as redis.url by %s", EnvPrefix, EnvName("redis.url"))
		}
	}
	return p
}

// URL schemes accepted by redis.url besides the word "embedded".
var schemes = []string{"redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"}

// ValidateURL checks the form of a redis.url value without connecting.
func ValidateURL(s string) error {
	if s == Embedded {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v%s", redactURLError(err), userinfoHint(s))
	}
	if !slices.Contains(schemes, u.Scheme) {
		return fmt.Errorf("scheme %q is not one of embedded, %s", u.Scheme, strings.Join(schemes, ", "))
	}
	if u.Scheme == "unix" && u.Path == "" {
		return fmt.Errorf("unix URL needs a socket path (unix:///run/redis.sock)")
	}
	if u.Scheme != "unix" && u.Host == "" {
		return fmt.Errorf("needs a host (redis://127.0.0.1:6379)")
	}
	// The path is a database number. Anything else is most often a
	// password with an unencoded "/" (redis://u:p/w@h): don't echo it.
	db := strings.Trim(u.Path, "/")
	if u.Scheme != "unix" && strings.Trim(db, "0123456789") != "" {
		return fmt.Errorf("the path must be a database number (redis://127.0.0.1:6379/0)%s", userinfoHint(s))
	}
	if strings.HasSuffix(u.Scheme, "+cluster") && strings.Trim(db, "0") != "" {
		return fmt.Errorf("a cluster has only database 0")
	}
	return nil
}

// quoted matches the parts of a net/url error that quote the input
// (`invalid port ":s3cret" after host`).
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// redactURLError keeps a malformed URL, and so a password in it, out of
// messages: it drops the URL and every quoted piece of it.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return errors.New(quoted.ReplaceAllString(err.Error(), "…"))
}

// userinfoHint is a hint for a URL with a user or password in it.
func userinfoHint(s string) string {
	if strings.Contains(s, "@") {
		return "; percent-encode any @ : / ? # in the user name and password"
	}
	return ""
}
