// Package metrics exposes the server's Prometheus metrics: tool calls by
// tool and outcome, their latency, calls in flight, Redis errors, and
// build info.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// Metrics is one server's registry.
type Metrics struct {
	running   atomic.Int64
	total     atomic.Uint64 // tool calls finished
	failed    atomic.Uint64 // of them, ended in an error
	reg       *prometheus.Registry
	calls     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	redisErrs *prometheus.CounterVec
	// lostRecords counts the call records Redis could not take.
	lostRecords prometheus.Counter
}

// New registers the metrics, with version as build info.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_redis_tool_calls_total",
			Help: "Tool calls by tool and outcome (ok, or the error class: invalid_argument, conflict, not_found, unavailable, internal).",
		}, []string{"tool", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcp_redis_tool_call_duration_seconds",
			Help:    "Tool call latency, from arguments received to result ready.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tool"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcp_redis_tool_calls_in_flight",
			Help: "Tool calls running now.",
		}),
		redisErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_redis_redis_errors_total",
			Help: "Redis commands that failed, by kind: unreachable (network, timeout) or reply (an error reply).",
		}, []string{"kind"}),
		lostRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcp_redis_call_records_failed_total",
			Help: "Tool-call records (audit.tool_calls) that could not be written to the audit stream; each is also logged.",
		}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mcp_redis_build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	m.reg.MustRegister(m.calls, m.duration, m.inFlight, m.redisErrs, m.lostRecords, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Observe counts one finished call; it is an mcpkit.Observer.
func (m *Metrics) Observe(_ context.Context, c mcpkit.Call) {
	outcome := "ok"
	m.total.Add(1)
	if c.Err != nil {
		outcome = string(fault.CodeOf(c.Err))
		m.failed.Add(1)
	}
	m.calls.WithLabelValues(c.Tool, outcome).Inc()
	m.duration.WithLabelValues(c.Tool).Observe(c.Duration.Seconds())
}

// Track counts h's calls in flight.
func (m *Metrics) Track(h server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		m.inFlight.Inc()
		m.running.Add(1)
		defer func() {
			m.running.Add(-1)
			m.inFlight.Dec()
		}()
		return h(ctx, req)
	}
}

// Totals are the tool calls finished since the start, and how many of
// them ended in an error.
func (m *Metrics) Totals() (calls, errors uint64) { return m.total.Load(), m.failed.Load() }

// RecordFailed counts one call record that could not be written.
func (m *Metrics) RecordFailed() { m.lostRecords.Inc() }

// Running is the number of tool calls running now.
func (m *Metrics) Running() int64 { return m.running.Load() }

// RedisHook counts failed Redis commands; add it with AddHook.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m} }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

type redisHook struct{ m *Metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.m.redisErrs.WithLabelValues("unreachable").Inc()
		}
		return c, err
	}
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		// The client's connect-time handshake (HELLO, CLIENT SETINFO) may
		// be refused by older servers, harmlessly.
		if n := cmd.Name(); n != "hello" && n != "client" {
			h.count(err)
		}
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.count(err)
		return err
	}
}

func (h redisHook) count(err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	var re redis.Error
	// NOSCRIPT is part of the normal EVALSHA-then-EVAL path.
	if errors.As(err, &re) {
		if len(re.Error()) >= 8 && re.Error()[:8] == "NOSCRIPT" {
			return
		}
		h.m.redisErrs.WithLabelValues("reply").Inc()
		return
	}
	h.m.redisErrs.WithLabelValues("unreachable").Inc()
}
