package mcpkit

// The keywords Decode enforces, for the test of every served schema.
var (
	EnforcedAtRoot  = enforcedAtRoot
	EnforcedByType  = enforcedByType
	EnforcedFormats = enforcedFormats
	Annotations     = annotations
)

// DecodeBothForTest decodes args for t member by member, as every call is,
// and with json.Unmarshal of the whole object.
func DecodeBothForTest(t Tool, args []byte) (fields, whole any, errFields, errWhole error) {
	return t.decodeBoth(args)
}

// DecodesByFieldForTest reports whether t's arguments are decoded member
// by member (false: json.Unmarshal of the whole object).
func DecodesByFieldForTest(t Tool) bool { return t.byField }
