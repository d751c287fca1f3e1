package tools

import "reflect"

// RecordType is the record type the entries of stream decode into with
// stream.Decode, as read_stream decodes them; nil for a name that is not
// one of the server's streams.
func RecordType(stream string) reflect.Type { return records[stream] }
