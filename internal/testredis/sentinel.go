package testredis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of StartSentinel monitor.
const MasterName = "mymaster"

// SentinelOptions shape a private Sentinel topology (StartSentinel).
type SentinelOptions struct {
	// Replicas of the master: 1 if 0; negative for none.
	Replicas int
	// Sentinels: 3 if 0. The quorum is 2 (1 with a single sentinel).
	Sentinels int
	// DownAfter is down-after-milliseconds: 1s if 0.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout: 5s if 0.
	FailoverTimeout time.Duration
	// PKI, when set, makes the master, the replicas and the sentinels
	// TLS-only with its certificates, client certificates required
	// (tls-auth-clients yes), replication and the sentinels' own links
	// over TLS (tls-replication yes). Nil: plain TCP.
	PKI *PKI
	// Args are extra redis-server args for the master and the replicas
	// (not the sentinels), e.g. an ACL user.
	Args []string
}

// Sentinel is a private master, its replicas and the sentinels
// monitoring it as MasterName, on free loopback ports, each in its own
// temp dir, stopped when the test ends.
type Sentinel struct {
	// Master is the node started as master; after a failover the master
	// is another one (CurrentMaster).
	Master    *Server
	Replicas  []*Server
	Sentinels []*Server
	// PKI is the TLS of every process, or nil.
	PKI *PKI

	tls    *tls.Config // clients' TLS from PKI, made once at start
	admins *clients[*redis.Client]
	scs    *clients[*redis.SentinelClient]
}

// StartSentinel starts the master and its replicas, waits for every
// replica's link to be up, then starts the sentinels and returns once
// every sentinel knows the master, every replica and every other sentinel
// and finds the quorum reachable (SENTINEL CKQUORUM).
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("this test starts its own redis sentinels; redis-server is not on PATH: %v", err)
	}
	switch {
	case o.Replicas == 0:
		o.Replicas = 1
	case o.Replicas < 0:
		o.Replicas = 0
	}
	if o.Sentinels <= 0 {
		o.Sentinels = 3
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 5 * time.Second
	}
	quorum := min(2, o.Sentinels)
	ports := freePorts(t, 1+o.Replicas+o.Sentinels)
	sn := &Sentinel{PKI: o.PKI, tls: clientTLS(t, o.PKI)}
	sn.admins = newClients(func(s *Server) *redis.Client { return adminClient(s, sn.tls) })
	sn.scs = newClients(func(s *Server) *redis.SentinelClient {
		return redis.NewSentinelClient(&redis.Options{
			Addr: s.Addr, TLSConfig: sn.tls, DisableIdentity: true, Protocol: 2,
			DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
			MaxRetries: -1, PoolSize: 2,
		})
	})
	t.Cleanup(sn.admins.close) // runs last, after the processes stop
	t.Cleanup(sn.scs.close)
	var tlsArgs []string
	if o.PKI != nil {
		tlsArgs = peerTLSArgs(o.PKI)
	}
	start := func(port int, conf string, args ...string) *Server {
		t.Helper()
		dir := t.TempDir()
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, TLS: o.PKI != nil, t: t}
		if conf != "" {
			s.ConfigFile = filepath.Join(dir, "sentinel.conf")
			if err := os.WriteFile(s.ConfigFile, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s.Args = args
		s.Start()
		t.Cleanup(s.Stop)
		return s
	}
	data := func(extra ...string) []string {
		// A replica's first sync starts at once, not after 5s.
		args := append([]string{"--appendonly", "no", "--repl-diskless-sync-delay", "0"}, tlsArgs...)
		return append(append(args, extra...), o.Args...)
	}

	sn.Master = start(ports[0], "", data()...)
	_, mport, _ := net.SplitHostPort(sn.Master.Addr)
	for i := 0; i < o.Replicas; i++ {
		sn.Replicas = append(sn.Replicas, start(ports[1+i], "", data("--replicaof", "127.0.0.1", mport)...))
	}
	// Linked before the sentinels start: a sentinel's first INFO of the
	// master then lists every replica, with no 10s INFO period to wait.
	waitFor(t, 30*time.Second, "every replica to be linked", func(ctx context.Context) error {
		for _, r := range sn.Replicas {
			repl, err := sn.admin(r).Info(ctx, "replication").Result()
			if err != nil {
				return fmt.Errorf("%s: INFO replication: %w", r.Addr, err)
			}
			if infoField(repl, "master_link_status") != "up" {
				return fmt.Errorf("%s: master_link_status:%s", r.Addr, infoField(repl, "master_link_status"))
			}
		}
		repl, err := sn.admin(sn.Master).Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("%s: INFO replication: %w", sn.Master.Addr, err)
		}
		if got := infoField(repl, "connected_slaves"); got != strconv.Itoa(o.Replicas) {
			return fmt.Errorf("%s: connected_slaves:%s", sn.Master.Addr, got)
		}
		return nil
	})

	conf := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]s %[3]d\n"+
		"sentinel down-after-milliseconds %[1]s %[4]d\n"+
		"sentinel failover-timeout %[1]s %[5]d\n"+
		"sentinel parallel-syncs %[1]s 1\n",
		MasterName, mport, quorum, o.DownAfter.Milliseconds(), o.FailoverTimeout.Milliseconds())
	for i := 0; i < o.Sentinels; i++ {
		sn.Sentinels = append(sn.Sentinels, start(ports[1+o.Replicas+i], conf, append([]string{"--sentinel"}, tlsArgs...)...))
	}
	waitFor(t, 30*time.Second, "every sentinel to know the master, the replicas and the other sentinels", func(ctx context.Context) error {
		for _, s := range sn.Sentinels {
			sc := sn.sentinel(s)
			m, err := sc.Master(ctx, MasterName).Result()
			if err != nil {
				return fmt.Errorf("sentinel %s: SENTINEL MASTER: %w", s.Addr, err)
			}
			if m["flags"] != "master" || m["num-slaves"] != strconv.Itoa(o.Replicas) || m["num-other-sentinels"] != strconv.Itoa(o.Sentinels-1) {
				return fmt.Errorf("sentinel %s: master flags:%s num-slaves:%s num-other-sentinels:%s", s.Addr, m["flags"], m["num-slaves"], m["num-other-sentinels"])
			}
			replicas, err := sc.Replicas(ctx, MasterName).Result()
			if err != nil {
				return fmt.Errorf("sentinel %s: SENTINEL REPLICAS: %w", s.Addr, err)
			}
			for _, r := range replicas {
				if r["flags"] != "slave" || r["master-link-status"] != "ok" {
					return fmt.Errorf("sentinel %s: replica %s:%s flags:%s master-link-status:%s", s.Addr, r["ip"], r["port"], r["flags"], r["master-link-status"])
				}
			}
			if err := sc.CkQuorum(ctx, MasterName).Err(); err != nil {
				return fmt.Errorf("sentinel %s: SENTINEL CKQUORUM: %w", s.Addr, err)
			}
		}
		return nil
	})
	return sn
}

