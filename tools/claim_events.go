package tools

import (
	"context"
	"fmt"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/groups"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// ClaimEventsInput asks for entries for one worker of a consumer group.
type ClaimEventsInput struct {
	Stream        string      `json:"stream" jsonschema:"enum=audit_log_stream,enum=ccwj_update_stream,enum=user_feedback,enum=workflow_events" jsonschema_description:"Stream to claim entries of, by its name without the key prefix."`
	Group         mcpkit.Name `json:"group" jsonschema_description:"Consumer group: the workers that share this stream's entries, each entry going to one of them. Made by the first claim for it (see from)."`
	Consumer      mcpkit.Name `json:"consumer" jsonschema_description:"This worker's name in the group, the same on every call: what it is handed stays pending with it until it acknowledges it with ack_events."`
	Count         int         `json:"count,omitempty" jsonschema:"minimum=1,maximum=100,default=10" jsonschema_description:"Most entries to hand out; 10 when absent."`
	BlockMS       int64       `json:"block_ms,omitempty" jsonschema:"minimum=0,maximum=30000,default=0" jsonschema_description:"When there is nothing to hand out, wait up to this many ms for a new entry; 0 (the default) answers at once."`
	ReclaimIdleMS int64       `json:"reclaim_idle_ms,omitempty" jsonschema:"minimum=100,maximum=86400000"`
	From          string      `json:"from,omitempty" jsonschema:"enum=$,enum=0,default=$" jsonschema_description:"Where a group this call makes starts: $ (the default) for the entries added from now on, 0 for every entry the stream holds. Ignored when the group exists."`
}

// ClaimedEntry is one entry handed out, decoded to the stream's schema.
type ClaimedEntry struct {
	ID            string         `json:"id" jsonschema_description:"Stream entry id: pass it to ack_events once the work is done."`
	Fields        map[string]any `json:"fields" jsonschema_description:"The entry's fields, decoded as read_stream decodes them."`
	DeliveryCount int64          `json:"delivery_count" jsonschema_description:"How many times the entry has been handed out, this time included: 1 for a new entry, more when a consumer before held it without acknowledging it (its work may be done in part)."`
	ReclaimedFrom string         `json:"reclaimed_from,omitempty" jsonschema_description:"The consumer the entry was pending with before it was reclaimed for this one; absent for a new entry."`
}

// DeadLettered is an entry this claim moved to the dead letters.
type DeadLettered struct {
	ID            string `json:"id" jsonschema_description:"The entry's id in its stream."`
	DeadLetterID  string `json:"dead_letter_id,omitempty" jsonschema_description:"Its id in the dead-letter stream; absent when the entry had been trimmed from its stream, so it was only acknowledged."`
	DeliveryCount int64  `json:"delivery_count" jsonschema_description:"How many times it was handed out without being acknowledged."`
	Consumer      string `json:"consumer" jsonschema_description:"The last consumer it was handed to."`
}

// ClaimEventsResult is what a claim handed out.
type ClaimEventsResult struct {
	Stream           string         `json:"stream" jsonschema_description:"Redis key of the stream."`
	Group            string         `json:"group" jsonschema_description:"The group."`
	Consumer         string         `json:"consumer" jsonschema_description:"The consumer the entries are now pending with."`
	Created          bool           `json:"created" jsonschema_description:"True when this call made the group."`
	Entries          []ClaimedEntry `json:"entries" jsonschema_description:"The entries handed out, reclaimed ones (oldest id first) before new ones; empty when there was nothing to hand out."`
	DeadLettered     []DeadLettered `json:"dead_lettered,omitempty" jsonschema_description:"Entries this call moved to the dead letters instead of handing them out again."`
	DeadLetterStream string         `json:"dead_letter_stream" jsonschema_description:"Redis key of the stream's dead letters."`
	WaitedMS         int64          `json:"waited_ms" jsonschema_description:"How long the call waited for a new entry, in ms."`
}

func claimEvents(d *Deps) mcpkit.Tool {
	// At most 30 s, as the tag says, and no more than streams.max_block.
	maxBlock := min(max(d.MaxBlock.Milliseconds(), 0), 30000)
	reclaim := time.Duration(reclaimMS(d)) * time.Millisecond
	deliveries := max(d.MaxDeliveries, 1)
	waits := fmt.Sprintf("With block_ms (at most %d ms on this server, streams.max_block), a claim that finds nothing to hand out waits for a new entry and answers as soon as one is handed to it.", maxBlock)
	if maxBlock == 0 {
		waits = "Waiting for new entries (block_ms) is turned off on this server (streams.max_block 0)."
	}
	return mcpkit.New(mcpkit.Spec[ClaimEventsInput, ClaimEventsResult]{
		Name:  "claim_events",
		Title: "Claim entries for a worker",
		Description: "Claim entries of one of the server's streams for a worker of a consumer group (Redis XREADGROUP), so that workers share the entries, each going to one of them. " +
			"What a worker is handed stays pending with it until it calls ack_events with the ids; " +
			fmt.Sprintf("an entry pending longer than reclaim_idle_ms (%d ms unless given, groups.reclaim_idle) is handed to the next worker that claims, so the entries of a worker that died are not lost, ", reclaim.Milliseconds()) +
			fmt.Sprintf("and one handed out %d times (groups.max_deliveries) without being acknowledged is moved to the stream's dead letters instead, with its id, fields, group and delivery count. ", deliveries) +
			"Loop: claim, do the work of each entry, acknowledge its id. Delivery is at least once: an entry whose delivery_count is above 1 may have been worked on before. " +
			"The first claim for a group makes it (from: $ for new entries only, 0 for every entry). " +
			"In audit_log_stream the server's own records of tool calls (module mcp-redis), claims included, are entries like any other. " + waits,
		Hints:       mcpkit.Hints{ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
		Unavailable: "Entries claimed whose answer was lost stay pending with this consumer and are handed out again after reclaim_idle_ms; call claim_events again later.",
		Schema: func(s *jsonschema.Schema) {
			if p, ok := s.Properties.Get("block_ms"); ok {
				p.Maximum = jsonNumber(maxBlock)
			}
			if p, ok := s.Properties.Get("reclaim_idle_ms"); ok {
				p.Default = reclaim.Milliseconds()
				p.Description = fmt.Sprintf("Hand this worker entries that have been pending with any consumer of the group (itself included) for at least this many ms, "+
					"as their consumer is taken to have died; %d (groups.reclaim_idle) when absent. Longer than the work of one claim takes, or entries are worked on twice.", reclaim.Milliseconds())
			}
		},
		Budget: func(in *ClaimEventsInput) time.Duration { return time.Duration(in.BlockMS) * time.Millisecond },
		Record: func(in *ClaimEventsInput, out *ClaimEventsResult) (map[string]any, map[string]any) {
			inputs := fields("stream", in.Stream, "group", string(in.Group), "consumer", string(in.Consumer), "from", in.From)
			for k, v := range map[string]int64{"count": int64(in.Count), "block_ms": in.BlockMS, "reclaim_idle_ms": in.ReclaimIdleMS} {
				if v != 0 {
					inputs[k] = v
				}
			}
			if out == nil {
				return inputs, nil
			}
			reclaimed := 0
			for _, e := range out.Entries {
				if e.ReclaimedFrom != "" {
					reclaimed++
				}
			}
			o := fields("entries", len(out.Entries), "reclaimed", reclaimed, "dead_lettered", len(out.DeadLettered), "created", out.Created, "waited_ms", out.WaitedMS)
			if n := len(out.Entries); n > 0 {
				o["first_id"], o["last_id"] = out.Entries[0].ID, out.Entries[n-1].ID
			}
			return inputs, o
		},
		Handle: func(ctx context.Context, in *ClaimEventsInput) (*ClaimEventsResult, error) {
			if in.BlockMS > maxBlock {
				return nil, fault.Invalidf("block_ms", "%d is above the most this server waits, %d (streams.max_block)", in.BlockMS, maxBlock)
			}
			c := groups.Claim{Stream: in.Stream, Group: string(in.Group), Consumer: string(in.Consumer), Count: in.Count,
				ReclaimIdle: time.Duration(in.ReclaimIdleMS) * time.Millisecond, From: in.From, Block: time.Duration(in.BlockMS) * time.Millisecond}
			if c.Count == 0 {
				c.Count = 10
			}
			if c.ReclaimIdle == 0 {
				c.ReclaimIdle = reclaim
			}
			if c.From == "" {
				c.From = "$"
			}
			got, err := d.Groups.Claim(ctx, c)
			if err != nil {
				return nil, err
			}
			out := &ClaimEventsResult{Stream: got.Key, Group: c.Group, Consumer: c.Consumer, Created: got.Created,
				Entries: make([]ClaimedEntry, len(got.Entries)), DeadLetterStream: got.DeadLetterKey, WaitedMS: got.Waited.Milliseconds()}
			for i, e := range got.Entries {
				out.Entries[i] = ClaimedEntry{ID: e.ID, Fields: stream.Decode(e.Values, records[in.Stream]), DeliveryCount: e.Deliveries, ReclaimedFrom: e.From}
			}
			for _, dl := range got.DeadLetters {
				out.DeadLettered = append(out.DeadLettered, DeadLettered{ID: dl.ID, DeadLetterID: dl.DeadLetterID, DeliveryCount: dl.Deliveries, Consumer: dl.Consumer})
			}
			return out, nil
		},
	})
}
