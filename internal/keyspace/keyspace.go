// Package keyspace holds the exact Redis key and channel names the server
// reads and writes. Other programs read these names: they are an interface.
//
// Every key and channel starts with the prefix (config redis.prefix, "mcp:"
// here), so a least-privilege ACL user granted "~mcp:* &mcp:*" reaches all of
// them. A helper key puts its kind after the prefix and then, as its hash
// tag, the full name of the main key it serves, so in Redis Cluster it shares
// that key's slot (Redis hashes only what is inside the first {…}; a main
// key has no braces, so its slot is the hash of its whole name):
//
//	main keys and channels
//	mcp:<stream>                                  stream (Streams)
//	mcp:locks:<resource>                          lock owner token
//	mcp:rate:<policy>:<subject>                   rate limiter state
//	mcp:events:<stream>, mcp:events:locks         pub/sub channels
//	mcp:events:{mcp:<stream>}                     the stream's channel with
//	                                              sharded pub/sub (SPUBLISH)
//	mcp:events:dead_letter:{mcp:<stream>}         the dead letters' channel
//	                                              (either pub/sub mode)
//	helper keys (hash tag = their main key)
//	mcp:idem:{mcp:<stream>}:<id>                  idempotency record
//	mcp:ctx:{mcp:ccwj_update_stream}:<workflow>   workflow context hash
//	mcp:chain:{mcp:<stream>}                      hash chain head
//	mcp:checkpoints:{mcp:<stream>}                signed checkpoints stream
//	mcp:dead_letter:{mcp:<stream>}                stream: entries a consumer
//	                                              group gave up on
//	mcp:fence:{mcp:locks:<resource>}              fencing counter
//	mcp:owner:{mcp:locks:<resource>}              lock owner label
//
// The prefix holds no braces (ValidatePrefix) and a resource none either
// (its pattern is [A-Za-z0-9._:/@-]), so the tag always ends where the main
// key does. Ids and workflow ids may hold braces: they come after the tag and
// do not change the slot. Earlier releases named helper keys
// "{mcp:…}:<kind>…"; Legacy parses those for "mcp-redis migrate".
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

// ShardedEvents is the channel announcing writes to a stream with sharded
// pub/sub (redis.sharded_pubsub): "mcp:events:{mcp:audit_log_stream}". Its
// hash tag puts it in the stream's slot, as SPUBLISH from the script that
// writes the stream must stay in that slot's shard.
func (k Keyspace) ShardedEvents(stream string) string {
	return k.Prefix + "events:" + tag(k.Stream(stream))
}

// Idempotency is the record of a caller-supplied entry id, in the stream's
// slot: "mcp:idem:{mcp:audit_log_stream}:<id>".
func (k Keyspace) Idempotency(stream, id string) string {
	return k.helper(KindIdem, k.Stream(stream)) + ":" + id
}

// Context is the materialised context of one workflow, kept beside the CCWJ
// stream in its slot: "mcp:ctx:{mcp:ccwj_update_stream}:<workflow_id>".
func (k Keyspace) Context(workflowID string) string {
	return k.helper(KindCtx, k.Stream(CCWJUpdate)) + ":" + workflowID
}

// ChainHead is the head of a chained stream's hash chain, "<entry id>
// <hash> <length>", written by the append script with each entry:
// "mcp:chain:{mcp:audit_log_stream}".
func (k Keyspace) ChainHead(stream string) string { return k.helper(KindChain, k.Stream(stream)) }

// Checkpoints is the stream of signed checkpoints of a chained stream:
// "mcp:checkpoints:{mcp:audit_log_stream}".
func (k Keyspace) Checkpoints(stream string) string {
	return k.helper(KindCheckpoints, k.Stream(stream))
}

// DeadLetter is the stream of a stream's dead letters, the entries a
// consumer group stopped handing out after groups.max_deliveries, in the
// stream's slot so one script moves an entry there and acknowledges it:
// "mcp:dead_letter:{mcp:workflow_events}".
func (k Keyspace) DeadLetter(stream string) string {
	return k.helper(KindDeadLetter, k.Stream(stream))
}

// DeadLetterEvents is the channel announcing a stream's dead letters:
// "mcp:events:dead_letter:{mcp:workflow_events}". It is the events channel
// of the dead-letter stream (prefix, "events:", the key after the prefix),
// and its hash tag puts it in the stream's slot in both pub/sub modes, so
// the script that moves an entry announces it, with PUBLISH or SPUBLISH.
func (k Keyspace) DeadLetterEvents(stream string) string {
	return k.Prefix + "events:" + strings.TrimPrefix(k.DeadLetter(stream), k.Prefix)
}

// The kinds of helper key, the word after the prefix.
const (
	KindIdem        = "idem"
	KindCtx         = "ctx"
	KindChain       = "chain"
	KindCheckpoints = "checkpoints"
	KindFence       = "fence"
	KindOwner       = "owner"
	KindDeadLetter  = "dead_letter"
)

// helper is "<prefix><kind>:{<main key>}".
func (k Keyspace) helper(kind, main string) string { return k.Prefix + kind + ":" + tag(main) }

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
// "mcp:fence:{mcp:locks:<resource>}". It never expires.
func (k Keyspace) LockFence(resource string) string { return k.helper(KindFence, k.Lock(resource)) }

// LockOwner holds the holder's owner label, with the lock's expiry:
// "mcp:owner:{mcp:locks:<resource>}".
func (k Keyspace) LockOwner(resource string) string { return k.helper(KindOwner, k.Lock(resource)) }

// LockEvents is the channel announcing lock releases: "mcp:events:locks".
func (k Keyspace) LockEvents() string { return k.Prefix + "events:locks" }

// Rate is a rate limiter's state for one subject under one policy:
// "mcp:rate:<policy>:<subject>". Policy names hold no colon.
func (k Keyspace) Rate(policy, subject string) string {
	return k.Prefix + "rate:" + policy + ":" + subject
}
