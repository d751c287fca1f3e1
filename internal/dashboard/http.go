package dashboard

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

//go:embed web
var web embed.FS

// Tools are the tools the page may call: the read-only ones it shows.
var Tools = []string{"show_dashboard", "read_stream", "get_context", "stream_info"}

// pageCSP is the policy of the page and its assets on the HTTP listener:
// nothing but the server itself, no inline script or style, never framed.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// writeWait bounds one write to a page's event stream: a page that takes
// no bytes for that long is dropped (once the kernel's buffers for it,
// a few MiB, are full).
const writeWait = 5 * time.Second

// pingEvery keeps an idle event stream open through proxies.
const pingEvery = 15 * time.Second

// Handler serves the page (Pages) and its data (API) on the HTTP
// listener.
type Handler struct {
	// Tools are the tools the page may call, by name (Tools).
	Tools   map[string]mcpkit.Tool
	Live    *Live
	Timeout time.Duration
	Version string
	Log     *slog.Logger
}

// Pages serves /ui (redirected to /ui/) and /ui/'s files: they hold no
// data, so they need no token; the data needs one (API). The files are
// gzipped once, for the clients that take it.
func (h *Handler) Pages() http.Handler {
	files, err := loadAssets()
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: the dashboard only reads", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/ui" {
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/ui/")
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		securePage(w)
		hd := w.Header()
		hd.Set("Cache-Control", "no-cache")
		hd.Set("Content-Type", f.kind)
		hd.Set("ETag", f.etag)
		hd.Set("Vary", "Accept-Encoding")
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := f.raw
		if acceptsGzip(r) {
			hd.Set("Content-Encoding", "gzip")
			body = f.gz
		}
		hd.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// asset is one file of the page, as served.
type asset struct {
	kind, etag string
	raw, gz    []byte
}

func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	for name, kind := range map[string]string{"index.html": "text/html; charset=utf-8",
		"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"} {
		raw, err := web.ReadFile("web/" + name)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		sum := sha256.Sum256(raw)
		out[name] = asset{kind: kind, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, raw: raw, gz: buf.Bytes()}
	}
	return out, nil
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func securePage(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// API serves /ui/api/call (a read-only tool's answer) and /ui/api/live
// (the event stream). Mount it behind the bearer check.
func (h *Handler) API() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/api/call", h.call)
	mux.HandleFunc("GET /ui/api/live", h.live)
	mux.HandleFunc("/ui/api/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "not_found", "no such dashboard endpoint: GET /ui/api/call or GET /ui/api/live")
	})
	return mux
}

// call answers GET /ui/api/call?name=<tool>&arguments=<JSON object> with
// {"result": …} or {"error": {code, message}}.
func (h *Handler) call(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "name" && k != "arguments" {
			apiError(w, http.StatusBadRequest, string(fault.Invalid), fmt.Sprintf("unknown parameter %q: the parameters are name and arguments", k))
			return
		}
	}
	name := q.Get("name")
	t, ok := h.Tools[name]
	if !ok {
		apiError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("the dashboard may call only %s, not %q", strings.Join(Tools, ", "), name))
		return
	}
	args := q.Get("arguments")
	if args == "" {
		args = "{}"
	}
	out, err := t.Call(r.Context(), []byte(args), h.Timeout)
	if err != nil {
		code := fault.CodeOf(err)
		apiError(w, statusOf(code), string(code), mcpkit.Message(err, name, h.Log))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": out})
}

func statusOf(c fault.Code) int {
	switch c {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// live serves one page's event stream (the contract is in README, "The
// dashboard").
func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	f, err := h.follow(r.Context(), r.URL.Query())
	if err != nil {
		code := fault.CodeOf(err)
		apiError(w, statusOf(code), string(code), mcpkit.Message(err, "read_stream", h.Log))
		return
	}
	t, err := h.Live.Open(f)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		apiError(w, http.StatusServiceUnavailable, string(fault.Unavailable), err.Error())
		return
	}
	defer h.Live.Leave(t)
	rc := http.NewResponseController(w)
	// A stream lives until the page goes: no read deadline.
	_ = rc.SetReadDeadline(time.Time{})
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	// The connection ends with the stream: a page dropped in the middle
	// of an event must see its stream end, not a connection kept for a
	// next request.
	hd.Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	write := func(fr Frame) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
		var err error
		if fr.Event == "" {
			_, err = w.Write(fr.Data)
		} else {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", fr.Event, fr.Data)
		}
		return err == nil && rc.Flush() == nil
	}
	ready, _ := json.Marshal(map[string]string{"version": h.Version})
	if !write(Frame{"ready", ready}) {
		return
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case fr := <-t.Frames:
			ok := write(fr)
			t.Sent(fr)
			if !ok {
				return
			}
		case <-ping.C:
			if !write(Frame{Data: []byte(": ping\n\n")}) {
				return
			}
		case <-t.Gone():
			// Dropped: what is queued is not sent (the page could not
			// take it); a last word (resync) is, if it goes at once.
			if fr := t.Final(); fr != nil {
				_ = rc.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", fr.Event, fr.Data)
				_ = rc.Flush()
			}
			return
		case <-r.Context().Done():
			return
		}
	}
}

