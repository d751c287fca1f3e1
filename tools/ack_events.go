package tools

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// AckEventsInput settles entries a worker of a group was handed.
type AckEventsInput struct {
	Stream string           `json:"stream" jsonschema:"enum=audit_log_stream,enum=ccwj_update_stream,enum=user_feedback,enum=workflow_events" jsonschema_description:"Stream the entries are of, by its name without the key prefix."`
	Group  mcpkit.Name      `json:"group" jsonschema_description:"The consumer group that handed them out."`
	IDs    []mcpkit.EntryID `json:"ids" jsonschema:"minItems=1,maxItems=100" jsonschema_description:"Ids of the entries whose work is done, as claim_events returned them: 1 to 100."`
}

// Check tells an id whose parts do not fit 64 bits, as Redis would refuse
// it.
func (in *AckEventsInput) Check() error {
	for i, id := range in.IDs {
		ms, seq, _ := strings.Cut(string(id), "-")
		_, err1 := strconv.ParseUint(ms, 10, 64)
		_, err2 := strconv.ParseUint(seq, 10, 64)
		if err1 != nil || err2 != nil {
			return fault.Invalidf(fmt.Sprintf("ids[%d]", i), "%q is not a stream entry id: each part is at most 18446744073709551615", id)
		}
	}
	return nil
}

// AckEventsResult says which entries were settled.
type AckEventsResult struct {
	Stream     string   `json:"stream" jsonschema_description:"Redis key of the stream."`
	Group      string   `json:"group" jsonschema_description:"The group."`
	Acked      []string `json:"acked" jsonschema_description:"Ids that were pending in the group and are now acknowledged: never handed out again."`
	NotPending []string `json:"not_pending" jsonschema_description:"Ids that were not pending in the group: already acknowledged, moved to the dead letters, never handed out, or not ids of the stream. Nothing was done for them."`
}

func ackEvents(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[AckEventsInput, AckEventsResult]{
		Name:  "ack_events",
		Title: "Acknowledge claimed entries",
		Description: "Acknowledge entries claim_events handed to a worker of a consumer group (Redis XACK), once their work is done, so that they are never handed out again. " +
			"Says which ids were not pending: acknowledged before, moved to the dead letters, or never handed out by the group. " +
			"An entry that is not acknowledged goes to another worker once it has been pending longer than the claim's reclaim_idle_ms. Acknowledging again changes nothing.",
		Hints:       mcpkit.Hints{ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false},
		Unavailable: "Call ack_events again later with the same ids: acknowledging twice is harmless.",
		Record: func(in *AckEventsInput, out *AckEventsResult) (map[string]any, map[string]any) {
			inputs := fields("stream", in.Stream, "group", string(in.Group), "ids", len(in.IDs))
			if out == nil {
				return inputs, nil
			}
			return inputs, fields("acked", len(out.Acked), "not_pending", len(out.NotPending))
		},
		Handle: func(ctx context.Context, in *AckEventsInput) (*AckEventsResult, error) {
			ids := make([]string, len(in.IDs))
			for i, id := range in.IDs {
				ids[i] = string(id)
			}
			got, err := d.Groups.Ack(ctx, in.Stream, string(in.Group), ids)
			if err != nil {
				return nil, err
			}
			return &AckEventsResult{Stream: got.Key, Group: string(in.Group), Acked: got.Acked, NotPending: got.NotPending}, nil
		},
	})
}
