package tools

// fields builds a call record's inputs or outputs from name, value pairs,
// leaving out empty strings and nil values (arguments not given).
func fields(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case nil:
			continue
		case string:
			if v == "" {
				continue
			}
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// eventOutputs is what a record keeps of a write's result: where it went,
// under which id, and whether it was a repeat.
func eventOutputs(out *EventResult) map[string]any {
	if out == nil {
		return nil
	}
	return fields("stream", out.Stream, "entry_id", out.EntryID, "event_id", out.EventID, "duplicate", out.Duplicate)
}
