package tools

import (
	"sync"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// All returns every tool the server offers, in the order tools/list shows.
func All(d *Deps) []mcpkit.Tool {
	makers := []func(*Deps) mcpkit.Tool{
		auditLog,
		publishCCWJDelta,
		submitFeedback,
		emitWorkflowEvent,
		appendBatch,
		readStream,
		getContext,
		verifyAudit,
		acquireLock,
		releaseLock,
		extendLock,
		checkRate,
		claimEvents,
		ackEvents,
		streamInfo,
		showDashboard,
	}
	// Each tool reflects and encodes its schemas, most of a server's
	// start: they are built side by side, on every core there is.
	all := make([]mcpkit.Tool, len(makers))
	var wg sync.WaitGroup
	for i, mk := range makers {
		wg.Go(func() { all[i] = mk(d) })
	}
	wg.Wait()
	return all
}
