package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/transport"
)

// benchInit is the handshake each stdio benchmark opens with.
const benchInit = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}` + "\n" +
	`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"

// stdioRoundTrips sends b.N requests (line(i)) over serve's stdin, one at a
// time, each after the answer to the one before, and reports the process
// CPU per call besides the wall time.
func stdioRoundTrips(b *testing.B, serve func(ctx context.Context, in io.Reader, out io.Writer) error, line func(i int) string) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, inR, outW) }()
	answers := bufio.NewReaderSize(outR, 64<<10)
	if _, err := io.WriteString(inW, benchInit); err != nil {
		b.Fatal(err)
	}
	if _, err := answers.ReadSlice('\n'); err != nil {
		b.Fatal(err)
	}
	// Warm up: connections, scripts loaded.
	for i := range 50 {
		io.WriteString(inW, line(-1-i))
		answers.ReadSlice('\n')
	}
	lines := make([][]byte, b.N)
	for i := range lines {
		lines[i] = []byte(line(i))
	}
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	for i := range b.N {
		if _, err := inW.Write(lines[i]); err != nil {
			b.Fatal(err)
		}
		resp, err := answers.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 && b.N > 1 {
			if len(resp) < 20 || string(resp[:8]) != `{"jsonrp` {
				b.Fatalf("answer %q", resp)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	inW.Close()
	cancel()
	go io.Copy(io.Discard, outR)
	<-done
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type echoIn struct {
	Module    string         `json:"module" jsonschema:"minLength=1,maxLength=128"`
	Procedure string         `json:"procedure" jsonschema:"minLength=1,maxLength=128"`
	Status    string         `json:"status" jsonschema:"enum=ok,enum=error"`
	Inputs    map[string]any `json:"inputs,omitempty"`
	SessionID string         `json:"session_id,omitempty" jsonschema:"maxLength=128"`
	Workflow  string         `json:"workflow_id,omitempty" jsonschema:"maxLength=128"`
	LogID     string         `json:"log_id,omitempty" jsonschema:"maxLength=128"`
}

type echoOut struct {
	ID     string `json:"id"`
	Stream string `json:"stream"`
}

// BenchmarkStdioTrivialTool is the same round trip to an mcpkit tool that
// does no I/O: the transport, mcp-go and mcpkit overhead alone.
func BenchmarkStdioTrivialTool(b *testing.B) {
	s := server.NewMCPServer("bench", "1", server.WithToolCapabilities(false))
	t := mcpkit.New(mcpkit.Spec[echoIn, echoOut]{
		Name: "audit_log", Description: "echo", Hints: mcpkit.Hints{},
		Handle: func(ctx context.Context, in *echoIn) (*echoOut, error) {
			return &echoOut{ID: "1700000000000-0", Stream: "audit"}, nil
		},
	})
	s.AddTool(t.Def, t.Handler(nil, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil))))
	st := &transport.Stdio{Server: s, MaxMessageBytes: 1 << 20, MaxInFlight: 64, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	stdioRoundTrips(b, st.Serve, func(i int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10},"session_id":"s-1","workflow_id":"wf-1","log_id":"bench-%d"}}}`+"\n", i+1, i)
	})
}
