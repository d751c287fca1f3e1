package tools

import (
	"strconv"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// EventResult says where an event entry was written.
type EventResult struct {
	Stream    string `json:"stream" jsonschema_description:"Redis key of the stream written."`
	EntryID   string `json:"entry_id" jsonschema_description:"Stream entry id (the first entry's, for a duplicate)."`
	EventID   string `json:"event_id" jsonschema_description:"The entry's event_id, given or minted."`
	Timestamp string `json:"timestamp" jsonschema_description:"The entry's timestamp."`
	Duplicate bool   `json:"duplicate" jsonschema_description:"True when event_id was already written within the idempotency window: nothing new was written."`
}

func eventResult(w stream.Written) *EventResult {
	return &EventResult{Stream: w.Key, EntryID: w.EntryID, EventID: w.ID, Timestamp: w.Timestamp, Duplicate: w.Duplicate}
}

// idempotencyNote ends the description of every write tool of an
// event_id: the window in force (idempotency.ttl).
func idempotencyNote(d *Deps) string {
	return " Pass event_id to make a retry safe: the same event_id within the idempotency window (" + window(d) +
		" on this server, idempotency.ttl) returns the first entry with duplicate: true."
}

// window is idempotency.ttl as a short duration (24h, 90m, 30s).
func window(d *Deps) string {
	ttl := d.IdempotencyTTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	switch {
	case ttl%time.Hour == 0:
		return strconv.FormatInt(int64(ttl/time.Hour), 10) + "h"
	case ttl%time.Minute == 0:
		return strconv.FormatInt(int64(ttl/time.Minute), 10) + "m"
	}
	return ttl.String()
}
