// Package clip shortens text for messages and records without cutting a
// UTF-8 sequence.
package clip

import "unicode/utf8"

// String returns s when it is at most n bytes, else its longest prefix of
// whole characters within n bytes followed by "…".
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
