package testredis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions shape a private Redis Cluster (StartCluster).
type ClusterOptions struct {
	// Masters is the number of masters, each holding an even share of the
	// 16384 slots: 3 if 0.
	Masters int
	// ReplicasPerMaster: 1 if 0; negative for none.
	ReplicasPerMaster int
	// NodeTimeout is cluster-node-timeout, after which a silent master is
	// failed over: 2s if 0.
	NodeTimeout time.Duration
	// PKI, when set, makes every node TLS-only (clients, replication and
	// the cluster bus), with its certificates, client certificates
	// required (tls-auth-clients yes). Nil: plain TCP.
	PKI *PKI
	// Args are extra redis-server args for every node, e.g. an ACL user:
	// "--user", "app", "on", ">pass", "~app:*", "+@all".
	Args []string
}

// Cluster is a private Redis Cluster on free loopback ports, each node in
// its own temp dir, stopped when the test ends.
type Cluster struct {
	// Nodes are every node, the first Masters of them started as masters,
	// the next ones as their replicas (replica i of master i%Masters).
	Nodes []*Server
	// PKI is the TLS of the nodes, or nil.
	PKI *PKI

	tls    *tls.Config // clients' TLS from PKI, made once at start
	admins *clients[*redis.Client]
}

// StartCluster starts the nodes, joins them into one cluster and returns
// once every node reports cluster_state:ok, knows every node, every
// replica's link to its master is up and every node gives the same slot
// map.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("this test starts its own redis cluster; redis-server is not on PATH: %v", err)
	}
	if o.Masters <= 0 {
		o.Masters = 3
	}
	switch {
	case o.ReplicasPerMaster == 0:
		o.ReplicasPerMaster = 1
	case o.ReplicasPerMaster < 0:
		o.ReplicasPerMaster = 0
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 2 * time.Second
	}
	n := o.Masters * (1 + o.ReplicasPerMaster)
	ports := freePorts(t, 2*n) // a client port and a cluster bus port each
	c := &Cluster{PKI: o.PKI, tls: clientTLS(t, o.PKI)}
	c.admins = newClients(func(s *Server) *redis.Client { return adminClient(s, c.tls) })
	t.Cleanup(c.admins.close) // runs last, after the nodes stop
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		args := []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(ports[n+i]),
			"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
			"--cluster-announce-ip", "127.0.0.1",
			"--appendonly", "no",
			// A replica's first sync starts at once, not after 5s; and its
			// offset moves within 1s, not 10s: CLUSTER SLOTS lists no
			// replica whose offset is still 0.
			"--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1",
		}
		if o.PKI != nil {
			args = append(append(args, peerTLSArgs(o.PKI)...), "--tls-cluster", "yes")
		}
		args = append(args, o.Args...)
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(ports[i]), Dir: dir, Args: args, TLS: o.PKI != nil, t: t}
		s.Start()
		t.Cleanup(s.Stop)
		c.Nodes = append(c.Nodes, s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("start cluster: %s: %v", what, err)
		}
	}
	ids := make([]string, n)
	for i, s := range c.Nodes {
		id, err := c.admin(s).Do(ctx, "cluster", "myid").Text()
		must("CLUSTER MYID on "+s.Addr, err)
		ids[i] = id
		// Distinct epochs, as redis-cli --cluster create sets them: no
		// collision to resolve when the nodes meet.
		must("CLUSTER SET-CONFIG-EPOCH", c.admin(s).Do(ctx, "cluster", "set-config-epoch", i+1).Err())
	}
	for m := 0; m < o.Masters; m++ {
		lo, hi := m*16384/o.Masters, (m+1)*16384/o.Masters-1
		must("CLUSTER ADDSLOTSRANGE", c.admin(c.Nodes[m]).Do(ctx, "cluster", "addslotsrange", lo, hi).Err())
	}
	for i := 1; i < n; i++ {
		must("CLUSTER MEET", c.admin(c.Nodes[0]).Do(ctx, "cluster", "meet", "127.0.0.1", ports[i], ports[n+i]).Err())
	}
	// Every node must know every master before a replica can follow one.
	waitFor(t, 30*time.Second, "every node to know every node", func(ctx context.Context) error {
		for _, s := range c.Nodes {
			nodes, err := c.admin(s).ClusterNodes(ctx).Result()
			if err != nil {
				return fmt.Errorf("%s: CLUSTER NODES: %w", s.Addr, err)
			}
			for _, id := range ids {
				line := nodeLine(nodes, id)
				if line == "" || strings.Contains(line, "handshake") || strings.Contains(line, "noaddr") {
					return fmt.Errorf("%s does not know %s yet", s.Addr, id)
				}
			}
		}
		return nil
	})
	for i := o.Masters; i < n; i++ {
		master := ids[(i-o.Masters)%o.Masters]
		must("CLUSTER REPLICATE", c.admin(c.Nodes[i]).Do(ctx, "cluster", "replicate", master).Err())
	}
	waitFor(t, 60*time.Second, "the cluster to be ready", func(ctx context.Context) error {
		return c.ready(ctx, o.Masters, o.ReplicasPerMaster)
	})
	return c
}

