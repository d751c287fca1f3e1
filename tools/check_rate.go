package tools

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// CheckRateInput asks whether a subject may go ahead.
type CheckRateInput struct {
	Subject mcpkit.Key `json:"subject" jsonschema_description:"Who or what is limited (a user, an API key, a tool): 1 to 200 bytes of letters, digits and . _ : / @ -."`
	Policy  string     `json:"policy,omitempty" jsonschema:"default=default" jsonschema_description:"Which configured policy to apply; default when absent. Policies are set in the server's configuration only."`
	Cost    int        `json:"cost,omitempty" jsonschema:"minimum=1,maximum=10000,default=1" jsonschema_description:"Units this request spends; 1 when absent."`
}

// CheckRateResult is a rate-limit decision.
type CheckRateResult struct {
	Allowed      bool   `json:"allowed" jsonschema_description:"True when the request may go ahead; it has been counted."`
	Subject      string `json:"subject" jsonschema_description:"The subject."`
	Policy       string `json:"policy" jsonschema_description:"The policy applied."`
	Limit        int    `json:"limit" jsonschema_description:"Units the policy allows in any window."`
	WindowMS     int64  `json:"window_ms" jsonschema_description:"The policy's window, in ms."`
	Remaining    int    `json:"remaining" jsonschema_description:"Units left in the current window after this request."`
	RetryAfterMS int64  `json:"retry_after_ms" jsonschema_description:"When not allowed: ms until the same request would be. 0 when allowed."`
	ResetAfterMS int64  `json:"reset_after_ms" jsonschema_description:"ms until the window holds nothing of this subject."`
}

func checkRate(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[CheckRateInput, CheckRateResult]{
		Name:  "check_rate",
		Title: "Check a rate limit",
		Description: "Decide atomically whether subject may spend cost under a configured policy (an exact sliding window: at most limit units in any window), " +
			"and count it when allowed. When not allowed, retry_after_ms says when to try again.",
		Hints:       mcpkit.Hints{ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
		Unavailable: "The request may have been counted against the subject's quota; call check_rate again later.",
		Schema: func(s *jsonschema.Schema) {
			if p, ok := s.Properties.Get("policy"); ok {
				for _, name := range policyNames(d) {
					p.Enum = append(p.Enum, name)
				}
			}
		},
		// The policy and cost as applied: a default is what was decided under.
		Record: func(in *CheckRateInput, out *CheckRateResult) (map[string]any, map[string]any) {
			policy := in.Policy
			if policy == "" {
				policy = "default"
			}
			inputs := fields("subject", string(in.Subject), "policy", policy, "cost", max(in.Cost, 1))
			if out == nil {
				return inputs, nil
			}
			return inputs, fields("allowed", out.Allowed, "remaining", out.Remaining, "limit", out.Limit, "window_ms", out.WindowMS,
				"retry_after_ms", out.RetryAfterMS)
		},
		Handle: func(ctx context.Context, in *CheckRateInput) (*CheckRateResult, error) {
			name := in.Policy
			if name == "" {
				name = "default"
			}
			p, ok := d.Policies[name]
			if !ok {
				return nil, fault.Invalidf("policy", "%q is not a configured policy; configured: %s", name, strings.Join(policyNames(d), ", "))
			}
			cost := max(in.Cost, 1)
			dec, err := d.Limiter.Allow(ctx, string(in.Subject), p, cost)
			if err != nil {
				return nil, err
			}
			return &CheckRateResult{
				Allowed: dec.Allowed, Subject: string(in.Subject), Policy: p.Name, Limit: dec.Limit,
				WindowMS: p.Window.Milliseconds(), Remaining: dec.Remaining,
				RetryAfterMS: ceilMS(dec.RetryAfter), ResetAfterMS: ceilMS(dec.ResetAfter),
			}, nil
		},
	})
}

func policyNames(d *Deps) []string {
	names := make([]string, 0, len(d.Policies))
	for n := range d.Policies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ceilMS rounds up, so waiting the answer's ms is always enough.
func ceilMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
