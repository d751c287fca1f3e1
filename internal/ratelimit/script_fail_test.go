package ratelimit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/ratelimit"
)

// A window key that is not a sorted set (written by something else) makes
// the check an internal error saying what the key holds — never an
// allowance — and leaves the key as it was: window.lua checks it before
// its first write.
func TestAWindowKeyOfTheWrongTypeIsAnErrorAndIsLeftAsItWas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLimiter(t, b)
		ctx := context.Background()
		p := ratelimit.Policy{Name: "spoilt", Limit: 5, Window: time.Minute}
		spoilers := []struct {
			name  string
			spoil func(key string) error
		}{
			{"a string", func(k string) error { return c.Set(ctx, k, "x", time.Hour).Err() }},
			{"a hash", func(k string) error { return c.HSet(ctx, k, "f", "v").Err() }},
			{"a list", func(k string) error { return c.RPush(ctx, k, "a", "b").Err() }},
		}
		for i, sp := range spoilers {
			t.Run(sp.name, func(t *testing.T) {
				subject := fmt.Sprintf("s%d", i)
				key := keys.Rate(p.Name, subject)
				if err := sp.spoil(key); err != nil {
					t.Fatal(err)
				}
				typ, ttl := c.Type(ctx, key).Val(), c.PTTL(ctx, key).Val()
				content := func() string {
					switch typ {
					case "string":
						return c.Get(ctx, key).Val()
					case "hash":
						return fmt.Sprint(c.HGetAll(ctx, key).Val())
					}
					return fmt.Sprint(c.LRange(ctx, key, 0, -1).Val())
				}
				before := content()

				d, err := l.Allow(ctx, subject, p, 1)
				if fault.CodeOf(err) != fault.Internal || !strings.Contains(err.Error(), key+" holds a") || d.Allowed {
					t.Errorf("allow = %+v, %v; want an internal error saying what %s holds", d, err, key)
				}
				after := c.PTTL(ctx, key).Val()
				if c.Type(ctx, key).Val() != typ || content() != before ||
					(ttl < 0) != (after < 0) || after > ttl || ttl-after > time.Second {
					t.Errorf("%s changed: was %s %q ttl %v, is %s %q ttl %v", key, typ, before, ttl, c.Type(ctx, key).Val(), content(), after)
				}
			})
		}
	})
}
