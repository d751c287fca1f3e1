// Package rdb opens the Redis connection the server uses, a go-redis
// UniversalClient built from a URL (the embedded default is package
// embedded's, reached by its URL), and holds what the Redis layer shares:
// error classes, the write scripts' prelude, WAIT after writes.
package rdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Conn is an open connection to Redis.
type Conn struct {
	Client redis.UniversalClient
	// Writer runs the write scripts: Client itself, or, with
	// redis.wait_replicas, a Durable over it.
	Writer redis.UniversalClient
}

// Close closes the client.
func (c *Conn) Close() error { return c.Client.Close() }

// Options say which Redis to open and how. They are plain values, so this
// package does not depend on how the server is configured.
type Options struct {
	URL string // see ParseURL
	// Timeout bounds every command (see tune).
	Timeout time.Duration
	TLS     TLS
	// WaitReplicas, when above 0, makes Conn.Writer a Durable waiting up
	// to WaitTimeout for that many replicas after each write script.
	WaitReplicas int
	WaitTimeout  time.Duration
}

// TLS refines the TLS a rediss URL turns on (see secure).
type TLS struct {
	CAFile, CertFile, KeyFile string
	ServerName, MinVersion    string
	InsecureSkipVerify        bool
}

// Set reports whether any setting differs from its default.
func (t TLS) Set() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" ||
		(t.MinVersion != "" && t.MinVersion != "1.2") || t.InsecureSkipVerify
}

// Open connects to the Redis named by cfg.URL. It does not wait for Redis to
// answer: a server whose Redis is down starts, answers every call with a
// tool error, and recovers when Redis returns.
func Open(cfg Options, log *slog.Logger) (*Conn, error) {
	opts, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := secure(opts, cfg.TLS); err != nil {
		return nil, err
	}
	if opts.TLSConfig != nil && opts.TLSConfig.InsecureSkipVerify {
		log.Warn("INSECURE: redis TLS certificate verification is OFF (redis.tls.insecure_skip_verify or ?skip_verify=true): " +
			"anyone on the network path can impersonate Redis and read or change every entry, lock and token. " +
			"Set redis.tls.ca_file instead; use this for tests only")
	}
	tune(opts, cfg.Timeout)
	conn := &Conn{}
	var r *reloader
	if opts.IsClusterMode {
		cc := redis.NewClusterClient(opts.Cluster())
		r = &reloader{cc: cc}
		cc.AddHook(hook{r})
		conn.Client = cc
	} else {
		conn.Client = redis.NewUniversalClient(opts)
	}
	conn.Writer = conn.Client
	if cfg.WaitReplicas > 0 {
		conn.Writer = &Durable{UniversalClient: conn.Client, replicas: cfg.WaitReplicas, timeout: cfg.WaitTimeout, reload: r}
	}
	return conn, nil
}

