package config

import (
	"regexp"
	"strings"
	"testing"
)

// The bounded patterns accept exactly what ^[class]{1,max}$ accepts.
func TestBoundedPatternsMatchTheirRepetitionForms(t *testing.T) {
	for _, c := range []struct {
		name string
		b    bounded
		want *regexp.Regexp
	}{
		{"namespaceName", namespaceName, regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)},
		{"oauthScope", oauthScope, regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,256}$`)},
		{"policyName", policyName, regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)},
	} {
		var inputs []string
		for _, n := range []int{0, 1, 31, 32, 33, 63, 64, 65, 255, 256, 257} {
			for _, unit := range []string{"a", "Z", "-", "é", " ", "\"", "\\", "\n", "!"} {
				inputs = append(inputs, strings.Repeat(unit, n), "a"+strings.Repeat(unit, n), strings.Repeat(unit, n)+"a")
			}
		}
		for _, in := range inputs {
			if got, want := c.b.MatchString(in), c.want.MatchString(in); got != want {
				t.Errorf("%s.MatchString(%q) = %v, the repetition form says %v", c.name, in, got, want)
			}
		}
	}
}
