package testredis

import (
	"context"
	"testing"
	"time"
)

// These start real topologies one after another (no t.Parallel): the
// cmd/mcp-redis topology tests run beside them in their own process.

// A cluster starts whole; killing the master of a key's slot gets its
// replica promoted, and the key is still there through the cluster client.
func TestClusterKillAMasterAndItsReplicaIsPromoted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster/sentinel topology; not in the -short tier")
	}
	begin := time.Now()
	c := StartCluster(t, ClusterOptions{})
	t.Logf("6-node cluster ready in %v: %s", time.Since(begin).Round(time.Millisecond), c.URL())
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	ctx := context.Background()
	cc := c.Client(t)
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := cc.Set(ctx, "k:"+k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	old := c.MasterOf(t, "k:a")
	// The write reached the replica before the master dies.
	if err := cc.Do(ctx, "wait", 1, 2000).Err(); err != nil {
		t.Logf("WAIT: %v", err)
	}
	c.Kill(old)
	if old.Running() {
		t.Fatal("killed node still running")
	}
	old.Stop() // safe after Kill
	m, took := c.WaitPromoted(t, "k:a", old, 30*time.Second)
	t.Logf("killed master %s; %s promoted after %v", old.Addr, m.Addr, took.Round(time.Millisecond))
	if m == old || c.MasterOf(t, "k:a") != m {
		t.Fatalf("promoted %s, master of k:a %s", m.Addr, c.MasterOf(t, "k:a").Addr)
	}
	var got string
	waitFor(t, 10*time.Second, "GET k:a through the cluster client", func(ctx context.Context) error {
		// go-redis reloads its slot map every 10s, or on MOVED: a dead
		// master answers neither, so ask for the new map.
		cc.ReloadState(ctx)
		var err error
		got, err = cc.Get(ctx, "k:a").Result()
		return err
	})
	if got != "a" {
		t.Errorf("k:a = %q after failover", got)
	}
}

// Sentinel: a graceful failover switches the master to the replica, and
// the failover client follows. (Failing over twice in one test would wait
// ~20s in WaitSettled; the kill is TestSentinelOverTLSKillTheMaster's.)
func TestSentinelFailoverSwitchesTheMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster/sentinel topology; not in the -short tier")
	}
	begin := time.Now()
	sn := StartSentinel(t, SentinelOptions{})
	t.Logf("sentinel topology ready in %v: %s", time.Since(begin).Round(time.Millisecond), sn.URL())
	from := sn.CurrentMaster(t)
	if from != sn.Master.Addr || len(sn.Replicas) != 1 || len(sn.Sentinels) != 3 {
		t.Fatalf("current master %s, started %s; %d replicas, %d sentinels", from, sn.Master.Addr, len(sn.Replicas), len(sn.Sentinels))
	}
	ctx := context.Background()
	fc := sn.Client(t)
	if err := fc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	sn.Failover(t)
	to, took := sn.WaitSwitched(t, from, 30*time.Second)
	t.Logf("SENTINEL FAILOVER: %s -> %s in %v", from, to, took.Round(time.Millisecond))
	if to != sn.Replicas[0].Addr || sn.CurrentMaster(t) != to {
		t.Errorf("switched to %s, want the replica %s", to, sn.Replicas[0].Addr)
	}
	var got string
	waitFor(t, 10*time.Second, "SET and GET k through the failover client", func(ctx context.Context) error {
		if err := fc.Set(ctx, "k2", "v2", 0).Err(); err != nil {
			return err
		}
		var err error
		got, err = fc.Get(ctx, "k").Result()
		return err
	})
	if got != "v" {
		t.Errorf("k = %q after failover", got)
	}
}

// A TLS cluster with client certificates: SET and GET through Client, and
// a plain-TCP client gets nothing.
func TestClusterOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster/sentinel topology; not in the -short tier")
	}
	begin := time.Now()
	c := StartCluster(t, ClusterOptions{PKI: NewPKI(t)})
	t.Logf("TLS cluster ready in %v: %s", time.Since(begin).Round(time.Millisecond), c.URL())
	ctx := context.Background()
	cc := c.Client(t)
	for _, k := range []string{"x", "y", "z"} {
		if err := cc.Set(ctx, k, k+"!", 0).Err(); err != nil {
			t.Fatalf("SET %s over TLS: %v", k, err)
		}
		if got, err := cc.Get(ctx, k).Result(); err != nil || got != k+"!" {
			t.Fatalf("GET %s over TLS = %q, %v", k, got, err)
		}
	}
	plain := adminClient(c.Nodes[0], nil)
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("PING over plain TCP to a TLS-only node succeeded")
	}
}

// Sentinel with TLS everywhere (clients, replication, sentinel links):
// killing the master gets the replica promoted.
func TestSentinelOverTLSKillTheMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster/sentinel topology; not in the -short tier")
	}
	begin := time.Now()
	sn := StartSentinel(t, SentinelOptions{PKI: NewPKI(t)})
	t.Logf("TLS sentinel topology ready in %v: %s", time.Since(begin).Round(time.Millisecond), sn.URL())
	ctx := context.Background()
	fc := sn.Client(t)
	if err := fc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the failover client over TLS: %v", err)
	}
	if err := fc.Do(ctx, "wait", 1, 2000).Err(); err != nil {
		t.Logf("WAIT: %v", err)
	}
	from := sn.CurrentMaster(t)
	killed := sn.KillMaster(t)
	if killed != sn.Master || killed.Running() {
		t.Fatalf("killed %s (running %v), the master was %s", killed.Addr, killed.Running(), from)
	}
	to, took := sn.WaitSwitched(t, from, 30*time.Second)
	t.Logf("killed master %s -> %s in %v", from, to, took.Round(time.Millisecond))
	if to != sn.Replicas[0].Addr {
		t.Errorf("switched to %s, want the replica %s", to, sn.Replicas[0].Addr)
	}
	var got string
	waitFor(t, 10*time.Second, "GET k through the failover client", func(ctx context.Context) error {
		var err error
		got, err = fc.Get(ctx, "k").Result()
		return err
	})
	if got != "v" {
		t.Errorf("k = %q after failover", got)
	}
}
