package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/ratelimit"
)

// The arguments of series (g), the same on both sides.
const (
	lockResource = "bench-resource"
	lockOwner    = "bench-agent"
	lockTTLMS    = 30000 // acquire_lock's default ttl, stated on both sides
	rateSubject  = "bench-subject"
)

// lockRateResult holds series (g) and (h).
type lockRateResult struct {
	N int
	// LockTool and LockRaw time one acquire+release pair per call.
	LockTool, LockRaw *procSeries
	// RateTool and RateRaw time one check_rate decision per call.
	RateTool, RateRaw *procSeries
	// Wake is the waiter's wake-up latency over the runs that succeeded:
	// from release_lock returning to the waiter's acquire_lock returning.
	// WakeFromStart is the same, from release_lock's start.
	Wake, WakeFromStart spread
	WakeRuns            int
	WakeErrors          map[string]int
	// WakeWaitMS is the wait_ms the waiter asks for.
	WakeWaitMS int64
}

func (r *lockRateResult) wakeFailed() int {
	n := 0
	for _, c := range r.WakeErrors {
		n += c
	}
	return n
}

func (r *lockRateResult) failedCalls() int {
	return r.LockTool.Errors + r.LockRaw.Errors + r.RateTool.Errors + r.RateRaw.Errors + r.wakeFailed()
}

func (r *lockRateResult) lockRatio() float64 { return ratioOf(r.LockTool, r.LockRaw) }
func (r *lockRateResult) rateRatio() float64 { return ratioOf(r.RateTool, r.RateRaw) }

// procSeries is a series of (g) and this process's CPU time per call over
// its turns: the tool layer and its client, or go-redis, but not Redis.
// Like the servers' CPU of (b), it moves far less than calls/s when other
// processes compete for the CPUs.
type procSeries struct {
	*series
	CPUPerCall time.Duration
}

func procFigures(r *runner) *procSeries {
	s := r.rec.summary()
	p := &procSeries{series: s}
	if s.Calls > 0 {
		p.CPUPerCall = r.cpu / time.Duration(s.Calls)
	}
	return p
}

func ratioOf(tool, raw *procSeries) float64 {
	if raw.CallsPerSec == 0 {
		return 0
	}
	return tool.CallsPerSec / raw.CallsPerSec
}

// measureLockRate runs (g), then (h). Each has its own sub-prefix of the
// run's prefix, so the run's cleanup deletes their keys too.
func measureLockRate(ctx context.Context, o options, rdb redisClient, prefix string) (*lockRateResult, error) {
	res := &lockRateResult{N: o.lockN, WakeRuns: o.wakeRuns, WakeWaitMS: wakeWaitMS}
	if err := measureLockRateSeries(ctx, o, rdb, prefix+"lock:", res); err != nil {
		return nil, err
	}
	logf("(h) wake-up after release: %d runs", o.wakeRuns)
	if err := measureWake(ctx, o.redisURL, prefix+"wake:", o.wakeRuns, res); err != nil {
		return nil, fmt.Errorf("(h) wake-up: %w", err)
	}
	return res, nil
}

