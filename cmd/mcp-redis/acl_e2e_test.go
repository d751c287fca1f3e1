package main_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// aclUser creates user agent/pass on s with rule (ACL SETUSER words) and
// returns an admin client.
func aclUser(t *testing.T, s *testredis.Server, rule string) *redis.Client {
	t.Helper()
	admin := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.Do(context.Background(), append([]any{"ACL", "SETUSER", "agent", "reset"}, toAny(strings.Fields(rule))...)...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	return admin
}

// serveOnce runs `serve` with stdin closed and returns its exit status and
// stderr: a server that starts reads EOF and exits 0.
func serveOnce(t *testing.T, extra ...string) (string, bool) {
	t.Helper()
	out, err := runBinary(t, runBound, []string{"XDG_CONFIG_HOME=" + t.TempDir()}, append([]string{"serve"}, extra...)...)
	return out, err == nil
}

// A user lacking rights the server needs — channel rights, as Redis 7's
// default acl-pubsub-default resetchannels leaves a new user, or scripts —
// is refused at start with a message naming each one; the documented rule
// starts.
func TestAtStartAUserLackingRightsIsRefusedNamingThem(t *testing.T) {
	needsFull(t, "starts a redis-server and the binary")
	s := testredis.Start(t)
	url := "redis://agent:pass@" + s.Addr

	aclUser(t, s, strings.Replace(leastPrivilege, "&mcp:*", "", 1))
	out, ok := serveOnce(t, "--redis-url", url)
	if ok {
		t.Fatalf("a user without channel rights started:\n%s", out)
	}
	for _, want := range []string{"may not run what the server needs", "PUBLISH mcp:events:audit_log_stream",
		"PUBLISH mcp:events:locks", "SUBSCRIBE mcp:events:locks", "minimal ACL rule"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not name %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "XADD") {
		t.Errorf("the refusal names a right the user has:\n%s", out)
	}

	aclUser(t, s, strings.Replace(leastPrivilege, "+@scripting", "", 1))
	if out, ok := serveOnce(t, "--redis-url", url); ok || !strings.Contains(out, "EVAL") {
		t.Errorf("a user without scripts: started=%v\n%s", ok, out)
	}

	// Wrong credentials are like a Redis that is down: the server starts,
	// says so, and recovers once they are fixed.
	if out, ok := serveOnce(t, "--redis-url", "redis://agent:wrong@"+s.Addr); !ok || !strings.Contains(out, "refused the server's credentials") {
		t.Errorf("a wrong password: started=%v\n%s", ok, out)
	}

	aclUser(t, s, leastPrivilege)
	if out, ok := serveOnce(t, "--redis-url", url); !ok {
		t.Errorf("the documented rule is refused:\n%s", out)
	}
}

// A right taken away while the server runs is a tool error that says the
// Redis user was refused (not an internal error), and the script that met
// it wrote nothing: no entry, no idempotency record, no context, and
// release_lock leaves the lock it could not announce.
func TestARightRevokedWhileServingIsAToolErrorAndNothingIsWritten(t *testing.T) {
	needsFull(t, "starts a redis-server and the binary")
	s := testredis.Start(t)
	admin := aclUser(t, s, leastPrivilege)
	srv := spawn(t, []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "--redis-url", "redis://agent:pass@"+s.Addr)
	lock := srv.ok("acquire_lock", args(`{"resource":"db1","ttl_ms":60000}`))
	token, _ := lock["token"].(string)

	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "agent", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	before := map[string]testredis.KeyState{}
	keys := []string{"mcp:audit_log_stream", "mcp:idem:{mcp:audit_log_stream}:R-1", "mcp:ccwj_update_stream",
		"mcp:ctx:{mcp:ccwj_update_stream}:wf1", "mcp:chain:{mcp:audit_log_stream}", "mcp:locks:db1", "mcp:owner:{mcp:locks:db1}"}
	for _, k := range keys {
		before[k] = testredis.StateOf(t, admin, k)
	}
	for _, c := range []struct{ tool, args, what string }{
		{"audit_log", `{"module":"m","procedure":"p","status":"ok","log_id":"R-1"}`, "PUBLISH on channel mcp:events:audit_log_stream"},
		{"publish_ccwj_delta", `{"workflow_id":"wf1","phase_id":"plan","field":"steps","value":[1]}`, "PUBLISH on channel mcp:events:ccwj_update_stream"},
		{"release_lock", `{"resource":"db1","token":"` + token + `"}`, "PUBLISH on channel mcp:events:locks"},
	} {
		res := srv.call(c.tool, args(c.args))
		text := resultText(res)
		if !res.IsError || !strings.Contains(text, "redis refused the server's user") || !strings.Contains(text, c.what) ||
			!strings.Contains(text, "nothing was written") || strings.Contains(text, "internal error") {
			t.Errorf("%s after the channel right was revoked: isError=%v %q", c.tool, res.IsError, text)
		}
	}
	for _, k := range keys {
		if d := before[k].Changed(testredis.StateOf(t, admin, k)); d != "" {
			t.Errorf("%s changed: %s", k, d)
		}
	}
	if n, _ := admin.Exists(ctx, "mcp:locks:db1").Result(); n != 1 {
		t.Error("release_lock answered an error yet deleted the lock")
	}
}
