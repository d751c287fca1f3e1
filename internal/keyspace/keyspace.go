// Package keyspace holds the exact Redis key and channel names the server
// reads and writes. Other programs read these names: they are an interface.
package keyspace

import (
	"fmt"
	"strings"
)

// Stream names, without the prefix. They are the values read_stream accepts.
const (
	AuditLog      = "audit_log_stream"
	CCWJUpdate    = "ccwj_update_stream"
	UserFeedback  = "user_feedback"
	WorkflowEvent = "workflow_events"
)

// Streams lists every stream the server writes, in a fixed order.
var Streams = []string{AuditLog, CCWJUpdate, UserFeedback, WorkflowEvent}

// IsStream reports whether name is one of Streams.
func IsStream(name string) bool {
	for _, s := range Streams {
		if s == name {
			return true
		}
	}
	return false
}

// Keyspace derives every key from one prefix (config redis.prefix, "mcp:" by
// default).
type Keyspace struct {
	Prefix string
}

// Stream is the key of a stream: "mcp:audit_log_stream".
func (k Keyspace) Stream(name string) string { return k.Prefix + name }

// Events is the pub/sub channel announcing writes to a stream:
// "mcp:events:audit_log_stream".
func (k Keyspace) Events(stream string) string { return k.Prefix + "events:" + stream }

// Idempotency is the record of a caller-supplied entry id. Its hash tag is
// the stream key's full name, so it shares the stream's cluster slot:
// "{mcp:audit_log_stream}:idem:<id>".
func (k Keyspace) Idempotency(stream, id string) string {
	return tag(k.Stream(stream)) + ":idem:" + id
}

// Context is the materialised context of one workflow, kept beside the CCWJ
// stream in its slot: "{mcp:ccwj_update_stream}:ctx:<workflow_id>".
func (k Keyspace) Context(workflowID string) string {
	return tag(k.Stream(CCWJUpdate)) + ":ctx:" + workflowID
}

// ChainHead is the head of a chained stream's hash chain, "<entry id>
// <hash> <length>", written by the append script with each entry:
// "{mcp:audit_log_stream}:chain".
func (k Keyspace) ChainHead(stream string) string { return tag(k.Stream(stream)) + ":chain" }

// Checkpoints is the stream of signed checkpoints of a chained stream:
// "{mcp:audit_log_stream}:checkpoints".
func (k Keyspace) Checkpoints(stream string) string { return tag(k.Stream(stream)) + ":checkpoints" }

func tag(key string) string { return "{" + key + "}" }

// ValidatePrefix reports why a prefix cannot be used, or nil. A prefix with
// braces would change the hash tags above; whitespace and control
// characters make keys unreadable in redis-cli.
func ValidatePrefix(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("must not be empty")
	case len(p) > 64:
		return fmt.Errorf("is %d bytes; at most 64 allowed", len(p))
	case strings.ContainsAny(p, "{}*?[]"):
		return fmt.Errorf("must not contain braces or glob characters ({}*?[])")
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("must not contain whitespace or control characters")
		}
	}
	return nil
}

// Lock is the key of a lock, holding its owner token: "mcp:locks:<resource>".
func (k Keyspace) Lock(resource string) string { return k.Prefix + "locks:" + resource }

// LockFence is the fencing counter of a lock, in the lock key's slot:
// "{mcp:locks:<resource>}:fence". It never expires.
func (k Keyspace) LockFence(resource string) string { return tag(k.Lock(resource)) + ":fence" }

// LockOwner holds the holder's owner label, with the lock's expiry:
// "{mcp:locks:<resource>}:owner".
func (k Keyspace) LockOwner(resource string) string { return tag(k.Lock(resource)) + ":owner" }

// LockEvents is the channel announcing lock releases: "mcp:events:locks".
func (k Keyspace) LockEvents() string { return k.Prefix + "events:locks" }

// Rate is a rate limiter's state for one subject under one policy:
// "mcp:rate:<policy>:<subject>". Policy names hold no colon.
func (k Keyspace) Rate(policy, subject string) string {
	return k.Prefix + "rate:" + policy + ":" + subject
}
