package lock_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// A script does not roll back: a lock script that failed after its first
// write would leave that write behind (a lock taken with no fence, a label
// overwritten, a lock deleted with its announcement sent). So every script
// checks every key before writing: each key of each script made the wrong
// type (and the fence a string INCR cannot grow) makes the call an
// internal error naming that key, with every key as it was and nothing
// announced.
func TestALockScriptThatMeetsAWrongTypedKeyFailsAndChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLocker(t, b)
		ctx := context.Background()
		ps := c.Subscribe(ctx, keys.LockEvents())
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		notices := ps.Channel()

		hash := func(k string) error { return c.HSet(ctx, k, "f", "v").Err() }
		str := func(v string) func(string) error {
			return func(k string) error { return c.Set(ctx, k, v, 0).Err() }
		}
		type op func(resource, token string) error
		acquire := func(owner string) op {
			return func(resource, _ string) error {
				g, err := l.Acquire(ctx, resource, time.Minute, 0, owner)
				if err == nil {
					return fmt.Errorf("no error (acquired %v)", g.Acquired)
				}
				return err
			}
		}
		release := func(resource, token string) error {
			ok, err := l.Release(ctx, resource, token)
			if err == nil {
				return fmt.Errorf("no error (released %v)", ok)
			}
			return err
		}
		extend := func(resource, token string) error {
			ok, _, err := l.Extend(ctx, resource, token, 2*time.Minute)
			if err == nil {
				return fmt.Errorf("no error (extended %v)", ok)
			}
			return err
		}
		cases := []struct {
			name string
			// held takes the lock first, for release and extend.
			held  bool
			key   func(resource string) string
			spoil func(key string) error
			op    op
		}{
			{"acquire: the lock is a hash", false, keys.Lock, hash, acquire("x")},
			{"acquire: the fence is a hash", false, keys.LockFence, hash, acquire("x")},
			{"acquire: the fence is not an integer", false, keys.LockFence, str("abc"), acquire("x")},
			{"acquire: the fence is a float", false, keys.LockFence, str("1.5"), acquire("x")},
			{"acquire: the fence has a leading zero", false, keys.LockFence, str("01"), acquire("x")},
			{"acquire: the fence is at its maximum", false, keys.LockFence, str("9223372036854775807"), acquire("x")},
			{"acquire: the fence is out of range", false, keys.LockFence, str("99999999999999999999"), acquire("x")},
			{"acquire: the owner label is a hash", false, keys.LockOwner, hash, acquire("x")},
			{"acquire without a label: the owner label is a hash", false, keys.LockOwner, hash, acquire("")},
			{"release: the lock is a hash", false, keys.Lock, hash, release},
			{"release: the owner label is a hash", true, keys.LockOwner, hash, release},
			{"extend: the lock is a hash", false, keys.Lock, hash, extend},
			{"extend: the owner label is a hash", true, keys.LockOwner, hash, extend},
			{"release: the fence is a hash", true, keys.LockFence, hash, release},
			{"extend: the fence is a hash", true, keys.LockFence, hash, extend},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resource := fmt.Sprintf("spoilt-%d", i)
				token := testredis.Random(16)
				if tc.held {
					token = mustAcquire(t, l, resource, time.Minute, "holder").Token
					// The grant is announced; only what the failed call
					// announces counts below.
					if m := next(t, notices); !strings.Contains(m.Payload, `"event":"acquired"`) {
						t.Fatalf("the grant was announced as %s", m.Payload)
					}
					if k := tc.key(resource); k == keys.LockOwner(resource) || k == keys.LockFence(resource) {
						// The label and the fence are strings now: drop
						// them to spoil them.
						c.Del(ctx, k)
					}
				}
				if err := tc.spoil(tc.key(resource)); err != nil {
					t.Fatal(err)
				}
				involved := []string{keys.Lock(resource), keys.LockFence(resource), keys.LockOwner(resource)}
				before := make([]testredis.KeyState, len(involved))
				for k, key := range involved {
					before[k] = testredis.StateOf(t, c, key)
				}

				err := tc.op(resource, token)
				if fault.CodeOf(err) != fault.Internal || !strings.Contains(err.Error(), tc.key(resource)+" holds a") {
					t.Errorf("err = %v; want an internal error saying what %s holds", err, tc.key(resource))
				}
				for k, key := range involved {
					if d := before[k].Changed(testredis.StateOf(t, c, key)); d != "" {
						t.Errorf("%s changed: %s", key, d)
					}
				}
				select {
				case m := <-notices:
					t.Errorf("a failed call announced %s", m.Payload)
				case <-time.After(50 * time.Millisecond):
				}
			})
		}

		// The subscription does hear a grant and a release that succeed.
		g := mustAcquire(t, l, "control", time.Minute, "")
		if ok, err := l.Release(ctx, "control", g.Token); !ok || err != nil {
			t.Fatalf("release = %v, %v", ok, err)
		}
		for _, want := range []string{`"event":"acquired"`, `"event":"released"`} {
			if m := next(t, notices); !strings.Contains(m.Payload, want) {
				t.Fatalf("notice %s; want %s: the check above proves nothing", m.Payload, want)
			}
		}
	})
}
