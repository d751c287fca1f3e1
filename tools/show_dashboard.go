package tools

import (
	"context"
	"errors"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// DashboardURI is the MCP App resource show_dashboard opens in hosts that
// render MCP Apps (the extension io.modelcontextprotocol/ui).
const DashboardURI = "ui://mcp-redis/dashboard"

// ShowDashboardInput takes no arguments.
type ShowDashboardInput struct{}

// Overview is the dashboard's picture of the server at one moment.
type Overview struct {
	GeneratedAt string `json:"generated_at" jsonschema_description:"When this overview was taken (RFC 3339, UTC, ms)."`
	Server      Health `json:"server" jsonschema_description:"The server's own health."`
	// Streams are always the four, in keyspace.Streams' order.
	Streams        []StreamSummary `json:"streams" jsonschema_description:"The four streams, in the order audit_log_stream, ccwj_update_stream, user_feedback, workflow_events."`
	Groups         []GroupSummary  `json:"groups" jsonschema_description:"Every stream's consumer groups."`
	Locks          []LockSummary   `json:"locks" jsonschema_description:"The locks held now, by resource (never a token)."`
	LocksTotal     int             `json:"locks_total" jsonschema_description:"How many held locks were found."`
	LocksTruncated bool            `json:"locks_truncated" jsonschema_description:"True when there are more locks than listed."`
	Rates          []RateSummary   `json:"rates" jsonschema_description:"Rate-limit subjects using at least half of their policy's limit, most used first."`
	Notes          []string        `json:"notes" jsonschema_description:"Why a part could not be filled in (e.g. the Redis user may not run SCAN); empty when all is there."`
}

// Health is the server's own state.
type Health struct {
	Version        string  `json:"version" jsonschema_description:"The server's version."`
	UptimeMS       int64   `json:"uptime_ms" jsonschema_description:"How long the server has run, in ms."`
	RedisOK        bool    `json:"redis_ok" jsonschema_description:"Whether Redis answered PING."`
	RedisError     string  `json:"redis_error,omitempty" jsonschema_description:"Why not, when it did not."`
	RedisLatencyMS float64 `json:"redis_latency_ms" jsonschema_description:"How long PING took, in ms."`
	CallsPerS      float64 `json:"calls_per_s" jsonschema_description:"Tool calls per second on this server, over the last few seconds."`
	ErrorsPerS     float64 `json:"errors_per_s" jsonschema_description:"Tool calls per second that ended in an error, over the same time."`
	ErrorRate      float64 `json:"error_rate" jsonschema_description:"errors_per_s / calls_per_s (0 when no calls)."`
	InFlight       int64   `json:"in_flight" jsonschema_description:"Tool calls running now."`
}

// StreamSummary is one stream at a glance.
type StreamSummary struct {
	Name        string  `json:"name" jsonschema_description:"The stream's name."`
	Key         string  `json:"key" jsonschema_description:"Its Redis key."`
	Length      int64   `json:"length" jsonschema_description:"Entries it holds."`
	LastID      string  `json:"last_id,omitempty" jsonschema_description:"Id of the newest entry; absent when empty."`
	NewestAgeMS *int64  `json:"newest_age_ms,omitempty" jsonschema_description:"How long ago the newest entry was added, in ms (Redis' clock); absent when empty."`
	PerMinute   []int64 `json:"per_minute" jsonschema_description:"Entries added in each of the last 30 minutes, oldest first; the last is the current minute."`
	DeadLetters int64   `json:"dead_letters" jsonschema_description:"Entries in its dead letters."`
}

// GroupSummary is one consumer group at a glance.
type GroupSummary struct {
	Stream              string `json:"stream" jsonschema_description:"The stream."`
	Name                string `json:"name" jsonschema_description:"The group."`
	Consumers           int64  `json:"consumers" jsonschema_description:"Consumers the group knows."`
	Pending             int64  `json:"pending" jsonschema_description:"Entries handed out and not acknowledged."`
	Lag                 *int64 `json:"lag,omitempty" jsonschema_description:"Entries not yet handed out; absent when it cannot be told."`
	OldestPendingID     string `json:"oldest_pending_id,omitempty" jsonschema_description:"The lowest pending id; absent when none is pending."`
	OldestPendingAgeMS  *int64 `json:"oldest_pending_age_ms,omitempty" jsonschema_description:"How long ago that entry was added, in ms."`
	OldestPendingIdleMS *int64 `json:"oldest_pending_idle_ms,omitempty" jsonschema_description:"How long since it was last handed out, in ms."`
	DeadLetters         int64  `json:"dead_letters" jsonschema_description:"Entries in the stream's dead letters."`
}

// LockSummary is one held lock, never its token.
type LockSummary struct {
	Resource     string `json:"resource" jsonschema_description:"The resource locked."`
	Owner        string `json:"owner,omitempty" jsonschema_description:"The holder's owner label; absent when none was given."`
	FencingToken int64  `json:"fencing_token" jsonschema_description:"The holder's fencing token."`
	TTLMS        int64  `json:"ttl_ms" jsonschema_description:"Remaining ttl in ms; -1 when the key has no expiry."`
	ExpiresAt    string `json:"expires_at,omitempty" jsonschema_description:"When it expires (Redis' clock); absent without an expiry."`
}

// RateSummary is one rate-limit subject near its limit.
type RateSummary struct {
	Policy   string  `json:"policy" jsonschema_description:"The policy."`
	Subject  string  `json:"subject" jsonschema_description:"The subject."`
	Used     int64   `json:"used" jsonschema_description:"Units used in the current window."`
	Limit    int64   `json:"limit" jsonschema_description:"The policy's limit."`
	WindowMS int64   `json:"window_ms" jsonschema_description:"The policy's window, in ms."`
	Fraction float64 `json:"fraction" jsonschema_description:"used / limit."`
}

func showDashboard(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[ShowDashboardInput, Overview]{
		Name:  "show_dashboard",
		Title: "Show the live dashboard",
		Description: "Show what the agents are doing: the four streams (length, entries per minute over the last 30 minutes, age of the newest entry), " +
			"consumer groups (lag, pending, oldest pending, dead letters), the locks held now (resource, owner label, fencing token, remaining ttl; never a token), " +
			"rate-limit subjects near their limit, and the server's health (Redis reachable, calls/s, error rate). Reads only. " +
			"Hosts that render MCP Apps show it as a live dashboard (" + DashboardURI + ") next to the conversation.",
		Hints:       mcpkit.Hints{ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
		Unavailable: "Nothing was written; ask again later.",
		// Both spellings of the link: the extension's (ui.resourceUri)
		// and the flat key hosts of its first drafts read.
		Meta: map[string]any{
			"ui":             map[string]any{"resourceUri": DashboardURI, "visibility": []string{"model", "app"}},
			"ui/resourceUri": DashboardURI,
		},
		Record: func(_ *ShowDashboardInput, out *Overview) (map[string]any, map[string]any) {
			if out == nil {
				return map[string]any{}, nil
			}
			return map[string]any{}, fields("locks", out.LocksTotal, "groups", len(out.Groups))
		},
		Handle: func(ctx context.Context, _ *ShowDashboardInput) (*Overview, error) {
			if d.Dashboard == nil {
				return nil, errors.New("show_dashboard: no dashboard is wired")
			}
			return d.Dashboard.Overview(ctx)
		},
	})
}
