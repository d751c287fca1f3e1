package rdb

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrNoACLCheck: this Redis cannot check rights (before 7.0: no
// redis.acl_check_cmd).
var ErrNoACLCheck = errors.New("redis has no redis.acl_check_cmd (Redis 7.0 or later)")

// rightsScript asks, for each step of ARGV (a count, then the command and
// its arguments), whether the calling user may run it. ACL DRYRUN answers
// the same question but is an admin command that a least-privilege user
// may not run; redis.acl_check_cmd checks the user running the script.
var rightsScript = redis.NewScript(`
if not redis.acl_check_cmd then
  return -1
end
local denied = {}
local i, k = 1, 0
while i <= #ARGV do
  k = k + 1
  local n = tonumber(ARGV[i])
  local step = {}
  for j = 1, n do
    step[j] = ARGV[i + j]
  end
  local ok, allowed = pcall(redis.acl_check_cmd, unpack(step))
  if not ok or not allowed then
    denied[#denied + 1] = k
  end
  i = i + n + 1
end
return denied
`)

// label names a step by its command and the key or channel it touches:
// "PUBLISH mcp:events:locks", "EVAL on mcp:audit_log_stream", "XGROUP
// CREATE mcp:workflow_events", "XREADGROUP mcp:workflow_events".
func label(step []string) string {
	cmd := strings.ToUpper(step[0])
	switch {
	case (cmd == "EVAL" || cmd == "EVALSHA") && len(step) > 3:
		return cmd + " on " + step[3]
	case (cmd == "XGROUP" || cmd == "XINFO") && len(step) > 2:
		return cmd + " " + strings.ToUpper(step[1]) + " " + step[2]
	case cmd == "XREAD" || cmd == "XREADGROUP":
		for i, a := range step {
			if strings.EqualFold(a, "streams") && i+1 < len(step) {
				return cmd + " " + step[i+1]
			}
		}
	case cmd == "CLUSTER" && len(step) > 1:
		return cmd + " " + strings.ToUpper(step[1])
	case cmd == "WAIT", len(step) < 2:
		return cmd
	}
	return cmd + " " + step[1]
}

// CheckRights reports which of steps (each a command and its arguments,
// with the keys and channels it touches) the client's Redis user may not
// run, as "COMMAND arg …" lines; on Cluster, on any master. A user who may
// not run scripts at all is one line, "EVAL".
func CheckRights(ctx context.Context, c redis.UniversalClient, steps [][]string) ([]string, error) {
	args := make([]any, 0, 4*len(steps))
	for _, s := range steps {
		args = append(args, strconv.Itoa(len(s)))
		for _, a := range s {
			args = append(args, a)
		}
	}
	check := func(ctx context.Context, c redis.Scripter) ([]string, error) {
		// EVAL, not EVALSHA: runs once, and needs no cached script.
		res, err := rightsScript.Eval(ctx, c, nil, args...).Result()
		if err != nil {
			var re redis.Error
			if errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOPERM") {
				return []string{"EVAL (scripts: +@scripting)"}, nil
			}
			return nil, err
		}
		if n, ok := res.(int64); ok && n == -1 {
			return nil, ErrNoACLCheck
		}
		list, _ := res.([]any)
		out := make([]string, 0, len(list))
		for _, v := range list {
			if i, ok := v.(int64); ok && i >= 1 && int(i) <= len(steps) {
				out = append(out, label(steps[i-1]))
			}
		}
		return out, nil
	}
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return check(ctx, c)
	}
	var (
		mu     sync.Mutex
		denied []string
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		d, err := check(ctx, node)
		mu.Lock()
		defer mu.Unlock()
		for _, s := range d {
			if !slices.Contains(denied, s) {
				denied = append(denied, s)
			}
		}
		return err
	})
	slices.Sort(denied)
	return denied, err
}
