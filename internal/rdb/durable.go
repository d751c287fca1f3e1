package rdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Durable is a client whose scripts are each followed by WAIT on the same
// connection, so a write is answered only once numreplicas replicas hold
// it (redis.wait_replicas). A script whose WAIT confirms fewer replicas, or
// fails, answers a *NotDurable error instead of its reply: Redis applied
// the write on the master, and a failover may lose it.
//
// Scripts run as EVALSHA/EVAL (Script.Run) and pipelines of them (the
// chained stream's batches) go through it; every other command is the
// embedded client's own. go-redis has no way to pin WAIT to the connection
// of the command before it other than a pipeline on one connection, and
// its ClusterClient routes a keyless WAIT to any node: so for Cluster the
// pipeline runs on the master of the first script's key.
type Durable struct {
	redis.UniversalClient
	replicas int
	timeout  time.Duration
	reload   *reloader // nil unless Cluster
}

// NotDurable is a write that Redis applied on its master but that WAIT did
// not confirm on enough replicas.
type NotDurable struct {
	Want, Got int
	Timeout   time.Duration
	// Err is WAIT's own failure, if it failed rather than timed out.
	Err error
}

func (e *NotDurable) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("durability not confirmed: WAIT %d failed: %v", e.Want, e.Err)
	}
	return fmt.Sprintf("durability not confirmed: %d of %d replicas within %v", e.Got, e.Want, e.Timeout)
}

func (e *NotDurable) Unwrap() error { return e.Err }

// EvalSha runs the script and WAIT in one pipeline.
func (d *Durable) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return d.one(ctx, evalArgs("evalsha", sha1, keys, args))
}

// Eval runs the script and WAIT in one pipeline.
func (d *Durable) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return d.one(ctx, evalArgs("eval", script, keys, args))
}

func (d *Durable) one(ctx context.Context, args []any) *redis.Cmd {
	cmd := redis.NewCmd(ctx, args...)
	_ = d.exec(ctx, []redis.Cmder{cmd})
	return cmd
}

func evalArgs(name, script string, keys []string, args []any) []any {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, script, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	return append(a, args...)
}

// Pipeline is a pipeline whose Exec appends WAIT.
func (d *Durable) Pipeline() redis.Pipeliner {
	return &durablePipe{Pipeliner: d.UniversalClient.Pipeline(), d: d}
}

type durablePipe struct {
	redis.Pipeliner
	d *Durable
}

func (p *durablePipe) Exec(ctx context.Context) ([]redis.Cmder, error) {
	cmds := p.Cmds()
	p.Discard()
	if len(cmds) == 0 {
		return nil, nil
	}
	return cmds, p.d.exec(ctx, cmds)
}

// exec runs cmds and WAIT in one pipeline on one connection. A command
// that succeeded gets a *NotDurable error when WAIT confirms too few
// replicas; one that failed keeps its own error.
func (d *Durable) exec(ctx context.Context, cmds []redis.Cmder) error {
	var target redis.Cmdable = d.UniversalClient
	if cc, ok := d.UniversalClient.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, firstKey(cmds))
		if err != nil {
			d.reload.nudge(err)
			return setErr(cmds, err)
		}
		target = node
	}
	pipe := target.Pipeline()
	for _, c := range cmds {
		_ = pipe.Process(ctx, c)
	}
	wait := redis.NewIntCmd(ctx, "wait", d.replicas, d.timeout.Milliseconds())
	_ = pipe.Process(ctx, wait)
	_, err := pipe.Exec(ctx)
	if d.reload != nil {
		for _, c := range cmds {
			if e := c.Err(); e != nil && (Unreachable(e) || movedOrAsk(e)) {
				d.reload.nudge(e)
				break
			}
		}
	}
	var nd *NotDurable
	if n, werr := wait.Result(); werr != nil {
		nd = &NotDurable{Want: d.replicas, Timeout: d.timeout, Err: werr}
	} else if int(n) < d.replicas {
		nd = &NotDurable{Want: d.replicas, Got: int(n), Timeout: d.timeout}
	}
	if nd == nil {
		return err
	}
	for _, c := range cmds {
		if c.Err() == nil {
			c.SetErr(nd)
		}
	}
	return nd
}

// firstKey is the first key of the first script among cmds ("" for none).
func firstKey(cmds []redis.Cmder) string {
	for _, c := range cmds {
		a := c.Args()
		if len(a) > 3 {
			if n, ok := a[2].(int); ok && n > 0 {
				if k, ok := a[3].(string); ok {
					return k
				}
			}
		}
	}
	return ""
}

func setErr(cmds []redis.Cmder, err error) error {
	for _, c := range cmds {
		c.SetErr(err)
	}
	return err
}

// movedOrAsk reports a MOVED or ASK redirection: the command did not run
// on the node asked (Durable does not follow redirections; the slot map is
// reloaded and the caller retries).
func movedOrAsk(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}