// ready is nil when every node reports cluster_state:ok and knows every
// node, every replica is linked, and every node gives the same slot map
// of masters masters with replicas replicas each.
func (c *Cluster) ready(ctx context.Context, masters, replicas int) error {
	var want string
	for i, s := range c.Nodes {
		a := c.admin(s)
		info, err := a.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", s.Addr, err)
		}
		if infoField(info, "cluster_state") != "ok" || infoField(info, "cluster_known_nodes") != strconv.Itoa(len(c.Nodes)) {
			return fmt.Errorf("%s: cluster_state:%s cluster_known_nodes:%s", s.Addr,
				infoField(info, "cluster_state"), infoField(info, "cluster_known_nodes"))
		}
		if i >= masters {
			repl, err := a.Info(ctx, "replication").Result()
			if err != nil {
				return fmt.Errorf("%s: INFO replication: %w", s.Addr, err)
			}
			if infoField(repl, "master_link_status") != "up" {
				return fmt.Errorf("%s: replica link not up yet (role:%s master_link_status:%s)", s.Addr,
					infoField(repl, "role"), infoField(repl, "master_link_status"))
			}
		}
		//lint:ignore SA1019 go-redis's ClusterClient reads CLUSTER SLOTS: this is the map it will see.
		slots, err := a.ClusterSlots(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER SLOTS: %w", s.Addr, err)
		}
		got := slotMap(slots)
		if i == 0 {
			if len(slots) != masters {
				return fmt.Errorf("%s: %d slot ranges, want %d: %s", s.Addr, len(slots), masters, got)
			}
			for _, r := range slots {
				if len(r.Nodes) != 1+replicas {
					return fmt.Errorf("%s: slots %d-%d served by %d nodes, want %d: %s", s.Addr, r.Start, r.End, len(r.Nodes), 1+replicas, got)
				}
			}
			want = got
		} else if got != want {
			return fmt.Errorf("nodes disagree on slots: %s gives %s, %s gives %s", c.Nodes[0].Addr, want, s.Addr, got)
		}
	}
	return nil
}

// URL is the cluster's redis+cluster:// URL naming every node, or
// rediss+cluster:// with TLS.
func (c *Cluster) URL() string { return topologyURL("cluster", c.PKI, c.Nodes) }

// topologyURL is "redis+<mode>://" ("rediss+" with TLS) and the servers'
// addresses, comma-separated.
func topologyURL(mode string, p *PKI, servers []*Server) string {
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr
	}
	scheme := "redis+"
	if p != nil {
		scheme = "rediss+"
	}
	return scheme + mode + "://" + strings.Join(addrs, ",")
}

// Client is a cluster client as the default user, with the PKI's client
// certificate over TLS; it is closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs, TLSConfig: c.tls, DisableIdentity: true,
		DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
	})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// MasterOf is the node a live node names as master of key's slot now.
func (c *Cluster) MasterOf(t testing.TB, key string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		m, err := c.masterOf(ctx, s, key)
		if err == nil {
			return m
		}
		errs = append(errs, err)
	}
	t.Fatalf("master of %q: %v", key, errors.Join(errs...))
	return nil
}

// masterOf asks s which node is master of key's slot.
func (c *Cluster) masterOf(ctx context.Context, s *Server, key string) (*Server, error) {
	a := c.admin(s)
	slot, err := a.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER KEYSLOT: %w", s.Addr, err)
	}
	//lint:ignore SA1019 go-redis's ClusterClient reads CLUSTER SLOTS: this is the map it will see.
	slots, err := a.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER SLOTS: %w", s.Addr, err)
	}
	for _, r := range slots {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			if m := c.node(r.Nodes[0].Addr); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("%s names %s, not a node of this cluster, master of slot %d", s.Addr, r.Nodes[0].Addr, slot)
		}
	}
	return nil, fmt.Errorf("%s: no master for slot %d: %s", s.Addr, slot, slotMap(slots))
}

