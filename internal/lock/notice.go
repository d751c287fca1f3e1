package lock

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
)

// Lock notices on keyspace.LockEvents ("mcp:events:locks"): a small JSON
// object whose "event" says what happened to "resource".
const (
	EventAcquired = "acquired"
	EventReleased = "released"
)

// acquiredNotice is the grant notice up to its fencing token, which only
// acquire.lua knows: '{"event":"acquired","resource":…,"key":…[,"owner":…],
// "fencing_token":'. The script (or, with sharded pub/sub, announce) adds
// the token and the closing brace.
func acquiredNotice(resource, key, owner string) string {
	var b strings.Builder
	b.WriteString(`{"event":"acquired","resource":`)
	writeJSON(&b, resource)
	b.WriteString(`,"key":`)
	writeJSON(&b, key)
	if owner != "" {
		b.WriteString(`,"owner":`)
		writeJSON(&b, owner)
	}
	b.WriteString(`,"fencing_token":`)
	return b.String()
}

func writeJSON(b *strings.Builder, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}

// announceGrant sends the grant notice with SPUBLISH after the script,
// with sharded pub/sub (the channel is in no lock's slot). A lost notice
// costs a subscriber the change, as any pub/sub notice may.
func (l *Locker) announceGrant(ctx context.Context, resource, key, owner string, fence int64) {
	note := acquiredNotice(resource, key, owner) + strconv.FormatInt(fence, 10) + "}"
	if err := l.rdb.SPublish(ctx, l.keys.LockEvents(), note).Err(); err != nil {
		l.log.Warn("lock: granted, but the grant notice was not sent", "resource", resource, "err", err)
	}
}
