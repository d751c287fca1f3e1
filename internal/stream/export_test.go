package stream

import "strings"

// QuoteForTest is writeJSONString's output for s.
func QuoteForTest(s string) string {
	var b strings.Builder
	writeJSONString(&b, s)
	return b.String()
}