// measureLockRateSeries runs (g): acquire+release pairs and check_rate
// calls through the in-process tool layer, and the same scripts with the
// same keys and arguments through go-redis, taking turns (see interleave).
func measureLockRateSeries(ctx context.Context, o options, rdb redisClient, prefix string, res *lockRateResult) error {
	srv, err := newInproc(ctx, o.redisURL, prefix)
	if err != nil {
		return err
	}
	defer srv.close()
	keys := keyspace.Keyspace{Prefix: prefix}

	lockTool := newRunner("(g) lock pair, tool layer", o.lockN, func(ctx context.Context, _ int) error {
		g, err := srv.acquire(ctx, lockResource, lockTTLMS, 0, lockOwner)
		if err != nil {
			return err
		}
		if !g.Acquired {
			return fmt.Errorf("acquire_lock: not acquired (held by %q)", g.Owner)
		}
		return srv.release(ctx, lockResource, g.Token)
	})
	lockRaw := newRunner("(g) lock pair, raw", o.lockN, rawLockPair(rdb, keys))
	rateTool := newRunner("(g) check_rate, tool layer", o.lockN, func(ctx context.Context, _ int) error {
		return srv.checkRate(ctx, rateSubject)
	})
	rateRaw := newRunner("(g) check_rate, raw", o.lockN, rawCheckRate(rdb, keys))
	runners := []*runner{lockRaw, lockTool, rateRaw, rateTool}
	for _, r := range runners {
		r.trackCPU = true
	}

	for _, r := range runners {
		logf("%s: %d warm-up calls", r.name, o.warmup)
		if err := r.warmUp(ctx, o.warmup); err != nil {
			return err
		}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("--lock-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--lock-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	logf("(g): %d timed calls per series, in turns of %d", o.lockN, o.block)
	if err := interleave(ctx, runners, o.lockN, o.block); err != nil {
		return err
	}
	res.LockRaw, res.LockTool = procFigures(lockRaw), procFigures(lockTool)
	res.RateRaw, res.RateTool = procFigures(rateRaw), procFigures(rateTool)
	return nil
}

// rawLockPair returns the raw side of the lock pairs: acquire.lua and
// release.lua through go-redis with the keys and arguments lock.Locker
// passes, the token minted the same way. The release notice is the one the
// server sends, built once.
func rawLockPair(rdb redisClient, keys keyspace.Keyspace) func(ctx context.Context, i int) error {
	key := keys.Lock(lockResource)
	acquireKeys := []string{key, keys.LockFence(lockResource), keys.LockOwner(lockResource)}
	releaseKeys := []string{key, keys.LockOwner(lockResource), keys.LockFence(lockResource)}
	channel := keys.LockEvents()
	note, _ := json.Marshal(map[string]string{"event": "released", "resource": lockResource, "key": key})
	return func(ctx context.Context, _ int) error {
		token := lock.NewToken()
		actx, cancel := context.WithTimeout(ctx, callTimeout)
		res, err := lock.AcquireScript.Run(actx, rdb, acquireKeys, token, lockTTLMS, lockOwner).Slice()
		cancel()
		if err != nil {
			return fmt.Errorf("acquire: %w", err)
		}
		if len(res) < 3 || res[0] != int64(1) {
			return fmt.Errorf("acquire: not acquired: %v", res)
		}
		rctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		res, err = lock.ReleaseScript.Run(rctx, rdb, releaseKeys, token, channel, string(note)).Slice()
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		if len(res) == 0 || res[0] != int64(1) {
			return errors.New("release: not released")
		}
		return nil
	}
}

// rawCheckRate returns the raw side of the check_rate calls: window.lua
// through go-redis with the key and arguments ratelimit.Limiter passes.
func rawCheckRate(rdb redisClient, keys keyspace.Keyspace) func(ctx context.Context, i int) error {
	key := []string{keys.Rate(benchPolicy, rateSubject)}
	limit, window := benchPolicyConfig.Limit, benchPolicyConfig.Window.Microseconds()
	return func(ctx context.Context, _ int) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		res, err := ratelimit.WindowScript.Run(ctx, rdb, key, limit, window, 1, nonce()).Int64Slice()
		if err != nil {
			return err
		}
		if len(res) != 4 || res[0] != 1 {
			return fmt.Errorf("not allowed: %v", res)
		}
		return nil
	}
}

// nonce is minted as the limiter mints its own: 64 random bits in hex.
func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// wakeWaitMS is the waiter's wait_ms in (h): far longer than a wake-up
// should take, far shorter than the run.
const wakeWaitMS = 5000

// wakeResource is the resource series (h) contends for.
const wakeResource = "bench-wake"

// measureWake runs (h): the wake-up latency of a waiter when the holder
// releases. Holder and waiter are two in-process servers on one keyspace,
// as two agents with a server each would be: the release reaches the
// waiter's server only through Redis (its PUBLISH, the waiter server's
// subscription). Each run: the holder takes the lock; the waiter calls
// acquire_lock with wait_ms in a goroutine; once the waiter's first try
// has come back refused, the holder calls release_lock; the latency is from
// that call returning to the waiter's acquire_lock returning acquired.
//
// "The waiter is waiting" is observed with a go-redis hook on the waiter
// server's client: Locker.Acquire registers its wake-up listener before
// each try, so once the reply to its first acquire.lua is in, a release
// cannot go unnoticed. No sleep is needed.
func measureWake(ctx context.Context, redisURL, prefix string, runs int, res *lockRateResult) error {
	holder, err := newInproc(ctx, redisURL, prefix)
	if err != nil {
		return err
	}
	defer holder.close()
	waiter, err := newInproc(ctx, redisURL, prefix)
	if err != nil {
		return err
	}
	defer waiter.close()
	lockKey := keyspace.Keyspace{Prefix: prefix}.Lock(wakeResource)
	tried := make(chan struct{}, 1)
	waiter.app.Conn.Client.AddHook(tryHook{lockKey: lockKey, tried: tried})

	// Two untimed runs first: the waiter server subscribes on its first
	// wait, and the scripts and connections warm up.
	const warmup = 2
	var samples, fromStart []time.Duration
	res.WakeErrors = map[string]int{}
	for i := -warmup; i < runs; i++ {
		d, ds, err := wakeOnce(ctx, holder, waiter, tried)
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case err != nil && i < 0:
			return fmt.Errorf("warm-up run: %w", err)
		case err != nil:
			res.WakeErrors[err.Error()]++
		case i >= 0:
			samples = append(samples, d)
			fromStart = append(fromStart, ds)
		}
	}
	if len(samples) > 0 {
		res.Wake, res.WakeFromStart = spreadOf(samples), spreadOf(fromStart)
	}
	return nil
}

