// Package ratelimit makes atomic rate-limit decisions on Redis: an exact
// sliding window in one Lua script, timed by Redis's own clock.
//
// A policy allows Limit units of cost in any Window: a request is allowed
// when the units already counted in the window just before it, plus its
// cost, do not exceed Limit. Unlike a token bucket there is no burst above
// Limit, and unlike fixed windows no double burst at a window's edge. Each
// allowed unit is a member of a sorted set, so a subject's state is at most
// Limit members and lives no longer than Window after its last request.
package ratelimit

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

//go:embed window.lua
var windowSrc string

var windowScript = redis.NewScript(rdb.ScriptPrelude + windowSrc)

// Policy is a named limit: Limit units of cost per Window.
type Policy struct {
	Name   string
	Limit  int
	Window time.Duration
}

// Decision is the outcome of one check.
type Decision struct {
	Allowed   bool
	Limit     int
	Remaining int
	// RetryAfter is how long until the same request would be allowed; 0
	// when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the window holds nothing of this subject.
	ResetAfter time.Duration
}

// Limiter decides under one keyspace.
type Limiter struct {
	rdb  redis.Scripter
	keys keyspace.Keyspace
}

// New returns a Limiter.
func New(c redis.Scripter, keys keyspace.Keyspace) *Limiter {
	return &Limiter{rdb: c, keys: keys}
}

// Allow decides whether subject may spend cost under p, and counts it when
// allowed. An unreachable Redis is an error, never an allowance.
func (l *Limiter) Allow(ctx context.Context, subject string, p Policy, cost int) (Decision, error) {
	if cost < 1 || cost > p.Limit {
		return Decision{}, fault.Invalidf("cost", "%d can never fit policy %q (at most %d per %v)", cost, p.Name, p.Limit, p.Window)
	}
	key := l.keys.Rate(p.Name, subject)
	res, err := windowScript.Run(ctx, l.rdb, []string{key}, p.Limit, p.Window.Microseconds(), cost, nonce()).Int64Slice()
	if err != nil {
		return Decision{}, rdb.WrapNotDurable("rate "+key, err,
			"The request was counted on the master; a retry counts it again, so retry only if a decision is still needed.")
	}
	if len(res) != 4 {
		return Decision{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("rate %s: unexpected reply %v", key, res)}
	}
	return Decision{
		Allowed: res[0] == 1,
		Limit:   p.Limit,
		// Negative when a policy's limit was lowered while a window held more.
		Remaining:  max(int(res[1]), 0),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		ResetAfter: time.Duration(res[3]) * time.Microsecond,
	}, nil
}

func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
