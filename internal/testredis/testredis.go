// Package testredis gives tests a real Redis: the shared local server under
// a key prefix of the test's own, or a private redis-server the test starts
// and stops.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// URL is the shared Redis tests use: MCP_REDIS_TEST_URL, or the local
// server on 127.0.0.1:6379.
func URL() string {
	if u := os.Getenv("MCP_REDIS_TEST_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Shared connects to the shared Redis and returns a client and a key
// prefix unique to this test ("t:<random>:"). Every key under the prefix,
// including hash-tagged helper keys ("{t:<random>:…"), is deleted when the
// test ends. A test fails, never skips, when Redis does not answer.
func Shared(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("MCP_REDIS_TEST_URL: %v", err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("the tests need a real Redis at %s (set MCP_REDIS_TEST_URL): %v", URL(), err)
	}
	prefix := "t:" + Random(6) + ":"
	t.Cleanup(func() {
		Purge(t, c, prefix)
		_ = c.Close()
	})
	return c, prefix
}

// Purge deletes every key under prefix, and those of the earlier layout,
// "{<prefix>…}…", that migrate tests seed.
func Purge(t testing.TB, c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				c.Del(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			c.Del(ctx, batch...)
		}
		if err := iter.Err(); err != nil {
			t.Logf("purge %s: %v", pattern, err)
		}
	}
}

// Random returns n random bytes in hex.
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Server is a private redis-server on a free port under a temp dir.
type Server struct {
	Addr string
	Dir  string
	Args []string
	// TLS: the port serves TLS only (StartTLS).
	TLS bool
	// ConfigFile, when set, is given to redis-server first, before the
	// port and the other args (a sentinel needs its own writable file).
	ConfigFile string
	cmd        *exec.Cmd
	t          testing.TB
}

// Start runs a private redis-server with extra args (e.g. "--appendonly",
// "yes"); it is stopped when the test ends.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("this test starts its own redis-server, which is not on PATH: %v", err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(FreePort(t)), Dir: t.TempDir(), Args: args, t: t}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// StartTLS is Start for a server that serves TLS only on Addr (--port 0,
// --tls-port); args must name its certificates, e.g. PKI.ServerArgs.
func StartTLS(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("this test starts its own redis-server, which is not on PATH: %v", err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(FreePort(t)), Dir: t.TempDir(), Args: args, TLS: true, t: t}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL, or rediss:// for a TLS server.
func (s *Server) URL() string {
	if s.TLS {
		return "rediss://" + s.Addr
	}
	return "redis://" + s.Addr
}

// Start (re)starts the server on its port and waits until it accepts
// connections.
func (s *Server) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	ports := []string{"--port", port}
	if s.TLS {
		ports = []string{"--port", "0", "--tls-port", port}
	}
	if s.ConfigFile != "" {
		ports = append([]string{s.ConfigFile}, ports...)
	}
	args := append(append(ports, "--bind", "127.0.0.1", "--dir", s.Dir, "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(s.Dir, "redis.log")), s.Args...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	s.t.Fatalf("redis-server on %s did not start:\n%s", s.Addr, log)
}

// Stop kills the server (SIGKILL) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Kill sends the server SIGKILL and waits for it to exit, as a crash
// would; Stop and Start stay safe to call after it.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Running reports whether the server's process was started and has not
// been stopped or killed since.
func (s *Server) Running() bool { return s.cmd != nil }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	l := listenFree(t)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Ports below the kernel's ephemeral range (32768 and up on Linux), which
// it never hands to an outgoing connection or a ":0" listener: a port
// picked here and given to a redis-server a moment later is not taken in
// between by the other tests' own connections (a cluster bus port was,
// under a full parallel run).
const (
	portLow  = 20000
	portHigh = 32767
)

// listenFree listens on a free port of 127.0.0.1 below the ephemeral range
// (random, so concurrent tests rarely try the same one), or on any free
// port when none there is found quickly.
func listenFree(t testing.TB) net.Listener {
	t.Helper()
	for range 100 {
		p := portLow + mrand.IntN(portHigh-portLow+1)
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			return l
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return l
}

// Embedded starts the in-process Redis the server runs for redis.url
// "embedded" (miniredis, TTLs on the wall clock), for the tests of that
// product feature; it stops when the test ends. Its keys need no prefix:
// the instance is the test's own.
func Embedded(t testing.TB) (*redis.Client, string) {
	t.Helper()
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.Start(); err != nil {
		t.Fatalf("start embedded redis: %v", err)
	}
	t.Cleanup(m.Close)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c, "mcp:"
}
