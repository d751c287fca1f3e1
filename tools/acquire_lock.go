package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// AcquireLockInput asks for a lock.
type AcquireLockInput struct {
	Resource mcpkit.Key  `json:"resource" jsonschema_description:"What to lock: 1 to 200 bytes of letters, digits and . _ : / @ -. The lock is the Redis key mcp:locks:<resource>."`
	TTLMS    int64       `json:"ttl_ms,omitempty" jsonschema:"minimum=100,maximum=600000,default=30000" jsonschema_description:"How long the lock holds unless released or extended, in ms; 30000 when absent."`
	WaitMS   int64       `json:"wait_ms,omitempty" jsonschema:"minimum=0,maximum=30000,default=0" jsonschema_description:"How long to wait for a held lock to come free, in ms; 0 (the default) answers at once."`
	Owner    mcpkit.Name `json:"owner,omitempty" jsonschema:"maxLength=128" jsonschema_description:"A label for whoever holds the lock, shown to others who find it held. At most 128 characters."`
}

// AcquireLockResult is a grant, or who holds the lock.
type AcquireLockResult struct {
	Acquired     bool   `json:"acquired" jsonschema_description:"True when the lock is now yours."`
	Resource     string `json:"resource" jsonschema_description:"The resource."`
	Key          string `json:"key" jsonschema_description:"The lock's Redis key."`
	Token        string `json:"token,omitempty" jsonschema_description:"Your owner token: pass it to release_lock and extend_lock. Only when acquired."`
	FencingToken int64  `json:"fencing_token,omitempty" jsonschema_description:"Grows with every grant of this resource, across expiries, and across restarts as long as Redis keeps its data (a Redis restart keeps it only with persistence, AOF or RDB; the embedded Redis keeps nothing): pass it to the guarded system so it can refuse a stale holder. Only when acquired."`
	TTLMS        int64  `json:"ttl_ms" jsonschema_description:"The granted ttl in ms; when not acquired, the holder's remaining ttl (-1: the holder's key has no expiry, it was set outside this server)."`
	ExpiresAt    string `json:"expires_at,omitempty" jsonschema_description:"When the grant (or the holder's lock) expires, RFC 3339 UTC, by Redis's clock; absent when it never does."`
	Owner        string `json:"owner,omitempty" jsonschema_description:"The holder's owner label, when not acquired and the holder gave one."`
	WaitedMS     int64  `json:"waited_ms" jsonschema_description:"How long the call waited, in ms."`
}

func acquireLock(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[AcquireLockInput, AcquireLockResult]{
		Name:  "acquire_lock",
		Title: "Acquire a lock",
		Description: "Take a distributed lock on a resource for ttl_ms, optionally waiting up to wait_ms for it to come free. " +
			"Not getting it is a normal answer (acquired: false, with the holder's owner label and remaining ttl), not an error. " +
			"Keep the token to release or extend the lock, and pass fencing_token to the system you guard. " + fencingAcrossFailover(d.WaitReplicas),
		Hints:       mcpkit.Hints{ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
		Unavailable: "A lock granted whose answer was lost is given back once Redis answers again; call acquire_lock again later.",
		Schema: func(s *jsonschema.Schema) {
			setMax(s, "ttl_ms", d.LockMaxTTL)
			setMax(s, "wait_ms", d.LockMaxWait)
		},
		Budget: func(in *AcquireLockInput) time.Duration { return time.Duration(in.WaitMS) * time.Millisecond },
		// Never the token: whoever reads the trail could release the lock.
		Record: func(in *AcquireLockInput, out *AcquireLockResult) (map[string]any, map[string]any) {
			inputs := fields("resource", string(in.Resource), "owner", string(in.Owner), "ttl_ms", in.TTLMS, "wait_ms", in.WaitMS)
			if in.TTLMS == 0 {
				delete(inputs, "ttl_ms")
			}
			if in.WaitMS == 0 {
				delete(inputs, "wait_ms")
			}
			if out == nil {
				return inputs, nil
			}
			o := fields("acquired", out.Acquired, "key", out.Key, "ttl_ms", out.TTLMS, "expires_at", out.ExpiresAt, "waited_ms", out.WaitedMS)
			if out.Acquired {
				o["fencing_token"] = out.FencingToken
			} else if out.Owner != "" {
				o["held_by"] = out.Owner
			}
			return inputs, o
		},
		Handle: func(ctx context.Context, in *AcquireLockInput) (*AcquireLockResult, error) {
			ttl := time.Duration(in.TTLMS) * time.Millisecond
			if ttl == 0 {
				ttl = 30 * time.Second
			}
			g, err := d.Locks.Acquire(ctx, string(in.Resource), ttl, time.Duration(in.WaitMS)*time.Millisecond, string(in.Owner))
			if err != nil {
				return nil, err
			}
			out := &AcquireLockResult{
				Acquired: g.Acquired, Resource: string(in.Resource), Key: g.Key,
				Token: g.Token, FencingToken: g.Fence, TTLMS: max(g.TTL.Milliseconds(), -1),
				Owner: g.Owner, WaitedMS: g.Waited.Milliseconds(),
			}
			if !g.ExpiresAt.IsZero() {
				out.ExpiresAt = Timestamp(g.ExpiresAt)
			}
			return out, nil
		},
	})
}

// setMax sets the maximum of an integer property from configuration, in
// ms, so the schema a client sees is the bound the server enforces.
func setMax(s *jsonschema.Schema, prop string, d time.Duration) {
	if d <= 0 {
		return
	}
	if p, ok := s.Properties.Get(prop); ok {
		p.Maximum = jsonNumber(d.Milliseconds())
	}
}

func jsonNumber(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }

// fencingAcrossFailover says what a Redis failover does to fencing tokens
// under the replication in force.
func fencingAcrossFailover(replicas int) string {
	if replicas > 0 {
		return fmt.Sprintf("This server answers a grant only once %d Redis replica(s) hold it (redis.wait_replicas), so fencing tokens never repeat or go backwards across a Redis failover.", replicas)
	}
	return "Across a Redis failover a fencing token can repeat or go backwards: replication is asynchronous and this server does not wait for replicas (redis.wait_replicas 0), so the newest grants can be lost with the old master."
}
