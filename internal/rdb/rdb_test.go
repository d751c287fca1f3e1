package rdb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	embeddedredis "github.com/mcp-redis/mcp-redis/internal/embedded"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

var quiet = slog.New(slog.DiscardHandler)

// embedded is redis.url's value for the in-process Redis.
const embedded = "embedded"

// openEmbedded opens a Conn to a fresh in-process Redis, stopped when the
// test ends.
func openEmbedded(t *testing.T, timeout time.Duration) (*Conn, *embeddedredis.Redis) {
	t.Helper()
	e, err := embeddedredis.Start(quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	c, err := Open(Options{URL: e.URL(), Timeout: timeout}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, e
}

func parse(t *testing.T, raw string) *redis.UniversalOptions {
	t.Helper()
	o, err := ParseURL(raw)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", raw, err)
	}
	return o
}

// open opens url, or a fresh in-process Redis for "embedded".
func open(t *testing.T, url string, timeout time.Duration) *Conn {
	t.Helper()
	if url == embedded {
		c, _ := openEmbedded(t, timeout)
		return c
	}
	c, err := Open(Options{URL: url, Timeout: timeout}, quiet)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// options returns the options of a single-node or failover client.
func options(t *testing.T, c redis.UniversalClient) *redis.Options {
	t.Helper()
	rc, ok := c.(*redis.Client)
	if !ok {
		t.Fatalf("client is %T; want *redis.Client", c)
	}
	return rc.Options()
}

func TestParseURLMapsEachFormToItsOptions(t *testing.T) {
	tlsFor := func(host string) *tls.Config { return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12} }
	for _, tc := range []struct {
		url  string
		want redis.UniversalOptions
	}{
		{"redis://127.0.0.1:6379",
			redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}}},
		{"redis://cache.example.com",
			redis.UniversalOptions{Addrs: []string{"cache.example.com:6379"}}},
		{"redis://user:pa%40ss%2Fw@10.0.0.1:6380/3",
			redis.UniversalOptions{Addrs: []string{"10.0.0.1:6380"}, Username: "user", Password: "pa@ss/w", DB: 3}},
		{"redis://:onlypass@h:1/",
			redis.UniversalOptions{Addrs: []string{"h:1"}, Password: "onlypass"}},
		{"redis://[::1]:6379/2",
			redis.UniversalOptions{Addrs: []string{"[::1]:6379"}, DB: 2}},
		{"redis://h:1?protocol=2&client_name=me&pool_size=7&min_idle_conns=1&max_idle_conns=2&max_active_conns=9&conn_max_idle_time=30s",
			redis.UniversalOptions{Addrs: []string{"h:1"}, Protocol: 2, ClientName: "me", PoolSize: 7,
				MinIdleConns: 1, MaxIdleConns: 2, MaxActiveConns: 9, ConnMaxIdleTime: 30 * time.Second}},
		{"rediss://secure.example.com:6380/1",
			redis.UniversalOptions{Addrs: []string{"secure.example.com:6380"}, DB: 1, TLSConfig: tlsFor("secure.example.com")}},
		{"unix:///run/redis/redis.sock",
			redis.UniversalOptions{Addrs: []string{"/run/redis/redis.sock"}}},
		{"unix://u:p@/run/redis.sock?db=5",
			redis.UniversalOptions{Addrs: []string{"/run/redis.sock"}, Username: "u", Password: "p", DB: 5}},
		{"redis+sentinel://s1:26379,s2:26380,s3:26381?master_name=mymaster",
			redis.UniversalOptions{Addrs: []string{"s1:26379", "s2:26380", "s3:26381"}, MasterName: "mymaster"}},
		{"redis+sentinel://su:sp@s1:26379,s2:26380/4?master_name=m&username=mu&password=mp&pool_size=3",
			redis.UniversalOptions{Addrs: []string{"s1:26379", "s2:26380"}, MasterName: "m", DB: 4,
				SentinelUsername: "su", SentinelPassword: "sp", Username: "mu", Password: "mp", PoolSize: 3}},
		{"rediss+sentinel://s1:26379?master_name=m",
			redis.UniversalOptions{Addrs: []string{"s1:26379"}, MasterName: "m", TLSConfig: tlsFor("s1")}},
		{"redis+cluster://n1:7000",
			redis.UniversalOptions{Addrs: []string{"n1:7000"}, IsClusterMode: true}},
		{"redis+cluster://u:p@n1:7000,n2:7001,n3:7002/0?max_redirects=5&read_only=true&max_active_conns=4",
			redis.UniversalOptions{Addrs: []string{"n1:7000", "n2:7001", "n3:7002"}, IsClusterMode: true,
				Username: "u", Password: "p", MaxRedirects: 5, ReadOnly: true, MaxActiveConns: 4}},
		{"rediss+cluster://n1:7000,n2:7001",
			redis.UniversalOptions{Addrs: []string{"n1:7000", "n2:7001"}, IsClusterMode: true,
				TLSConfig: &tls.Config{ServerName: "n1"}}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got := parse(t, tc.url)
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("ParseURL(%q)\n got %+v\nwant %+v", tc.url, *got, tc.want)
			}
		})
	}
}

