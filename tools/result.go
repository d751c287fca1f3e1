package tools

import "github.com/mcp-redis/mcp-redis/internal/stream"

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

// idempotencyNote ends the description of every write tool.
const idempotencyNote = " Pass event_id to make a retry safe: the same event_id within the idempotency window (24h by default) returns the first entry with duplicate: true."
