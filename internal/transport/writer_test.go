package transport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestWriterLeavesNothingUnflushed: answers written at once, some of
// which leave the flush to a later writer, are all out when the last
// write returns.
func TestWriterLeavesNothingUnflushed(t *testing.T) {
	for range 50 {
		var out bytes.Buffer
		w := &writer{w: bufio.NewWriterSize(&out, 64<<10)}
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				w.write(mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(i)), mcp.NewToolResultText("ok")))
			})
		}
		wg.Wait()
		if n := bytes.Count(out.Bytes(), []byte("\n")); n != 64 || w.w.Buffered() != 0 {
			t.Fatalf("%d lines out, %d bytes left in the buffer", n, w.w.Buffered())
		}
		for line := range bytes.Lines(out.Bytes()) {
			if !json.Valid(line) {
				t.Fatalf("line %q", line)
			}
		}
	}
}