func TestSkipVerifyTurnsOffCertificateChecksOnlyWhenAsked(t *testing.T) {
	if o := parse(t, "rediss://h:6380?skip_verify=true"); o.TLSConfig == nil || !o.TLSConfig.InsecureSkipVerify {
		t.Errorf("skip_verify=true gave TLSConfig %+v", o.TLSConfig)
	}
	if o := parse(t, "rediss://h:6380"); o.TLSConfig == nil || o.TLSConfig.InsecureSkipVerify {
		t.Errorf("plain rediss:// gave TLSConfig %+v", o.TLSConfig)
	}
}

func TestParseURLRejectsBadURLs(t *testing.T) {
	for _, raw := range []string{
		"",
		"embedded", // Open handles it; it is not a URL
		"127.0.0.1:6379",
		"http://h:1",
		"redis+foo://h:1",
		"redis+sentinel+cluster://h:1",
		"redis://h:1/%zz",
		"redis://h:notaport",
		"redis://h:1/db3",
		"redis://h:1/1/2",
		"redis://h:1?db=x",
		"redis://h:1?foo=bar",              // unknown option
		"rediss://h:1?skip_verify=perhaps", // bad option value
		"unix://",                          // no socket path
		"unix:///run/redis.sock?foo=1",     // unknown option
		"redis+sentinel://s1:26379",        // no master_name
		"redis+sentinel://s1:26379,s2:26380?master_name=",  // empty master_name
		"redis+sentinel://s1:26379?master_name=m&foo=1",    // unknown option
		"redis+sentinel://s1:26379,s2?master_name=m",       // extra host without port
		"redis+sentinel://s1:26379,,s2:1?master_name=m",    // empty host
		"redis+cluster://n1:7000,n2",                       // extra host without port
		"redis+cluster://n1:7000?foo=1",                    // unknown option
		"redis+cluster://n1:7000?master_name=m",            // a sentinel option
		"redis+cluster://n1:7000/3",                        // a cluster has only db 0
		"unix+cluster:///run/redis.sock",                   // no such thing
		"redis+sentinel://s1:26379/x?master_name=m",        // bad db
		"redis+sentinel://s1:26379?master_name=m&db=x",     // bad db
		"redis+cluster://n1:7000?max_redirects=lots",       // bad value
		"redis+sentinel://s1:26379?master_name=m&addr=bad", // bad extra address
	} {
		if o, err := ParseURL(raw); err == nil {
			t.Errorf("ParseURL(%q) = %+v; want an error", raw, o)
		} else if !strings.HasPrefix(err.Error(), "redis.url: ") {
			t.Errorf("ParseURL(%q) error %q does not name redis.url", raw, err)
		}
	}
}

