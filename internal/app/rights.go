package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

// Needs lists every command the server runs, with a key or channel of each
// kind it touches under cfg's prefix: the rights its Redis user must have.
// Keys are examples of their kind ("r" a resource, "x" an id): the ACL's
// key patterns decide for the kind.
func Needs(cfg config.Config) [][]string {
	k := keyspace.Keyspace{Prefix: cfg.Redis.Prefix}
	publish, subscribe := "publish", "subscribe"
	events := k.Events
	if cfg.Redis.ShardedPubSub {
		publish, subscribe, events = "spublish", "ssubscribe", k.ShardedEvents
	}
	n := [][]string{{"ping"}, {"time"}, {"eval", "return 1", "1", k.Stream(keyspace.AuditLog)}, {"evalsha", strings.Repeat("0", 40), "1", k.Stream(keyspace.AuditLog)}}
	for _, s := range keyspace.Streams {
		key, idem := k.Stream(s), k.Idempotency(s, "x")
		n = append(n,
			[]string{"type", key}, []string{"xadd", key, "*", "f", "v"}, []string{"xrange", key, "-", "+"}, []string{"xrevrange", key, "+", "-"},
			[]string{"xread", "streams", key, "0"},
			[]string{"type", idem}, []string{"get", idem}, []string{"set", idem, "v"},
			[]string{publish, events(s), "n"}, []string{subscribe, events(s)})
		if slices.Contains(cfg.Audit.Chain, s) {
			head, cps := k.ChainHead(s), k.Checkpoints(s)
			n = append(n, []string{"type", head}, []string{"get", head}, []string{"set", head, "v"},
				[]string{"xadd", cps, "*", "f", "v"}, []string{"xrange", cps, "-", "+"}, []string{"xrevrange", cps, "+", "-"})
		}
	}
	ctx := k.Context("x")
	n = append(n, []string{"type", ctx}, []string{"hset", ctx, "f", "v"}, []string{"hgetall", ctx})
	for _, key := range []string{k.Lock("r"), k.LockFence("r"), k.LockOwner("r")} {
		n = append(n, []string{"type", key}, []string{"get", key}, []string{"set", key, "v"}, []string{"del", key}, []string{"pexpire", key, "1"})
	}
	n = append(n, []string{"incr", k.LockFence("r")}, []string{"pttl", k.Lock("r")},
		[]string{publish, k.LockEvents(), "n"}, []string{subscribe, k.LockEvents()})
	rate := k.Rate("p", "s")
	n = append(n, []string{"type", rate}, []string{"zremrangebyscore", rate, "0", "1"}, []string{"zcard", rate},
		[]string{"zadd", rate, "0", "m"}, []string{"zrange", rate, "0", "1"}, []string{"pexpire", rate, "1"},
		// The dashboard's overview finds the locks and rate subjects.
		[]string{"zcount", rate, "0", "1"}, []string{"scan", "0"})
	n = append(n, groupNeeds(k, publish)...)
	if cfg.Redis.WaitReplicas > 0 {
		n = append(n, []string{"wait", "1", "1"})
	}
	if strings.Contains(cfg.Redis.URL, "+cluster://") {
		n = append(n, []string{"cluster", "slots"})
	}
	return n
}

// CheckRights asks Redis, once at start, whether the server's user may run
// everything in Needs, and returns an error naming what it may not: a
// server that starts without a right fails calls half-way later. A Redis
// that does not answer, or cannot check (before 7.0), is logged and
// passed: calls then meet the same question one by one.
//
// The question is asked when New builds the App, while it builds the
// tools; CheckRights takes the answer, waiting for it at most until ctx
// ends.
func (a *App) CheckRights(ctx context.Context) error {
	if a.rights == nil {
		return nil
	}
	var denied []string
	var err error
	select {
	case <-a.rights.done:
		denied, err = a.rights.denied, a.rights.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	switch {
	case errors.Is(err, rdb.ErrNoACLCheck):
		a.Log.Info("the Redis user's rights were not checked at start: this Redis cannot (it is older than 7.0)")
		return nil
	case len(denied) > 0:
		return fmt.Errorf("redis.url: the Redis user may not run what the server needs (grant it the README's minimal ACL rule, Topologies):\n  %s",
			strings.Join(denied, "\n  "))
	case err != nil && rdb.Refused(err) != "" && !credentials(err):
		return fmt.Errorf("redis.url: redis refused the server's user: %s", rdb.Refused(err))
	case err != nil && credentials(err):
		// Like a Redis that is down: the server starts and recovers
		// once the credentials are fixed on either side.
		a.Log.Warn("redis refused the server's credentials at start; every call fails until they are fixed", "err", err)
	case err != nil:
		a.Log.Warn("the Redis user's rights were not checked at start: Redis did not answer; calls will tell if a right is missing", "err", err)
	}
	return nil
}

// rightsCheck is the question CheckRights answers from, asked of Redis in
// the background; done is closed when denied and err are set.
type rightsCheck struct {
	done   chan struct{}
	denied []string
	err    error
}

// startRightsCheck asks Redis, within redis.timeout and until ctx ends,
// whether the server's user may run everything in Needs(cfg).
func startRightsCheck(ctx context.Context, conn *rdb.Conn, cfg config.Config) *rightsCheck {
	r := &rightsCheck{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		ctx, cancel := context.WithTimeout(ctx, cfg.Redis.Timeout)
		defer cancel()
		r.denied, r.err = rdb.CheckRights(ctx, conn.Client, Needs(cfg))
	}()
	return r
}

// wait waits for the question's answer; r may be nil.
func (r *rightsCheck) wait() {
	if r != nil {
		<-r.done
	}
}

// credentials reports a refusal of the server's credentials (NOAUTH,
// WRONGPASS), as opposed to missing rights.
func credentials(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "WRONGPASS")
}
