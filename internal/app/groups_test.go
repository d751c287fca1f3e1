package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
)

// The consumer-group tools run on the server's Redis with the limits of
// its configuration, on a real Redis and on the embedded one (the default
// backend): a poison entry reaches the dead letters after
// groups.max_deliveries, and the descriptions say so.
func TestTheConsumerGroupToolsRunWithTheConfiguredLimits(t *testing.T) {
	limits := func(c *config.Config) {
		c.Groups.MaxDeliveries, c.Groups.ReclaimIdle, c.Streams.MaxBlock = 2, 1500*time.Millisecond, 2*time.Second
	}
	for _, backend := range []string{"real redis", "embedded"} {
		t.Run(backend, func(t *testing.T) {
			var c *client.Client
			if backend == "embedded" {
				cfg := config.Defaults()
				limits(&cfg)
				a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = a.Close() })
				c = inProcess(t, a)
			} else {
				c = newHarness(t, limits).mcp
			}
			call := func(tool, args string) (map[string]any, string) {
				t.Helper()
				req := mcp.CallToolRequest{}
				req.Params.Name = tool
				req.Params.Arguments = json.RawMessage(args)
				res, err := c.CallTool(context.Background(), req)
				if err != nil {
					t.Fatalf("%s: %v", tool, err)
				}
				var out map[string]any
				raw, _ := json.Marshal(res.StructuredContent)
				_ = json.Unmarshal(raw, &out)
				if res.IsError {
					return nil, text(res)
				}
				return out, ""
			}
			ok := func(tool, args string) map[string]any {
				t.Helper()
				out, fail := call(tool, args)
				if fail != "" {
					t.Fatalf("%s(%s): %s", tool, args, fail)
				}
				return out
			}

			list, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, tool := range list.Tools {
				if tool.Name == "claim_events" {
					for _, want := range []string{"1500 ms unless given", "2 times (groups.max_deliveries)", "at most 2000 ms"} {
						if !strings.Contains(tool.Description, want) {
							t.Errorf("claim_events' description does not say %q: %s", want, tool.Description)
						}
					}
				}
			}

			ok("claim_events", `{"stream":"workflow_events","group":"g","consumer":"a"}`)
			ev := ok("emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"poison"}`)
			var counts []string
			var dead []any
			for i := range 6 {
				got := ok("claim_events", fmt.Sprintf(`{"stream":"workflow_events","group":"g","consumer":"w%d","reclaim_idle_ms":100,"block_ms":200}`, i))
				for _, e := range got["entries"].([]any) {
					counts = append(counts, fmt.Sprint(e.(map[string]any)["delivery_count"]))
				}
				if dead, _ = got["dead_lettered"].([]any); len(dead) > 0 {
					break
				}
				time.Sleep(150 * time.Millisecond)
			}
			if strings.Join(counts, ",") != "1,2" || len(dead) != 1 || dead[0].(map[string]any)["id"] != ev["entry_id"] {
				t.Errorf("delivery counts %v, then dead letters %v; want 1,2 then the entry %v", counts, dead, ev["entry_id"])
			}
			info := ok("stream_info", `{"stream":"workflow_events"}`)
			groups, _ := info["groups"].([]any)
			if fmt.Sprint(info["dead_letters"]) != "1" || len(groups) != 1 || fmt.Sprint(groups[0].(map[string]any)["pending"]) != "0" {
				t.Errorf("stream_info = %v", info)
			}
			if _, fail := call("ack_events", `{"stream":"workflow_events","group":"other","ids":["1-0"]}`); !strings.Contains(fail, "not found: group") {
				t.Errorf("ack in a group never made: %q", fail)
			}
			if _, fail := call("claim_events", `{"stream":"workflow_events","group":"g","consumer":"c","block_ms":2001}`); !strings.Contains(fail, "block_ms") {
				t.Errorf("block_ms over streams.max_block: %q", fail)
			}
		})
	}
}

// inProcess is an initialised in-process MCP client of a.
func inProcess(t *testing.T, a *app.App) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(a.MCP)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