func TestParseURLNeverEchoesAPassword(t *testing.T) {
	const secret = "S3cretPw"
	for _, raw := range []string{
		"redis://user:" + secret + "/x@host:6379",
		"redis://user:123/" + secret + "@host:6379",
		"redis://user:" + secret + "?q@host:6379",
		"redis://user:" + secret + "%zz@host:6379",
		"redis://user:" + secret + "@ho st:6379",
		"redis+sentinel://:" + secret + "/@h1:1,h2:2?master_name=m",
		"redis+cluster://:123/" + secret + "@h1:1,h2:2",
		"redis+sentinel://s:1?master_name=m&password=" + secret + "&bogus=1",
	} {
		_, err := ParseURL(raw)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded; want an error", raw)
			continue
		}
		if strings.Contains(err.Error(), secret[:4]) || strings.Contains(err.Error(), secret[4:]) {
			t.Errorf("ParseURL(%q) error shows the password: %v", raw, err)
		}
	}
}

func TestEachFormMakesTheRightKindOfClient(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want any
	}{
		{"redis://127.0.0.1:1", &redis.Client{}},
		{"unix:///nonexistent.sock", &redis.Client{}},
		{"redis+sentinel://127.0.0.1:1,127.0.0.1:2?master_name=m", &redis.Client{}}, // a failover client
		{"redis+cluster://127.0.0.1:1", &redis.ClusterClient{}},                     // one seed is still a cluster
		{"redis+cluster://127.0.0.1:1,127.0.0.1:2", &redis.ClusterClient{}},
	} {
		c := redis.NewUniversalClient(parse(t, tc.url))
		if reflect.TypeOf(c) != reflect.TypeOf(tc.want) {
			t.Errorf("%s made a %T; want %T", tc.url, c, tc.want)
		}
		_ = c.Close()
	}
}

func TestTuneBoundsEveryCommandByTheTimeoutAndNeverRetries(t *testing.T) {
	o := parse(t, "redis://h:1?dial_timeout=30s&read_timeout=30s&write_timeout=30s&pool_timeout=30s&max_retries=5")
	tune(o, 750*time.Millisecond)
	want := redis.UniversalOptions{
		Addrs:       []string{"h:1"},
		DialTimeout: 750 * time.Millisecond, ReadTimeout: 750 * time.Millisecond,
		WriteTimeout: 750 * time.Millisecond, PoolTimeout: 750 * time.Millisecond,
		ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1, ClientName: "mcp-redis",
		DisableIdentity: true,
	}
	if !reflect.DeepEqual(*o, want) {
		t.Errorf("tuned options\n got %+v\nwant %+v", *o, want)
	}
	o = parse(t, "redis://h:1?client_name=mine")
	tune(o, time.Second)
	if o.ClientName != "mine" {
		t.Errorf("tune replaced the URL's client_name with %q", o.ClientName)
	}
}

func TestOpenAppliesTheTimeoutPolicyToTheClient(t *testing.T) {
	c := open(t, "redis://127.0.0.1:6379", 1500*time.Millisecond)
	o := options(t, c.Client)
	if o.ReadTimeout != 1500*time.Millisecond || o.WriteTimeout != 1500*time.Millisecond ||
		o.DialTimeout != 1500*time.Millisecond || o.PoolTimeout != 1500*time.Millisecond {
		t.Errorf("timeouts: dial %v read %v write %v pool %v; want 1.5s each", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout)
	}
	// go-redis turns MaxRetries -1 into 0 (no retries) when it builds the client.
	if !o.ContextTimeoutEnabled || o.MaxRetries != 0 || o.ClientName != "mcp-redis" {
		t.Errorf("ContextTimeoutEnabled %v MaxRetries %d ClientName %q", o.ContextTimeoutEnabled, o.MaxRetries, o.ClientName)
	}
}

func TestOpenRejectsABadURLWithoutConnecting(t *testing.T) {
	if c, err := Open(Options{URL: "redis+sentinel://h:1", Timeout: time.Second}, quiet); err == nil {
		_ = c.Close()
		t.Fatal("Open of a sentinel URL without master_name succeeded")
	}
}