// URL is the redis+sentinel:// URL naming every sentinel and MasterName,
// or rediss+sentinel:// with TLS.
func (sn *Sentinel) URL() string {
	return topologyURL("sentinel", sn.PKI, sn.Sentinels) + "?master_name=" + MasterName
}

// Client is a failover client of the current master as the default user,
// with the PKI's client certificate over TLS; it is closed when the test
// ends.
func (sn *Sentinel) Client(t testing.TB) *redis.Client {
	t.Helper()
	addrs := make([]string, len(sn.Sentinels))
	for i, s := range sn.Sentinels {
		addrs[i] = s.Addr
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: MasterName, SentinelAddrs: addrs, TLSConfig: sn.tls, DisableIdentity: true,
		DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// CurrentMaster is the master's address as a live sentinel gives it
// (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (sn *Sentinel) CurrentMaster(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, s := range sn.Sentinels {
		if !s.Running() {
			continue
		}
		addr, err := sn.masterAddr(ctx, s)
		if err == nil {
			return addr
		}
		errs = append(errs, err)
	}
	t.Fatalf("current master: %v", errors.Join(errs...))
	return ""
}

func (sn *Sentinel) masterAddr(ctx context.Context, s *Server) (string, error) {
	a, err := sn.sentinel(s).GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: GET-MASTER-ADDR-BY-NAME: %w", s.Addr, err)
	}
	if len(a) != 2 {
		return "", fmt.Errorf("sentinel %s: GET-MASTER-ADDR-BY-NAME = %v", s.Addr, a)
	}
	return net.JoinHostPort(a[0], a[1]), nil
}

// Failover asks a live sentinel for a graceful failover (SENTINEL
// FAILOVER), which it starts at once; WaitSwitched sees it done.
func (sn *Sentinel) Failover(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range sn.Sentinels {
		if !s.Running() {
			continue
		}
		err := sn.sentinel(s).Failover(ctx, MasterName).Err()
		var rerr redis.Error
		if err == nil {
			return
		}
		if errors.As(err, &rerr) {
			t.Fatalf("sentinel %s: SENTINEL FAILOVER: %v", s.Addr, err)
		}
		t.Logf("sentinel %s: SENTINEL FAILOVER: %v; asking the next", s.Addr, err)
	}
	t.Fatal("SENTINEL FAILOVER: no live sentinel answered")
}