// Kill crashes s: SIGKILL, then waits for the process to exit.
func (c *Cluster) Kill(s *Server) { s.Kill() }

// WaitPromoted polls the live nodes until every one of them names the same
// running master, other than old, for key's slot and reports
// cluster_state:ok, and returns that master and how long that took from
// the call. The test fails if that takes longer than within.
func (c *Cluster) WaitPromoted(t testing.TB, key string, old *Server, within time.Duration) (*Server, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := c.promoted(ctx, key, old)
		cancel()
		if err == nil {
			return m, time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("no master other than %s for %q within %v: %v", old.Addr, key, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) promoted(ctx context.Context, key string, old *Server) (*Server, error) {
	var m *Server
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		got, err := c.masterOf(ctx, s, key)
		if err != nil {
			return nil, err
		}
		if got == old || !got.Running() {
			return nil, fmt.Errorf("%s still names %s", s.Addr, got.Addr)
		}
		if m != nil && got != m {
			return nil, fmt.Errorf("nodes disagree: %s names %s, another %s", s.Addr, got.Addr, m.Addr)
		}
		m = got
		info, err := c.admin(s).ClusterInfo(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("%s: CLUSTER INFO: %w", s.Addr, err)
		}
		if state := infoField(info, "cluster_state"); state != "ok" {
			return nil, fmt.Errorf("%s: cluster_state:%s", s.Addr, state)
		}
	}
	if m == nil {
		return nil, errors.New("no live node to ask")
	}
	return m, nil
}

// node is the node at addr, or nil.
func (c *Cluster) node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

func (c *Cluster) admin(s *Server) *redis.Client { return c.admins.get(s) }

// clients keeps one client per server, made on first use and closed
// together when the test ends.
type clients[C interface{ Close() error }] struct {
	mu   sync.Mutex
	m    map[*Server]C
	dial func(*Server) C
}

func newClients[C interface{ Close() error }](dial func(*Server) C) *clients[C] {
	return &clients[C]{m: map[*Server]C{}, dial: dial}
}

func (cs *clients[C]) get(s *Server) C {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.m[s]
	if !ok {
		c = cs.dial(s)
		cs.m[s] = c
	}
	return c
}

func (cs *clients[C]) close() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for s, c := range cs.m {
		_ = c.Close()
		delete(cs.m, s)
	}
}

// waitFor polls cond until it is nil, failing the test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", within, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminClient is a plain client of one node as the default user.
func adminClient(s *Server, tlsConf *tls.Config) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: s.Addr, TLSConfig: tlsConf, DisableIdentity: true, Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRetries: -1, PoolSize: 2,
	})
}

// clientTLS is the TLS a client of p's servers uses: p's CA and client
// certificate. Nil for a nil p.
func clientTLS(t testing.TB, p *PKI) *tls.Config {
	if p == nil {
		return nil
	}
	pem, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", p.CAFile)
	}
	pair, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// peerTLSArgs serve p's server certificate, require client certificates,
// and make the node a TLS client of its peers (replication, and for a
// sentinel its masters, replicas and other sentinels) with p's client
// certificate: the server certificate is for server auth only.
func peerTLSArgs(p *PKI) []string {
	return append(p.ServerArgs("yes"),
		"--tls-client-cert-file", p.ClientCert, "--tls-client-key-file", p.ClientKey,
		"--tls-replication", "yes")
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for len(ports) < n {
		l := listenFree(t)
		ls = append(ls, l)
		p := l.Addr().(*net.TCPAddr).Port
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports
}

// infoField is field's value in an INFO or CLUSTER INFO reply.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// nodeLine is the CLUSTER NODES line of node id.
func nodeLine(nodes, id string) string {
	for _, line := range strings.Split(nodes, "\n") {
		if strings.HasPrefix(line, id+" ") {
			return line
		}
	}
	return ""
}

// slotMap is a canonical text of a CLUSTER SLOTS reply: each range with
// its master and its sorted replicas.
func slotMap(slots []redis.ClusterSlot) string {
	parts := make([]string, 0, len(slots))
	for _, r := range slots {
		var addrs []string
		for _, n := range r.Nodes {
			addrs = append(addrs, n.Addr)
		}
		if len(addrs) > 1 {
			slices.Sort(addrs[1:])
		}
		parts = append(parts, fmt.Sprintf("%d-%d:%s", r.Start, r.End, strings.Join(addrs, "+")))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