func TestTheEmbeddedBackendAnswersPing(t *testing.T) {
	c, e := openEmbedded(t, 2*time.Second)
	ctx := context.Background()
	if err := Ping(ctx, c.Client); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if got, err := c.Client.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", got, err)
	}
	if err := c.Client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got := e.Keys(); !reflect.DeepEqual(got, []string{"k"}) {
		t.Errorf("embedded keys = %v; want [k] (the client talks to this miniredis)", got)
	}
}

// The embedded Redis listens on loopback, where any local user can
// connect: without this run's password it answers nothing but NOAUTH.
func TestTheEmbeddedBackendRefusesAClientWithoutItsPassword(t *testing.T) {
	c, e := openEmbedded(t, 2*time.Second)
	ctx := context.Background()
	if err := c.Client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("the server's own client: %v", err)
	}
	stranger := redis.NewClient(&redis.Options{Addr: e.Addr(), DisableIdentity: true})
	defer stranger.Close()
	if err := stranger.Set(ctx, "k", "evil", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("SET without the password = %v; want NOAUTH", err)
	}
	if got, _ := c.Client.Get(ctx, "k").Result(); got != "v" {
		t.Errorf("k = %q after the stranger's SET; want v", got)
	}
}

func TestEmbeddedKeysExpireOnTheWallClock(t *testing.T) {
	c := open(t, embedded, 2*time.Second)
	ctx := context.Background()
	set := time.Now()
	if err := c.Client.Set(ctx, "lock", "me", 200*time.Millisecond).Err(); err != nil {
		t.Fatalf("SET PX 200: %v", err)
	}
	n, err := c.Client.Exists(ctx, "lock").Result()
	if err != nil {
		t.Fatalf("EXISTS: %v", err)
	}
	if n != 1 && time.Since(set) < 150*time.Millisecond {
		t.Fatal("the key was gone right after SET")
	}
	// Nobody calls FastForward: only ClockTTL(true) can expire it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := c.Client.Exists(ctx, "lock").Result()
		if err != nil {
			t.Fatalf("EXISTS: %v", err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a key SET with PX 200 still exists %v later; TTLs do not follow the wall clock", time.Since(set))
		}
		time.Sleep(25 * time.Millisecond)
	}
	if d := time.Since(set); d < 150*time.Millisecond {
		t.Errorf("a key SET with PX 200 was gone after only %v", d)
	}
}

func TestClosingTheEmbeddedRedisStopsItsListener(t *testing.T) {
	c, e := openEmbedded(t, time.Second)
	addr := e.Addr()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close the embedded Redis: %v", err)
	}
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = nc.Close()
		t.Errorf("the embedded Redis still listens on %s after Close", addr)
	}
	if err := c.Client.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("PING after Close = %v; want redis.ErrClosed", err)
	}
}

func TestEachEmbeddedOpenIsItsOwnRedis(t *testing.T) {
	a := open(t, embedded, time.Second)
	b := open(t, embedded, time.Second)
	ctx := context.Background()
	if err := a.Client.Set(ctx, "only-in-a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client.Exists(ctx, "only-in-a").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS in the second embedded Redis = %d, %v; want 0", n, err)
	}
}

func TestOpenWithTheLocalRedisURLWorks(t *testing.T) {
	_, prefix := testredis.Shared(t) // deletes everything under prefix afterwards
	c := open(t, testredis.URL(), 2*time.Second)
	ctx := context.Background()
	key := prefix + "open"
	if err := c.Client.Set(ctx, key, "hello", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	defer c.Client.Del(ctx, key)
	if got, err := c.Client.Get(ctx, key).Result(); err != nil || got != "hello" {
		t.Fatalf("GET = %q, %v; want hello", got, err)
	}
	name, err := c.Client.ClientGetName(ctx).Result()
	if err != nil || name != "mcp-redis" {
		t.Errorf("CLIENT GETNAME = %q, %v; want mcp-redis", name, err)
	}
}

func TestOpenWithAUnixSocketURLWorks(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH: %v", err)
	}
	dir, err := os.MkdirTemp("", "rdb") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "r.sock")
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
		"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server did not create %s:\n%s", sock, log)
		}
	}
	c := open(t, "unix://"+sock+"?db=3", 2*time.Second)
	ctx := context.Background()
	if err := c.Client.Set(ctx, "k", "in-db-3", 0).Err(); err != nil {
		t.Fatalf("SET over %s: %v", sock, err)
	}
	direct := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, DB: 3})
	defer direct.Close()
	if got, err := direct.Get(ctx, "k").Result(); err != nil || got != "in-db-3" {
		t.Errorf("GET from db 3 = %q, %v; want in-db-3", got, err)
	}
}

