package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// BenchmarkAuditLogChainOnOff prints audit_log calls/s through the MCP
// server in-process, 64 concurrent callers on the shared Redis, with the
// hash chain on and off, in interleaved rounds of 1s; the medians and
// their ratio. Run with -benchtime=1x:
//
//	go test -run XXX -bench AuditLogChainOnOff -benchtime=1x ./internal/app/
func BenchmarkAuditLogChainOnOff(b *testing.B) {
	const rounds, callers, round = 7, 64, time.Second
	build := func(chain bool) *app.App {
		_, prefix := testredis.Shared(b)
		cfg := config.Defaults()
		cfg.Redis.URL = testredis.URL()
		cfg.Redis.Prefix = prefix
		cfg.Audit.ToolCalls = false
		cfg.Audit.SigningKeyFile = filepath.Join(b.TempDir(), "audit-signing.key")
		if !chain {
			cfg.Audit.Chain = nil
		}
		a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = a.Close() })
		init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`
		a.MCP.HandleMessage(context.Background(), json.RawMessage(init))
		return a
	}
	apps := map[bool]*app.App{false: build(false), true: build(true)}
	var seq atomic.Int64
	run := func(a *app.App) float64 {
		var n atomic.Int64
		end := time.Now().Add(round)
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					i := seq.Add(1)
					msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10},"session_id":"s-1","workflow_id":"wf-1","log_id":"bench-%d"}}}`, i, i)
					if resp := a.MCP.HandleMessage(context.Background(), json.RawMessage(msg)); resp == nil {
						b.Error("no response")
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(n.Load()) / round.Seconds()
	}
	for range b.N {
		var on, off []float64
		for r := range rounds {
			first := r%2 == 0 // alternate which goes first
			for _, chain := range []bool{first, !first} {
				v := run(apps[chain])
				if chain {
					on = append(on, v)
				} else {
					off = append(off, v)
				}
			}
		}
		mOn, mOff := median(on), median(off)
		fmt.Printf("audit_log calls/s, %d callers, %d rounds of %v: chain off median %.0f %v; chain on median %.0f %v; ratio on/off %.2f\n",
			callers, rounds, round, mOff, rounded(off), mOn, rounded(on), mOn/mOff)
		b.ReportMetric(mOn, "on_calls/s")
		b.ReportMetric(mOff, "off_calls/s")
		b.ReportMetric(mOn/mOff, "ratio")
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