// KillMaster crashes the current master (SIGKILL, then waits for it to
// exit) and returns it.
func (sn *Sentinel) KillMaster(t testing.TB) *Server {
	t.Helper()
	addr := sn.CurrentMaster(t)
	s := sn.node(addr)
	if s == nil {
		t.Fatalf("the sentinels name %s master, not a node of this topology", addr)
	}
	s.Kill()
	return s
}

// WaitSwitched waits until every live sentinel names the same master,
// other than from, and that node answers ROLE as master, and returns its
// address and how long that took from the call. The test fails if that
// takes longer than within.
func (sn *Sentinel) WaitSwitched(t testing.TB, from string, within time.Duration) (to string, took time.Duration) {
	t.Helper()
	start := time.Now()
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		to, last = sn.switched(ctx, from)
		cancel()
		if last == nil {
			return to, time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("the master did not switch from %s within %v: %v", from, within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (sn *Sentinel) switched(ctx context.Context, from string) (string, error) {
	to := ""
	for _, s := range sn.Sentinels {
		if !s.Running() {
			continue
		}
		addr, err := sn.masterAddr(ctx, s)
		if err != nil {
			return "", err
		}
		if addr == from {
			return "", fmt.Errorf("sentinel %s still names %s", s.Addr, from)
		}
		if to != "" && addr != to {
			return "", fmt.Errorf("sentinels disagree: %s and %s", to, addr)
		}
		to = addr
	}
	if to == "" {
		return "", errors.New("no live sentinel")
	}
	n := sn.node(to)
	if n == nil || !n.Running() {
		return "", fmt.Errorf("the sentinels name %s, not a live node of this topology", to)
	}
	role, err := sn.admin(n).Do(ctx, "role").Slice()
	if err != nil {
		return "", fmt.Errorf("%s: ROLE: %w", to, err)
	}
	if len(role) == 0 || role[0] != "master" {
		return "", fmt.Errorf("%s: ROLE %v", to, role)
	}
	return to, nil
}

// WaitSettled waits until every live master or replica other than the
// current master is its replica with the link up, and every live sentinel
// lists each of them as a replica whose link is ok: after a failover, the
// topology can fail over again. After a graceful failover this takes about
// 20s: a sentinel turns the old master into a replica only 8s after it
// last saw it as master, and refreshes a replica's state every 10s.
func (sn *Sentinel) WaitSettled(t testing.TB, within time.Duration) {
	t.Helper()
	waitFor(t, within, "the replicas to follow the current master", func(ctx context.Context) error {
		master := ""
		for _, s := range sn.Sentinels {
			if s.Running() {
				addr, err := sn.masterAddr(ctx, s)
				if err != nil {
					return err
				}
				master = addr
				break
			}
		}
		want := map[string]bool{}
		for _, n := range append([]*Server{sn.Master}, sn.Replicas...) {
			if !n.Running() || n.Addr == master {
				continue
			}
			want[n.Addr] = true
			repl, err := sn.admin(n).Info(ctx, "replication").Result()
			if err != nil {
				return fmt.Errorf("%s: INFO replication: %w", n.Addr, err)
			}
			at := net.JoinHostPort(infoField(repl, "master_host"), infoField(repl, "master_port"))
			if infoField(repl, "role") != "slave" || at != master || infoField(repl, "master_link_status") != "up" {
				return fmt.Errorf("%s: role:%s of %s, master_link_status:%s; the master is %s", n.Addr,
					infoField(repl, "role"), at, infoField(repl, "master_link_status"), master)
			}
		}
		for _, s := range sn.Sentinels {
			if !s.Running() {
				continue
			}
			replicas, err := sn.sentinel(s).Replicas(ctx, MasterName).Result()
			if err != nil {
				return fmt.Errorf("sentinel %s: SENTINEL REPLICAS: %w", s.Addr, err)
			}
			seen := 0
			for _, r := range replicas {
				addr := net.JoinHostPort(r["ip"], r["port"])
				if !want[addr] {
					continue
				}
				if r["flags"] != "slave" || r["master-link-status"] != "ok" {
					return fmt.Errorf("sentinel %s: replica %s flags:%s master-link-status:%s", s.Addr, addr, r["flags"], r["master-link-status"])
				}
				seen++
			}
			if seen != len(want) {
				return fmt.Errorf("sentinel %s lists %d of the %d live replicas", s.Addr, seen, len(want))
			}
		}
		return nil
	})
}

// node is the master or replica at addr, or nil.
func (sn *Sentinel) node(addr string) *Server {
	for _, s := range append([]*Server{sn.Master}, sn.Replicas...) {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

func (sn *Sentinel) admin(s *Server) *redis.Client { return sn.admins.get(s) }

func (sn *Sentinel) sentinel(s *Server) *redis.SentinelClient { return sn.scs.get(s) }