// closedPort returns a 127.0.0.1 address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

func assertUnavailable(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded; want an error", op)
	}
	if !Unreachable(err) {
		t.Errorf("Unreachable(%v) = false", err)
	}
	w := Wrap(op, err)
	if fault.CodeOf(w) != fault.Unavailable {
		t.Errorf("Wrap(%q, %v) has code %q; want %q", op, err, fault.CodeOf(w), fault.Unavailable)
	}
	if !errors.Is(w, err) {
		t.Errorf("Wrap lost the cause %v", err)
	}
	if !strings.Contains(w.Error(), op) {
		t.Errorf("Wrap error %q does not name the operation %q", w, op)
	}
}

func TestACommandToAClosedPortFailsQuicklyAsUnavailable(t *testing.T) {
	const timeout = 300 * time.Millisecond
	c := open(t, "redis://"+closedPort(t), timeout)
	for i := range 3 { // the pool must not turn later calls into something else
		start := time.Now()
		err := c.Client.Set(context.Background(), "k", "v", 0).Err()
		elapsed := time.Since(start)
		assertUnavailable(t, fmt.Sprintf("set #%d", i), err)
		if elapsed > 5*timeout {
			t.Errorf("call #%d took %v with a %v timeout", i, elapsed, timeout)
		}
	}
}

func TestACommandToAServerThatNeverAnswersTimesOutAsUnavailable(t *testing.T) {
	const timeout = 300 * time.Millisecond
	c := open(t, "redis://"+silentServer(t), timeout)
	start := time.Now()
	err := Ping(context.Background(), c.Client)
	elapsed := time.Since(start)
	assertUnavailable(t, "ping", err)
	if elapsed > 5*timeout {
		t.Errorf("PING took %v with a %v timeout; the timeout does not bound the call", elapsed, timeout)
	}
}

func TestAContextDeadlineShorterThanTheTimeoutEndsTheCall(t *testing.T) {
	// ContextTimeoutEnabled: the context's deadline, not the 10s timeout,
	// bounds the call.
	const deadline = 200 * time.Millisecond
	c := open(t, "redis://"+silentServer(t), 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := c.Client.Ping(ctx).Err()
	elapsed := time.Since(start)
	assertUnavailable(t, "ping", err)
	if elapsed > 5*deadline {
		t.Errorf("PING took %v with a %v context deadline", elapsed, deadline)
	}
}

func TestAnEmbeddedRedisThatWasClosedIsUnavailable(t *testing.T) {
	c, e := openEmbedded(t, 300*time.Millisecond)
	ctx := context.Background()
	if err := c.Client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	_ = e.Close() // Redis goes away under a live pool
	start := time.Now()
	err := c.Client.Ping(ctx).Err()
	assertUnavailable(t, "ping", err)
	if elapsed := time.Since(start); elapsed > 5*300*time.Millisecond {
		t.Errorf("PING took %v", elapsed)
	}
}

func TestRedisErrorRepliesAreClassifiedByTheirPrefix(t *testing.T) {
	_, prefix := testredis.Shared(t)
	c := open(t, testredis.URL(), 2*time.Second)
	ctx := context.Background()
	reply := func(msg string) error {
		t.Helper()
		err := c.Client.Eval(ctx, "return redis.error_reply(ARGV[1])", nil, msg).Err()
		if err == nil || err.Error() != msg {
			t.Fatalf("EVAL error_reply(%q) = %v", msg, err)
		}
		return err
	}
	for _, tc := range []struct {
		msg  string
		want fault.Code
	}{
		{"ERR something", fault.Internal},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", fault.Internal},
		{"BUSYGROUP Consumer Group name already exists", fault.Internal},
		{"LOADING Redis is loading the dataset in memory", fault.Unavailable},
		{"BUSY Redis is busy running a script", fault.Unavailable},
		{"MASTERDOWN Link with MASTER is down", fault.Unavailable},
		{"CLUSTERDOWN The cluster is down", fault.Unavailable},
		{"TRYAGAIN Multiple keys request during rehashing of slot", fault.Unavailable},
		{"READONLY You can't write against a read only replica.", fault.Unavailable},
	} {
		err := reply(tc.msg)
		if got := fault.CodeOf(Wrap("eval", err)); got != tc.want {
			t.Errorf("Wrap(%q) code = %q; want %q", tc.msg, got, tc.want)
		}
		if got := Unreachable(err); got != (tc.want == fault.Unavailable) {
			t.Errorf("Unreachable(%q) = %v", tc.msg, got)
		}
	}

	// A real command error.
	key := prefix + "str"
	if err := c.Client.Set(ctx, key, "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	defer c.Client.Del(ctx, key)
	err := c.Client.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"a", "b"}}).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Fatalf("XADD on a string = %v; want WRONGTYPE", err)
	}
	if got := fault.CodeOf(Wrap("xadd", err)); got != fault.Internal {
		t.Errorf("WRONGTYPE from XADD is %q; want internal", got)
	}
}

