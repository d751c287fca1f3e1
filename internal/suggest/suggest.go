// Package suggest finds, among known names, the one a mistyped name was
// probably meant to be: "did you mean …".
package suggest

import (
	"strings"

	"github.com/agnivade/levenshtein"
)

// Closest returns the name in known nearest to got, and whether it is
// near enough to suggest: at most a third of its length away in edits
// (at least 1, at most 3), or got with a prefix or suffix of it (phase for
// phase_id). Ties go to the earlier name.
func Closest(got string, known []string) (string, bool) {
	best, bestD := "", -1
	g := strings.ToLower(got)
	for _, k := range known {
		d := levenshtein.ComputeDistance(g, strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD < 0 {
		return "", false
	}
	limit := min(max(len(best)/3, 1), 3)
	if bestD <= limit {
		return best, true
	}
	for _, k := range known {
		lk := strings.ToLower(k)
		if len(g) >= 3 && (strings.HasPrefix(lk, g) || strings.HasSuffix(lk, g) || strings.HasPrefix(g, lk)) {
			return k, true
		}
	}
	return "", false
}
