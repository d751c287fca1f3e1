package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisClient is the bench's own connection, for series (a) and cleanup.
type redisClient = *redis.Client

// auditMaxLen is the server's default retention of the audit stream, so the
// raw XADD trims exactly as the server's script does.
const auditMaxLen = 100000

// callTimeout bounds one call, so a stuck Redis or server ends the run
// instead of hanging it.
const callTimeout = 10 * time.Second

// openRedis connects to url, which must name a loopback address: the bench
// writes and deletes keys and must not reach another machine by mistake.
func openRedis(ctx context.Context, url string) (redisClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	if err := requireLoopback(opts.Addr); err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	c := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s: %w", opts.Addr, err)
	}
	return c, nil
}

func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("host %q is not a loopback IP address; the bench only talks to a local Redis", host)
	}
	return nil
}

// newPrefix returns bench:<random>:, unique per run, so concurrent runs and
// earlier data never mix with this run's keys.
func newPrefix() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "bench:" + hex.EncodeToString(b[:]) + ":", nil
}

// rawXAdd returns the call of series (a): XADD … MAXLEN ~ of a typical
// entry, straight through go-redis; the floor any server built on go-redis
// can reach.
func rawXAdd(rdb redisClient, prefix string) func(ctx context.Context, i int) error {
	key := prefix + "audit_log_stream"
	gen := newEntries(prefix)
	return func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		return rdb.XAdd(ctx, &redis.XAddArgs{
			Stream: key, MaxLen: auditMaxLen, Approx: true, Values: gen.next(i).fields(),
		}).Err()
	}
}

// cleanup deletes every key of the run: the streams under prefix and the
// idempotency records, whose hash tag puts a brace before the prefix.
func cleanup(ctx context.Context, rdb redisClient, prefix string) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	total := 0
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		n, err := deleteMatching(ctx, rdb, pattern)
		total += n
		if err != nil {
			logf("cleanup %s: %v (deleted %d keys)", pattern, err, n)
		}
	}
	logf("cleanup: deleted %d keys under %s", total, prefix)
}

// deleteMatching SCANs for pattern and DELs what it finds, batch by batch.
func deleteMatching(ctx context.Context, rdb redisClient, pattern string) (int, error) {
	var cursor uint64
	deleted := 0
	for {
		keys, next, err := rdb.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return deleted, err
		}
		if len(keys) > 0 {
			n, err := rdb.Del(ctx, keys...).Result()
			deleted += int(n)
			if err != nil {
				return deleted, err
			}
		}
		if cursor = next; cursor == 0 {
			return deleted, nil
		}
	}
}