// follow reads what a page asks to follow from its query, checked as
// read_stream and get_context check their arguments (it calls them).
func (h *Handler) follow(ctx context.Context, q url.Values) (Follow, error) {
	var f Follow
	filters := map[string]string{}
	for k, v := range q {
		if len(v) != 1 {
			return f, fault.Invalidf(k, "given %d times; give it once", len(v))
		}
		switch k {
		case "tail":
			f.Stream = v[0]
		case "after":
			f.After = v[0]
		case "workflow":
			f.Workflow = v[0]
		default:
			filters[k] = v[0]
		}
	}
	if f.Stream == "" && (len(filters) > 0 || f.After != "") {
		for k := range filters {
			return f, fault.Invalidf(k, "unknown parameter, or a filter without tail: the parameters are tail, after, workflow and read_stream's filters")
		}
		return f, fault.Invalidf("after", "needs tail, the stream it is an id of")
	}
	if f.Stream != "" {
		args := map[string]any{"stream": f.Stream, "count": 1, "reverse": true}
		for k, v := range filters {
			if k == "stream" || k == "start" || k == "end" || k == "count" || k == "reverse" || k == "block_ms" {
				return f, fault.Invalidf(k, "not a filter: the parameters are tail, after, workflow and read_stream's filters")
			}
			args[k] = v
		}
		if err := h.check(ctx, "read_stream", "stream", "tail", args); err != nil {
			return f, err
		}
		if f.After != "" {
			b, err := stream.Bound(f.After, false)
			if err != nil || strings.HasPrefix(b, "(") || !strings.Contains(b, "-") || b == "-" {
				return f, fault.Invalidf("after", "%q is not an entry id such as 1700000000000-0", f.After)
			}
			f.After = b
		}
		if len(filters) > 0 {
			f.Match = filters
		}
	}
	if f.Workflow != "" {
		if err := h.check(ctx, "get_context", "workflow_id", "workflow", map[string]any{"workflow_id": f.Workflow}); err != nil {
			return f, err
		}
	}
	return f, nil
}

// check runs tool on args, for its argument checks; an error of its
// argument arg names the page's parameter param instead.
func (h *Handler) check(ctx context.Context, tool, arg, param string, args map[string]any) error {
	t, ok := h.Tools[tool]
	if !ok {
		return fault.Invalidf("tail", "the dashboard cannot read streams here")
	}
	b, _ := json.Marshal(args)
	_, err := t.Call(ctx, b, h.Timeout)
	var fe *fault.Error
	if errors.As(err, &fe) && fe.Code == fault.Invalid {
		if fe.Field == arg {
			return &fault.Error{Code: fault.Invalid, Field: param, Message: fe.Message}
		}
	}
	return err
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// AppHTML is the page as one document, for the MCP App resource: its
// stylesheet and script inlined (an App has no server to fetch them
// from), marked data-mode="app" so it talks to the host's bridge.
func AppHTML() (string, error) {
	page, err := web.ReadFile("web/index.html")
	if err != nil {
		return "", err
	}
	css, err := web.ReadFile("web/app.css")
	if err != nil {
		return "", err
	}
	js, err := web.ReadFile("web/app.js")
	if err != nil {
		return "", err
	}
	// Inlined, a script or stylesheet holding its own end tag would end
	// early.
	if bytes.Contains(bytes.ToLower(js), []byte("</script")) || bytes.Contains(bytes.ToLower(css), []byte("</style")) {
		return "", errors.New("dashboard: app.js and app.css must not hold </script or </style")
	}
	for _, r := range []struct{ old, new string }{
		{`<link rel="stylesheet" href="app.css">`, "<style>\n" + string(css) + "\n</style>"},
		{`<script src="app.js" defer></script>`, "<script>\n" + string(js) + "\n</script>"},
		{`data-mode="http"`, `data-mode="app"`},
	} {
		if bytes.Count(page, []byte(r.old)) != 1 {
			return "", fmt.Errorf("dashboard: web/index.html must hold %s exactly once", r.old)
		}
		page = bytes.Replace(page, []byte(r.old), []byte(r.new), 1)
	}
	return string(page), nil
}
