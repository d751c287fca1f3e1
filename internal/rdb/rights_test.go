package rdb

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// CheckRights names each step a user may not run, by its command and key
// or channel, and nothing it may; a user without scripts is one line.
func TestCheckRightsNamesWhatTheUserMayNotRun(t *testing.T) {
	s := testredis.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer admin.Close()
	ctx := context.Background()
	setUser := func(rule string) *redis.Client {
		t.Helper()
		args := []any{"ACL", "SETUSER", "u", "reset", "on", ">p"}
		for _, w := range strings.Fields(rule) {
			args = append(args, w)
		}
		if err := admin.Do(ctx, args...).Err(); err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(&redis.Options{Addr: s.Addr, Username: "u", Password: "p"})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	steps := [][]string{{"xadd", "mcp:s", "*", "f", "v"}, {"publish", "mcp:events:s", "n"}, {"set", "other:k", "v"},
		{"eval", "return 1", "1", "mcp:s"}, {"cluster", "slots"}, {"wait", "1", "1"},
		{"xgroup", "create", "other:s", "g", "$", "mkstream"}, {"xreadgroup", "group", "g", "c", "streams", "other:s", ">"}}

	c := setUser("~mcp:* -@all +@write +@read +@scripting")
	denied, err := CheckRights(ctx, c, steps)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PUBLISH mcp:events:s", "SET other:k", "CLUSTER SLOTS", "WAIT", "XGROUP CREATE other:s", "XREADGROUP other:s"}
	if strings.Join(denied, "|") != strings.Join(want, "|") {
		t.Errorf("denied = %q; want %q", denied, want)
	}

	c = setUser("~mcp:* &mcp:* +@all -@scripting")
	if denied, err := CheckRights(ctx, c, steps); err != nil || len(denied) != 1 || !strings.HasPrefix(denied[0], "EVAL") {
		t.Errorf("a user without scripts: %q, %v", denied, err)
	}
}
