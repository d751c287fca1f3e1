package app

import (
	"context"
	"log/slog"
	"reflect"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/notify"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
	"github.com/mcp-redis/mcp-redis/internal/resources"
	"github.com/mcp-redis/mcp-redis/tools"
)

// resourceSet is the MCP resources (internal/resources) wired to this
// server's Redis: read through the stream store and the locker, and
// followed through the one Redis subscription of the process
// (internal/notify), opened with the first resource subscription.
type resourceSet struct {
	svc      *resources.Service
	listener *notify.Listener
}

// records gives each stream's record type, so a resource decodes its
// entries as read_stream does (tools/read_stream.go).
var records = map[string]reflect.Type{
	keyspace.AuditLog:      reflect.TypeFor[tools.AuditRecord](),
	keyspace.CCWJUpdate:    reflect.TypeFor[tools.CCWJDeltaRecord](),
	keyspace.UserFeedback:  reflect.TypeFor[tools.FeedbackRecord](),
	keyspace.WorkflowEvent: reflect.TypeFor[tools.WorkflowEventRecord](),
}

// newResources adds the resources, their templates and subscriptions to s,
// which must not serve yet: the options it needs (the resources capability
// with subscribe, completions) are applied to s here.
//
// The one Redis subscription also feeds also (the dashboard's live
// updates).
func newResources(cfg config.Config, conn *rdb.Conn, keys keyspace.Keyspace, st resources.Streams, locker *lock.Locker, s *server.MCPServer, also listener, log *slog.Logger) *resourceSet {
	r := &resources.Reader{Streams: st, Locks: locker, Keys: keys, Records: records,
		MaxEntryBytes: cfg.Limits.MaxEntryBytes, Timeout: cfg.Redis.Timeout, Log: log}
	svc := resources.New(r, log)
	// Each notice is decoded once, for both.
	notice := func(channel, payload string) {
		n := notify.Decode(payload)
		svc.Heard(channel, n)
		also.Heard(channel, n)
	}
	resubscribed := func() {
		svc.Resubscribed()
		also.Resubscribed()
	}
	l := notify.NewListener(conn.Client, resources.Channels(keys, cfg.Redis.ShardedPubSub), cfg.Redis.ShardedPubSub,
		notice, resubscribed, log)
	svc.SetListening(l)
	for _, o := range svc.ServerOptions() {
		o(s)
	}
	svc.Register(s)
	return &resourceSet{svc: svc, listener: l}
}

// listener is told of the notices the one subscription hears.
type listener interface {
	Heard(channel string, n notify.Notice)
	Resubscribed()
}

// listen starts the Redis subscription (once), waiting up to a second
// for Redis to confirm it.
func (r *resourceSet) listen() { r.listener.Start(context.Background(), time.Second) }

// Close ends the Redis subscription, then the subscriptions it fed.
func (r *resourceSet) Close() {
	r.listener.Close()
	r.svc.Close()
}
