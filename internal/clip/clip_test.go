package clip

import (
	"testing"
	"unicode/utf8"
)

func TestStringNeverCutsACharacter(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"},  // é is 2 bytes: not cut in half
		{"日本語", 4, "日…"}, // 3-byte characters
		{"日本語", 2, "…"},
	} {
		got := String(tc.s, tc.n)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("String(%q, %d) = %q; want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