// secure builds the one *tls.Config every connection uses (for Sentinel
// and Cluster: to every sentinel, master, replica and node, as go-redis
// shares it) from the TLS the URL turned on, refined by s. With a URL
// without TLS, s must be unset.
//
// ServerName: for a single node it is the URL's host. For Sentinel and
// Cluster it is left empty, so each connection is checked against the host
// it dials (the seed, then the addresses Sentinel or CLUSTER SLOTS give):
// go-redis's own default, the first seed's host, would check every node's
// certificate against that one name. s.ServerName pins every node to one
// name, for nodes that share a certificate.
func secure(o *redis.UniversalOptions, s TLS) error {
	if o.TLSConfig == nil {
		if s.Set() {
			return errors.New("redis.tls: set, but redis.url does not use TLS (rediss://, rediss+sentinel://, rediss+cluster://)")
		}
		return nil
	}
	c := &tls.Config{
		ServerName:         o.TLSConfig.ServerName,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: o.TLSConfig.InsecureSkipVerify || s.InsecureSkipVerify,
	}
	if o.IsClusterMode || o.MasterName != "" {
		c.ServerName = ""
	}
	if s.ServerName != "" {
		c.ServerName = s.ServerName
	}
	switch s.MinVersion {
	case "", "1.2":
	case "1.3":
		c.MinVersion = tls.VersionTLS13
	default:
		return fmt.Errorf("redis.tls.min_version: %q is not one of 1.2, 1.3", s.MinVersion)
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return fmt.Errorf("redis.tls.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("redis.tls.ca_file: %s holds no PEM certificate", s.CAFile)
		}
	}
	if s.CertFile != "" || s.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return fmt.Errorf("redis.tls.cert_file, key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	o.TLSConfig = c
	return nil
}

// tune applies the server's timeout policy. Every command is bounded by
// timeout, context deadlines become socket deadlines, and no command is
// retried by the client library: a retried XADD whose first reply was lost
// would append twice (idempotent retries are the caller's, by log_id).
func tune(o *redis.UniversalOptions, timeout time.Duration) {
	o.DialTimeout = timeout
	o.ReadTimeout = timeout
	o.WriteTimeout = timeout
	o.PoolTimeout = timeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	// CLIENT SETINFO, which Redis 7.0 refuses: every connection would
	// count a reply error on a healthy server.
	o.DisableIdentity = true
	if o.ClientName == "" {
		o.ClientName = "mcp-redis"
	}
}

// ParseURL turns a redis.url into client options. Accepted forms:
//
//	redis://[user:pass@]host:port[/db][?options]   single node
//	rediss://…                                     single node over TLS
//	unix:///path/to/redis.sock[?db=N]              Unix socket
//	redis+sentinel://[user:pass@]host:port[,host:port…]?master_name=NAME[&…]
//	redis+cluster://[user:pass@]host:port[,host:port…][?…]
//
// The rediss+sentinel and rediss+cluster forms use TLS, which Open refines
// by redis.tls (see secure). Options are
// go-redis URL options (pool_size, max_active_conns, …); an unknown one is
// an error. Open replaces timeouts and retries given there by its own
// policy (see tune). For Sentinel the URL's user and password are the
// Sentinel's, and the master's are given as ?username=&password=.
func ParseURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("redis.url: not a URL")
	}
	scheme, mode, _ := strings.Cut(u.Scheme, "+")
	// The path is a database number. go-redis echoes a bad one, and a bad
	// one is most often a password with an unencoded "/" (redis://u:p/w@h).
	db := strings.Trim(u.Path, "/")
	if scheme != "unix" && strings.Trim(db, "0123456789") != "" {
		return nil, errors.New("redis.url: the path must be a database number (redis://host:6379/0)")
	}
	if mode == "cluster" && strings.Trim(db, "0") != "" {
		return nil, errors.New("redis.url: a cluster has only database 0")
	}
	switch mode {
	case "":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("redis.url: %w", err)
		}
		return &redis.UniversalOptions{
			Addrs: []string{o.Addr}, Username: o.Username, Password: o.Password,
			DB: o.DB, TLSConfig: o.TLSConfig, ClientName: o.ClientName, Protocol: o.Protocol,
			PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials,
			MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
			ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
			ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		}, nil
	case "sentinel", "cluster":
	default:
		return nil, fmt.Errorf("redis.url: unknown scheme %q", u.Scheme)
	}
	// Hosts may be listed comma-separated; go-redis takes extra ones as addr=.
	hosts := strings.Split(u.Host, ",")
	u.Scheme, u.Host = scheme, hosts[0]
	q := u.Query()
	for _, h := range hosts[1:] {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return nil, fmt.Errorf("redis.url: host %q: %v", h, err)
		}
		q.Add("addr", h)
	}
	u.RawQuery = q.Encode()
	if mode == "sentinel" {
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redis.url: %w", err)
		}
		if o.MasterName == "" {
			return nil, errors.New("redis.url: a sentinel URL needs ?master_name=")
		}
		return &redis.UniversalOptions{
			Addrs: o.SentinelAddrs, MasterName: o.MasterName,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig,
			ClientName: o.ClientName, Protocol: o.Protocol,
			PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials,
			MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
			ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
			ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		}, nil
	}
	o, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	return &redis.UniversalOptions{
		Addrs: o.Addrs, IsClusterMode: true, Username: o.Username, Password: o.Password,
		TLSConfig: o.TLSConfig, ClientName: o.ClientName, Protocol: o.Protocol,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, MaxConcurrentDials: o.MaxConcurrentDials,
		MinIdleConns: o.MinIdleConns, MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
		ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter, MaxRedirects: o.MaxRedirects, ReadOnly: o.ReadOnly,
	}, nil
}

// Ping asks Redis for PONG within the client's timeout.
func Ping(ctx context.Context, c redis.UniversalClient) error {
	return c.Ping(ctx).Err()
}

// SetLogger sends go-redis's own log lines (failed dials, pool notices) to
// log at debug level, instead of its default of raw lines on stderr: a
// Redis that is down already shows as a tool error on every call.
func SetLogger(log *slog.Logger) {
	redis.SetLogger(redisLogger{log})
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
