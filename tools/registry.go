package tools

import "github.com/mcp-redis/mcp-redis/internal/mcpkit"

// All returns every tool the server offers, in the order tools/list shows.
func All(d *Deps) []mcpkit.Tool {
	return []mcpkit.Tool{
		auditLog(d),
		publishCCWJDelta(d),
		submitFeedback(d),
		emitWorkflowEvent(d),
		appendBatch(d),
		readStream(d),
		getContext(d),
		verifyAudit(d),
		acquireLock(d),
		releaseLock(d),
		extendLock(d),
		checkRate(d),
		claimEvents(d),
		ackEvents(d),
		streamInfo(d),
		showDashboard(d),
	}
}
