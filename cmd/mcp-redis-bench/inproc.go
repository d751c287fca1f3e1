package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
)

// benchPolicy is the rate policy series (g) applies. Its limit is the
// highest a configuration may set and its window the shortest, so every
// sequential call is allowed and the subject's sorted set stays small:
// the window only ever holds the members of the last 10 ms, about
// 10 ms × calls/s of them (a few hundred at most here, far below the
// limit), and the key expires 10 ms after the last call. A long window
// would fill the set up to the limit and then deny every call, which takes
// another path through the script; a limit below the calls of one window
// would do the same.
const benchPolicy = "bench"

var benchPolicyConfig = config.RatePolicy{Limit: config.MaxRateLimit, Window: 10 * time.Millisecond}

// inproc is an mcp-redis server built in this process by app.New and
// spoken to through MCPServer.HandleMessage: the whole MCP tool layer
// (JSON-RPC parse, argument decoding and validation, the handler, Redis,
// the result and its JSON-RPC encoding) without a transport.
type inproc struct {
	app *app.App
	id  atomic.Int64
}

// newInproc builds a server on the bench's Redis under prefix, with the
// per-call audit off and the bench's rate policy, and initializes it.
func newInproc(ctx context.Context, redisURL, prefix string) (*inproc, error) {
	cfg := config.Defaults()
	cfg.Redis.URL = redisURL
	cfg.Redis.Prefix = prefix
	cfg.Audit.ToolCalls = false
	cfg.Rate.Policies[benchPolicy] = benchPolicyConfig
	// Warnings and errors only: a failed call's detail is logged there.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("in-process server: %w", err)
	}
	s := &inproc{app: a}
	init := fmt.Sprintf(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":%q,`+
		`"capabilities":{},"clientInfo":{"name":"mcp-redis-bench","version":"1"}}}`, mcp.ProtocolVersion20251125)
	resp := a.MCP.HandleMessage(ctx, json.RawMessage(init))
	if e, ok := resp.(mcp.JSONRPCError); ok {
		s.close()
		return nil, fmt.Errorf("in-process server: initialize: %s", e.Error.Message)
	}
	a.MCP.HandleMessage(ctx, json.RawMessage(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	return s, nil
}

func (s *inproc) close() {
	if err := s.app.Close(); err != nil {
		logf("in-process server close: %v", err)
	}
}

// callTool makes one tools/call with args, a JSON object, and decodes the
// result's structured content into out. The response is encoded to JSON as
// a transport would before writing it; a JSON-RPC error or a result flagged
// isError is an error.
func (s *inproc) callTool(ctx context.Context, tool string, args []byte, out any) error {
	msg := make([]byte, 0, 128+len(args))
	msg = append(msg, `{"jsonrpc":"2.0","id":`...)
	msg = strconv.AppendInt(msg, s.id.Add(1), 10)
	msg = append(msg, `,"method":"tools/call","params":{"name":"`...)
	msg = append(msg, tool...)
	msg = append(msg, `","arguments":`...)
	msg = append(msg, args...)
	msg = append(msg, "}}"...)

	resp := s.app.MCP.HandleMessage(ctx, msg)
	if _, err := json.Marshal(resp); err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	var res *mcp.CallToolResult
	switch r := resp.(type) {
	case mcp.JSONRPCError:
		return fmt.Errorf("%s: JSON-RPC error %d: %s", tool, r.Error.Code, r.Error.Message)
	case mcp.JSONRPCResponse:
		switch v := r.Result.(type) {
		case *mcp.CallToolResult:
			res = v
		case mcp.CallToolResult:
			res = &v
		}
	}
	if res == nil {
		return fmt.Errorf("%s: unexpected response %T", tool, resp)
	}
	if res.IsError {
		return fmt.Errorf("%s: isError: %s", tool, resultText(res))
	}
	raw, ok := res.StructuredContent.(json.RawMessage)
	if !ok {
		return fmt.Errorf("%s: structured content is %T", tool, res.StructuredContent)
	}
	return json.Unmarshal(raw, out)
}

// grant is the part of acquire_lock's result the bench reads.
type grant struct {
	Acquired bool   `json:"acquired"`
	Token    string `json:"token"`
	Owner    string `json:"owner"`
}

// acquire calls acquire_lock; not getting the lock is not an error here.
func (s *inproc) acquire(ctx context.Context, resource string, ttlMS, waitMS int64, owner string) (grant, error) {
	args := make([]byte, 0, 128)
	args = append(args, `{"resource":`...)
	args = strconv.AppendQuote(args, resource)
	if ttlMS > 0 {
		args = append(args, `,"ttl_ms":`...)
		args = strconv.AppendInt(args, ttlMS, 10)
	}
	if waitMS > 0 {
		args = append(args, `,"wait_ms":`...)
		args = strconv.AppendInt(args, waitMS, 10)
	}
	args = append(args, `,"owner":`...)
	args = strconv.AppendQuote(args, owner)
	args = append(args, '}')
	var g grant
	err := s.callTool(ctx, "acquire_lock", args, &g)
	return g, err
}

// release calls release_lock; a lock the token does not hold is an error.
func (s *inproc) release(ctx context.Context, resource, token string) error {
	args := make([]byte, 0, 128)
	args = append(args, `{"resource":`...)
	args = strconv.AppendQuote(args, resource)
	args = append(args, `,"token":`...)
	args = strconv.AppendQuote(args, token)
	args = append(args, '}')
	var r struct {
		Released bool   `json:"released"`
		Reason   string `json:"reason"`
	}
	if err := s.callTool(ctx, "release_lock", args, &r); err != nil {
		return err
	}
	if !r.Released {
		return fmt.Errorf("release_lock: not released (%s)", r.Reason)
	}
	return nil
}

// checkRate calls check_rate under the bench policy; a denial is an
// error, since the policy is meant to allow every call.
func (s *inproc) checkRate(ctx context.Context, subject string) error {
	args := make([]byte, 0, 96)
	args = append(args, `{"subject":`...)
	args = strconv.AppendQuote(args, subject)
	args = append(args, `,"policy":"`+benchPolicy+`"}`...)
	var r struct {
		Allowed bool `json:"allowed"`
	}
	if err := s.callTool(ctx, "check_rate", args, &r); err != nil {
		return err
	}
	if !r.Allowed {
		return errDenied
	}
	return nil
}

var errDenied = errors.New("check_rate: not allowed (the bench policy should allow every call)")
