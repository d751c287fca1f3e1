package transport_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// benchApp is the app serving transport against the shared Redis under a
// prefix of its own, per-call audit off; it closes when b ends.
func benchApp(b *testing.B, transport string) *app.App {
	b.Setenv("XDG_CONFIG_HOME", b.TempDir())
	_, prefix := testredis.Shared(b)
	cfg := config.Defaults()
	cfg.Redis.URL = testredis.URL()
	cfg.Redis.Prefix = prefix
	cfg.Audit.ToolCalls = false
	cfg.Transport = transport
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close() })
	return a
}

// BenchmarkStdioAuditLog is one tools/call audit_log round trip over
// Stdio, bytes in to bytes out, through the server the app builds (per-call
// audit off) against the shared Redis.
func BenchmarkStdioAuditLog(b *testing.B) {
	a := benchApp(b, "stdio")
	stdioRoundTrips(b, a.ServeStdio, func(i int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10},"session_id":"s-1","workflow_id":"wf-1","log_id":"bench-%d"}}}`+"\n", i+1, i)
	})
}

// BenchmarkStdioAppendBatch is one tools/call append_batch round trip of
// batchSize audit_log entries (each with a log_id of its own) over Stdio,
// as BenchmarkStdioAuditLog; ns/entry and cpu-µs/entry are per entry.
func BenchmarkStdioAppendBatch(b *testing.B) {
	const batchSize = 100
	a := benchApp(b, "stdio")
	stdioRoundTrips(b, a.ServeStdio, func(i int) string {
		var m strings.Builder
		fmt.Fprintf(&m, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"append_batch","arguments":{"stream":"audit_log_stream","entries":[`, i+1)
		for k := range batchSize {
			if k > 0 {
				m.WriteByte(',')
			}
			fmt.Fprintf(&m, `{"module":"planner-agent","procedure":"select_tool","status":"ok","inputs":{"query":"summarise the open incidents of service checkout","top_k":5,"filters":{"severity":["high","critical"],"since":"24h"},"include_resolved":false},"session_id":"sess-7f3a9c","workflow_id":"wf-checkout-incidents","log_id":"bench-%d-%d"}`, i, k)
		}
		m.WriteString("]}}}\n")
		return m.String()
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/entry")
}

// BenchmarkHTTPAuditLog is one tools/call audit_log POST over Streamable
// HTTP (a session open) to the server the app builds, per-call audit off,
// against the shared Redis. Its allocs/op count the client's too (the
// same process): read the server's alone with -memprofile, or in the
// end-to-end bench (go_memstats_mallocs_total).
func BenchmarkHTTPAuditLog(b *testing.B) {
	a := benchApp(b, "http")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.ServeHTTP(ctx, ln) }()
	defer func() { cancel(); <-served }()
	url := "http://" + ln.Addr().String() + "/mcp"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	session := ""
	post := func(body string) {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header["Content-Type"] = []string{"application/json"}
		req.Header["Accept"] = []string{"application/json, text/event-stream"}
		req.Header["Mcp-Protocol-Version"] = []string{"2025-11-25"}
		if session != "" {
			req.Header["Mcp-Session-Id"] = []string{session}
		}
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			b.Fatalf("%s: HTTP %d", body, res.StatusCode)
		}
		if session == "" {
			session = res.Header.Get("Mcp-Session-Id")
		}
	}
	post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`)
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	call := func(i int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10},"session_id":"s-1","workflow_id":"wf-1","log_id":"bench-%d"}}}`, i+1, i)
	}
	for i := range 50 {
		post(call(-1 - i))
	}
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	for i := range b.N {
		post(call(i))
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
}