// redisError is a server error reply without a server.
type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

func TestWrapClassifiesErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want fault.Code
	}{
		{"connection refused", refused, fault.Unavailable},
		{"a wrapped ECONNREFUSED", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), fault.Unavailable},
		{"ECONNRESET", fmt.Errorf("read: %w", syscall.ECONNRESET), fault.Unavailable},
		{"EPIPE", fmt.Errorf("write: %w", syscall.EPIPE), fault.Unavailable},
		{"EOF", io.EOF, fault.Unavailable},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), fault.Unavailable},
		{"deadline", context.DeadlineExceeded, fault.Unavailable},
		{"cancelled", context.Canceled, fault.Unavailable},
		{"closed client", redis.ErrClosed, fault.Unavailable},
		{"pool timeout", redis.ErrPoolTimeout, fault.Unavailable},
		{"ERR reply", redisError("ERR something"), fault.Internal},
		{"LOADING reply", redisError("LOADING Redis is loading"), fault.Unavailable},
		{"a wrapped LOADING reply", fmt.Errorf("xadd: %w", redisError("LOADING Redis is loading")), fault.Unavailable},
		{"a reply that merely mentions LOADING", redisError("ERR LOADING is not a prefix here"), fault.Internal},
		{"BUSYGROUP is not BUSY", redisError("BUSYGROUP Consumer Group name already exists"), fault.Internal},
		{"redis.Nil", redis.Nil, fault.Internal},
		{"any other error", errors.New("boom"), fault.Internal},
	} {
		w := Wrap("op", tc.err)
		if got := fault.CodeOf(w); got != tc.want {
			t.Errorf("%s: Wrap(%v) code = %q; want %q", tc.name, tc.err, got, tc.want)
		}
		if !errors.Is(w, tc.err) {
			t.Errorf("%s: Wrap does not keep the cause", tc.name)
		}
		if !strings.Contains(w.Error(), "op") {
			t.Errorf("%s: Wrap error %q does not name the operation", tc.name, w)
		}
	}
}

func TestWrapOfNilIsNil(t *testing.T) {
	if err := Wrap("op", nil); err != nil {
		t.Errorf("Wrap(nil) = %v", err)
	}
}

func TestACancelledCallIsReportedAsCancelledNotAsRedisDown(t *testing.T) {
	c := open(t, embedded, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Client.Ping(ctx).Err()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("PING with a cancelled context = %v; want context.Canceled", err)
	}
	w := Wrap("ping", err)
	if fault.CodeOf(w) != fault.Unavailable || !strings.Contains(w.Error(), "cancelled") {
		t.Errorf("Wrap = %v (%q); want an unavailable 'call cancelled'", w, fault.CodeOf(w))
	}
}
