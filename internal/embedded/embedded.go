// Package embedded runs the zero-setup default, redis.url "embedded": an
// in-process Redis (miniredis) on a loopback port, with a password made
// for this run, keeping nothing when the process exits.
package embedded

import (
	"crypto/rand"
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"
)

// Redis is a running in-process Redis.
type Redis struct {
	m        *miniredis.Miniredis
	password string
}

// Start starts an in-process Redis and says on log where it listens and
// how its operator can inspect it.
func Start(log *slog.Logger) (*Redis, error) {
	m := miniredis.NewMiniRedis()
	// TTLs follow the wall clock, so locks and rate windows expire.
	m.ClockTTL(true)
	// Its listener is on loopback, where any local user could reach it: a
	// password made for this run keeps them out.
	r := &Redis{m: m, password: rand.Text()}
	m.RequireAuth(r.password)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	log.Warn("redis.url is \"embedded\": serving from an in-process Redis; nothing is persisted and all data is lost when the server exits",
		"addr", m.Addr())
	// The password is for the operator, who reads this log; no client of
	// the server ever sees it.
	log.Info("embedded redis: inspect it with redis-cli while the server runs",
		"command", "redis-cli -u "+r.URL())
	return r, nil
}

// URL is the redis:// URL with this run's password.
func (r *Redis) URL() string { return "redis://:" + r.password + "@" + r.m.Addr() }

// Addr is the loopback address it listens on.
func (r *Redis) Addr() string { return r.m.Addr() }

// Keys lists every key it holds.
func (r *Redis) Keys() []string { return r.m.Keys() }

// Close stops it; everything it held is gone.
func (r *Redis) Close() error {
	r.m.Close()
	return nil
}
