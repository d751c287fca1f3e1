package mcpkit

import "context"

type callerKey struct{}

// WithCaller records who is calling (a bearer token's name, never the
// token) for the tools' audit.
func WithCaller(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, callerKey{}, name)
}

// CallerFrom returns the caller recorded by WithCaller, or "".
func CallerFrom(ctx context.Context) string {
	s, _ := ctx.Value(callerKey{}).(string)
	return s
}
