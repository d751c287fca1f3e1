package app

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

//go:embed migrate_fence.lua
var migrateFenceSrc string

var migrateFence = redis.NewScript(migrateFenceSrc)

// A Move is what Migrate did, or would do, with one key of the earlier
// layout.
type Move struct {
	keyspace.Legacy
	// Done: "moved", "merged" (a fencing counter: the larger value kept),
	// or "left" (the current key exists; Detail says why it was kept).
	Done   string
	Detail string
}

// Durable reports whether a key left behind holds state that does not
// expire by itself (a context, a chain head, checkpoints).
func (m Move) Durable() bool {
	return m.Done == "left" && m.Kind != keyspace.KindIdem && m.Kind != keyspace.KindOwner
}

// Migrate carries the keys of the earlier layout ("{mcp:…}:<kind>…") over to
// their current names, with cfg's Redis connection. Each Move is reported
// to fn as it is made; with dryRun nothing is written.
func Migrate(ctx context.Context, cfg config.Config, dryRun bool, log *slog.Logger, fn func(Move)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	conn, emb, err := openRedis(cfg.Redis, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	if emb != nil {
		defer emb.Close()
	}
	return migrate(ctx, conn.Client, keyspace.Keyspace{Prefix: cfg.Redis.Prefix}, dryRun, fn)
}

// migrate moves every earlier-layout key found by SCAN:
//   - a fencing counter: the larger of the earlier and the current value is
//     kept (migrate_fence.lua), so a fencing token never goes backwards;
//   - anything else (idempotency records, owner labels, contexts, chain
//     heads, checkpoints): RENAMENX, which keeps the key's TTL; when the
//     current key exists it wins and the earlier one is left in place.
//
// Old and new names share a slot, so both commands work in Redis Cluster.
func migrate(ctx context.Context, c redis.UniversalClient, keys keyspace.Keyspace, dryRun bool, fn func(Move)) error {
	found, err := scanLegacy(ctx, c, keys, 0)
	if err != nil {
		return fmt.Errorf("find keys of the earlier layout: %w", err)
	}
	dry := "0"
	if dryRun {
		dry = "1"
	}
	for _, l := range found {
		m := Move{Legacy: l}
		if l.Kind == keyspace.KindFence {
			r, err := migrateFence.Run(ctx, c, []string{l.Old, l.New}, dry).StringSlice()
			if err != nil {
				return fmt.Errorf("migrate %s: %w", l.Old, err)
			}
			m.Done, m.Detail = "merged", fmt.Sprintf("earlier %s, current %s: %s kept", r[0], orNone(r[1]), r[2])
		} else if dryRun {
			n, err := c.Exists(ctx, l.New).Result()
			if err != nil {
				return fmt.Errorf("migrate %s: %w", l.Old, err)
			}
			m.Done = "moved"
			if n > 0 {
				m.Done, m.Detail = "left", l.New+" exists"
			}
		} else {
			ok, err := c.RenameNX(ctx, l.Old, l.New).Result()
			if err != nil {
				return fmt.Errorf("migrate %s: %w", l.Old, err)
			}
			m.Done = "moved"
			if !ok {
				m.Done, m.Detail = "left", l.New+" exists"
			}
		}
		fn(m)
	}
	return nil
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// scanLegacy lists the earlier layout's keys, on every primary of a
// cluster, sorted; with limit > 0 it stops once it has found that many.
func scanLegacy(ctx context.Context, c redis.UniversalClient, keys keyspace.Keyspace, limit int) ([]keyspace.Legacy, error) {
	var mu sync.Mutex
	seen := map[string]keyspace.Legacy{}
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, keys.LegacyMatch(), 1000).Iterator()
		for iter.Next(ctx) {
			if l, ok := keys.ParseLegacy(iter.Val()); ok {
				mu.Lock()
				seen[l.Old] = l
				n := len(seen)
				mu.Unlock()
				if limit > 0 && n >= limit {
					return nil
				}
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	} else {
		err = scan(ctx, c)
	}
	found := make([]keyspace.Legacy, 0, len(seen))
	for _, l := range seen {
		found = append(found, l)
	}
	slices.SortFunc(found, func(a, b keyspace.Legacy) int { return strings.Compare(a.Old, b.Old) })
	return found, err
}

// legacyScanBudget bounds the start-up look for earlier-layout keys.
const legacyScanBudget = 3 * time.Second

// warnLegacy logs a warning when keys of the earlier layout exist: they
// need "mcp-redis migrate". The look is bounded in time and its failures
// (Redis down, an ACL user without SCAN) are only logged at debug level.
func warnLegacy(ctx context.Context, c redis.UniversalClient, keys keyspace.Keyspace, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, legacyScanBudget)
	defer cancel()
	found, err := scanLegacy(ctx, c, keys, 1)
	if len(found) > 0 {
		log.Warn("keys of the earlier layout exist: fencing counters, contexts and the audit chain there are not used until they are carried over; run \"mcp-redis migrate\"",
			"example", found[0].Old, "current_name", found[0].New)
		return
	}
	if err != nil {
		log.Debug("look for keys of the earlier layout", "err", err)
	}
}
