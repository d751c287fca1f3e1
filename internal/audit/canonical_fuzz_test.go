package audit_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/audit"
)

// pairsOf splits s into fields at "\x00" (name, value, name, …), so the
// fuzzer builds entries of any shape from one string.
func pairsOf(s string) []audit.Pair {
	parts := strings.Split(s, "\x00")
	var out []audit.Pair
	for i := 0; i+1 < len(parts); i += 2 {
		if parts[i] == audit.HashField {
			continue // never covered; Canonical leaves it out
		}
		out = append(out, audit.Pair{Name: parts[i], Value: parts[i+1]})
	}
	return out
}

// The encoding decodes back to the key and fields it was made from, and
// two different entries never encode the same.
func FuzzCanonical(f *testing.F) {
	f.Add("mcp:audit_log_stream", "module\x00m\x00prev_hash\x00"+audit.Genesis, "mcp:audit_log_stream", "module\x00m\x00prev_hash\x00"+audit.Genesis+"\x00")
	f.Add("k", "ab\x00c", "k", "a\x00bc")
	f.Add("ka", "b\x00c", "k", "ab\x00c")
	f.Add("", "\x00", "", "")
	f.Add("k", "a\x00b\x00c\x00d", "k", "a\x00b")
	f.Fuzz(func(t *testing.T, k1, s1, k2, s2 string) {
		p1, p2 := pairsOf(s1), pairsOf(s2)
		e1, e2 := audit.Canonical(k1, p1), audit.Canonical(k2, p2)
		key, fields, err := audit.Decode(e1)
		if err != nil || key != k1 || !slices.Equal(fields, p1) {
			t.Fatalf("round trip of %q %q = %q %q %v", k1, p1, key, fields, err)
		}
		same := k1 == k2 && slices.Equal(p1, p2)
		if bytes.Equal(e1, e2) != same {
			t.Fatalf("%q %q and %q %q: encodings equal %v, entries equal %v", k1, p1, k2, p2, !same, same)
		}
		if same != (audit.Hash(k1, p1) == audit.Hash(k2, p2)) {
			t.Fatalf("hash equality differs from entry equality")
		}
	})
}
