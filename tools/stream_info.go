package tools

import (
	"context"
	"fmt"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// StreamInfoInput names the stream to describe.
type StreamInfoInput struct {
	Stream string `json:"stream" jsonschema:"enum=audit_log_stream,enum=ccwj_update_stream,enum=user_feedback,enum=workflow_events" jsonschema_description:"Stream to describe, by its name without the key prefix."`
}

// StreamGroup describes one consumer group of a stream.
type StreamGroup struct {
	Name                string            `json:"name" jsonschema_description:"The group's name."`
	Consumers           int64             `json:"consumers" jsonschema_description:"Consumers the group knows (every name that ever claimed in it)."`
	Pending             int64             `json:"pending" jsonschema_description:"Entries handed out and not yet acknowledged."`
	Lag                 *int64            `json:"lag,omitempty" jsonschema_description:"Entries not yet handed out to the group; absent when it cannot be told (more than 10000 behind, and Redis does not know)."`
	LastDeliveredID     string            `json:"last_delivered_id" jsonschema_description:"The newest entry the group has handed out (0-0: none yet)."`
	OldestPendingID     string            `json:"oldest_pending_id,omitempty" jsonschema_description:"The lowest id pending in the group; absent when none is."`
	OldestPendingAgeMS  *int64            `json:"oldest_pending_age_ms,omitempty" jsonschema_description:"How long ago that entry was added to the stream, in ms (Redis' clock)."`
	OldestPendingIdleMS *int64            `json:"oldest_pending_idle_ms,omitempty" jsonschema_description:"How long since that entry was last handed out, in ms: past the claims' reclaim_idle_ms, the next claim reclaims it."`
	PendingByConsumer   []ConsumerPending `json:"pending_by_consumer" jsonschema_description:"The consumers holding pending entries, most first (at most 100)."`
}

// ConsumerPending is how many entries one consumer holds.
type ConsumerPending struct {
	Consumer string `json:"consumer" jsonschema_description:"The consumer."`
	Pending  int64  `json:"pending" jsonschema_description:"Entries pending with it."`
}

// StreamInfoResult describes a stream and its consumer groups.
type StreamInfoResult struct {
	Stream           string        `json:"stream" jsonschema_description:"Redis key of the stream."`
	Length           int64         `json:"length" jsonschema_description:"Entries the stream holds (its retention trims the oldest)."`
	FirstID          string        `json:"first_id,omitempty" jsonschema_description:"Id of the oldest entry; absent when the stream is empty."`
	LastID           string        `json:"last_id,omitempty" jsonschema_description:"Id of the newest entry; absent when the stream is empty."`
	NewestAgeMS      *int64        `json:"newest_age_ms,omitempty" jsonschema_description:"How long ago the newest entry was added, in ms (Redis' clock); absent when the stream is empty."`
	DeadLetterStream string        `json:"dead_letter_stream" jsonschema_description:"Redis key of the stream's dead letters."`
	DeadLetters      int64         `json:"dead_letters" jsonschema_description:"Entries in the dead letters."`
	Groups           []StreamGroup `json:"groups" jsonschema_description:"The stream's consumer groups by name (at most 100)."`
	GroupsTotal      int           `json:"groups_total" jsonschema_description:"How many consumer groups the stream has."`
}

func streamInfo(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[StreamInfoInput, StreamInfoResult]{
		Name:  "stream_info",
		Title: "Describe a stream and its consumer groups",
		Description: "Describe one of the server's streams: its length, first and last entry ids, how long ago the newest entry was added, how many dead letters it has, " +
			"and for each consumer group (claim_events) its consumers, pending entries (and who holds them), lag (entries not yet handed out), " +
			fmt.Sprintf("last delivered id, and the age and idle time of its oldest pending entry. Entries pending longer than the claims' reclaim_idle_ms (%d ms by default) belong to a worker that stopped; ", reclaimMS(d)) +
			fmt.Sprintf("entries handed out %d times (groups.max_deliveries) go to the dead letters. Reads only.", max(d.MaxDeliveries, 1)),
		Hints:       mcpkit.Hints{ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
		Unavailable: "Nothing was written; read again later.",
		Record: func(in *StreamInfoInput, out *StreamInfoResult) (map[string]any, map[string]any) {
			inputs := fields("stream", in.Stream)
			if out == nil {
				return inputs, nil
			}
			return inputs, fields("length", out.Length, "groups", out.GroupsTotal, "dead_letters", out.DeadLetters)
		},
		Handle: func(ctx context.Context, in *StreamInfoInput) (*StreamInfoResult, error) {
			info, err := d.Groups.Info(ctx, in.Stream)
			if err != nil {
				return nil, err
			}
			out := &StreamInfoResult{Stream: info.Key, Length: info.Length, FirstID: info.FirstID, LastID: info.LastID,
				DeadLetterStream: info.DeadLetterKey, DeadLetters: info.DeadLetters, Groups: []StreamGroup{}, GroupsTotal: info.GroupsTotal}
			if info.LastID != "" {
				out.NewestAgeMS = ptr(info.NewestAge.Milliseconds())
			}
			for _, g := range info.Groups {
				sg := StreamGroup{Name: g.Name, Consumers: g.Consumers, Pending: g.Pending, LastDeliveredID: g.LastDeliveredID,
					OldestPendingID: g.OldestPendingID, PendingByConsumer: []ConsumerPending{}}
				if g.LagKnown {
					sg.Lag = ptr(g.Lag)
				}
				if g.OldestPendingID != "" {
					sg.OldestPendingAgeMS, sg.OldestPendingIdleMS = ptr(g.OldestPendingAge.Milliseconds()), ptr(g.OldestPendingIdle.Milliseconds())
				}
				for _, c := range g.PendingByConsumer {
					sg.PendingByConsumer = append(sg.PendingByConsumer, ConsumerPending{Consumer: c.Consumer, Pending: c.Pending})
				}
				out.Groups = append(out.Groups, sg)
			}
			return out, nil
		},
	})
}

func ptr[T any](v T) *T { return &v }

// reclaimMS is claim_events' default reclaim_idle_ms.
func reclaimMS(d *Deps) int64 {
	if d.ReclaimIdle <= 0 {
		return 60000
	}
	return d.ReclaimIdle.Milliseconds()
}