// wakeOnce is one run of (h); it leaves the lock free. It returns the
// waiter's wake-up latency from release_lock returning, and from its start.
// The first may come out slightly negative: Redis writes the release notice out
// before the release's reply, so the waiter can be done before the
// releasing call has returned to its caller.
func wakeOnce(ctx context.Context, holder, waiter *inproc, tried chan struct{}) (time.Duration, time.Duration, error) {
	select { // a stale signal from the previous run's release
	case <-tried:
	default:
	}
	h, err := holder.acquire(ctx, wakeResource, 10000, 0, "bench-holder")
	if err != nil {
		return 0, 0, fmt.Errorf("holder acquire: %w", err)
	}
	if !h.Acquired {
		return 0, 0, fmt.Errorf("holder acquire: held by %q", h.Owner)
	}
	type outcome struct {
		g    grant
		err  error
		done time.Time
	}
	got := make(chan outcome, 1)
	go func() {
		g, err := waiter.acquire(ctx, wakeResource, 10000, wakeWaitMS, "bench-waiter")
		got <- outcome{g: g, err: err, done: time.Now()}
	}()

	wait := time.NewTimer(2 * time.Second)
	defer wait.Stop()
	select {
	case <-tried:
	case w := <-got: // the waiter answered before the holder released
		_ = holder.release(ctx, wakeResource, h.Token)
		if w.err == nil && w.g.Acquired {
			_ = waiter.release(ctx, wakeResource, w.g.Token)
		}
		return 0, 0, fmt.Errorf("waiter returned while the lock was held (acquired %v, err %v)", w.g.Acquired, w.err)
	case <-wait.C:
		_ = holder.release(ctx, wakeResource, h.Token)
		return 0, 0, errors.New("waiter's first try did not come back within 2s")
	}

	releaseStart := time.Now()
	if err := holder.release(ctx, wakeResource, h.Token); err != nil {
		w := <-got
		if w.err == nil && w.g.Acquired {
			_ = waiter.release(ctx, wakeResource, w.g.Token)
		}
		return 0, 0, fmt.Errorf("holder release: %w", err)
	}
	released := time.Now()
	w := <-got
	if w.err != nil {
		return 0, 0, fmt.Errorf("waiter acquire: %w", w.err)
	}
	if !w.g.Acquired {
		return 0, 0, fmt.Errorf("waiter not acquired within wait_ms %d", wakeWaitMS)
	}
	if err := waiter.release(ctx, wakeResource, w.g.Token); err != nil {
		return 0, 0, fmt.Errorf("waiter release: %w", err)
	}
	return w.done.Sub(released), w.done.Sub(releaseStart), nil
}

// tryHook signals tried each time a reply to acquire.lua on lockKey
// comes back: acquire.lua is the only script with three keys, the first
// being the lock.
type tryHook struct {
	lockKey string
	tried   chan struct{}
}

func (tryHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (tryHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h tryHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if a := cmd.Args(); len(a) > 3 && (cmd.Name() == "evalsha" || cmd.Name() == "eval") &&
			fmt.Sprint(a[2]) == "3" && a[3] == h.lockKey {
			select {
			case h.tried <- struct{}{}:
			default:
			}
		}
		return err
	}
}
