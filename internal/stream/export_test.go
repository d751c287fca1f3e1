package stream

import (
	"strings"
	"time"
)

// QuoteForTest is writeJSONString's output for s.
func QuoteForTest(s string) string {
	var b strings.Builder
	writeJSONString(&b, s)
	return b.String()
}

// The SHA1s of append.lua and append_batch.lua, as EVALSHA names them.
var (
	AppendSHA      = appendScript.Hash()
	AppendBatchSHA = appendBatchScript.Hash()
)

// HoldChainForTest makes stream's chain queue what is appended to it
// until release, which sends the queue (in turns of up to maxBatch
// entries); queued is how many entries wait.
func HoldChainForTest(s *Store, stream string) (queued func() int, release func()) {
	c := s.chains[stream]
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	queued = func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue)
	}
	return queued, func() { go c.run() }
}

// SetLingerForTest sets how long s's enqueued entries wait for others
// before they are sent.
func SetLingerForTest(s *Store, d time.Duration) { s.linger = d }

// MaxBatch is the most entries one turn of a chain sends.
const MaxBatch = maxBatch
