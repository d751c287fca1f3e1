package mcpkit

// The keywords Decode enforces, for the test of every served schema.
var (
	EnforcedAtRoot  = enforcedAtRoot
	EnforcedByType  = enforcedByType
	EnforcedFormats = enforcedFormats
	Annotations     = annotations
)
