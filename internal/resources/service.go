package resources

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/notify"
)

// MIMEType is every resource's: JSON.
const MIMEType = "application/json"

// MaxSubscriptions bounds the resources one session (or one
// subscriptions/listen stream) may subscribe to.
const MaxSubscriptions = 100

// Listening is the server's Redis subscription to its notices, started
// with the first resource subscription.
type Listening interface {
	Start(ctx context.Context, wait time.Duration)
}

// Service serves the resources and their subscriptions on an MCPServer.
type Service struct {
	r      *Reader
	hub    *notify.Hub
	listen Listening
	log    *slog.Logger
	mcp    *server.MCPServer
	locks  *lockWatch
	// channels maps each notice channel to its stream; "" for the lock
	// channel.
	channels map[string]string
	lockChan string
	listens  atomic.Int64
}

// New returns the Service of r. Its notices come from a Listening that
// calls Notice and Resubscribed; SetListening gives it.
func New(r *Reader, log *slog.Logger) *Service {
	s := &Service{r: r, log: log, channels: map[string]string{}, lockChan: r.Keys.LockEvents()}
	for _, name := range keyspace.Streams {
		s.channels[r.Keys.Events(name)] = name
		s.channels[r.Keys.ShardedEvents(name)] = name
	}
	s.locks = &lockWatch{s: s, watched: map[string]*watched{}}
	s.hub = notify.NewHub(notify.Options{MaxTopics: MaxSubscriptions, Changed: s.locks.changed})
	return s
}

// Channels are the notice channels a Listening should subscribe to:
// each stream's and the locks'.
func Channels(keys keyspace.Keyspace, sharded bool) []string {
	var out []string
	for _, name := range keyspace.Streams {
		if sharded {
			out = append(out, keys.ShardedEvents(name))
		} else {
			out = append(out, keys.Events(name))
		}
	}
	return append(out, keys.LockEvents())
}

// SetListening gives the Redis subscription, started on the first
// resource subscription.
func (s *Service) SetListening(l Listening) { s.listen = l }

// ServerOptions are the MCPServer options the resources need: the
// resources capability with subscribe, and completions.
func (s *Service) ServerOptions() []server.ServerOption {
	return []server.ServerOption{
		server.WithResourceCapabilities(true, false),
		server.WithCompletions(),
		server.WithResourceCompletionProvider(completer{}),
	}
}

// Register adds the resources, their templates and the subscription hooks
// to m, before it serves.
func (s *Service) Register(m *server.MCPServer) {
	s.mcp = m
	for _, name := range keyspace.Streams {
		m.AddResource(mcp.NewResource(StreamURI(name), name,
			mcp.WithResourceTitle("Stream "+name),
			mcp.WithResourceDescription(fmt.Sprintf("The newest %d entries of %s, newest first, decoded as read_stream decodes them. "+
				"Subscribe to be told of every entry appended.", Newest, name)),
			mcp.WithMIMEType(MIMEType)), s.handler)
	}
	for _, t := range []struct{ uri, name, title, desc string }{
		{"mcp-redis://streams/{stream}", "stream", "A stream",
			fmt.Sprintf("The newest %d entries of a stream (audit_log_stream, ccwj_update_stream, user_feedback, workflow_events), newest first.", Newest)},
		{"mcp-redis://streams/{stream}/{entry_id}", "stream-entry", "A stream entry",
			"One entry of a stream by its id (ms-seq), decoded as read_stream decodes it. An entry never changes."},
		{"mcp-redis://workflows/{workflow_id}/context", "workflow-context", "A workflow's context",
			"The current context of a workflow, as get_context answers: phase → field → the latest value. Updated by every publish_ccwj_delta of the workflow. " +
				"Percent-encode the workflow id."},
		{"mcp-redis://workflows/{workflow_id}/events", "workflow-events", "A workflow's entries",
			fmt.Sprintf("The newest %d entries of every stream whose workflow_id is the workflow's, newest first, each with its stream "+
				"(examining at most %d entries per stream). Percent-encode the workflow id.", Newest, maxScan)},
		{"mcp-redis://locks/{+resource}", "lock", "A lock",
			"Whether a lock is held, by which owner label, its fencing token, remaining ttl_ms and expires_at; never its token. " +
				"Updated when the lock is acquired, released or expires."},
	} {
		m.AddResourceTemplate(mcp.NewResourceTemplate(t.uri, t.name, mcp.WithTemplateTitle(t.title),
			mcp.WithTemplateDescription(t.desc), mcp.WithTemplateMIMEType(MIMEType)), server.ResourceTemplateHandlerFunc(s.handler))
	}
	hooks := m.GetHooks()
	if hooks == nil {
		hooks = &server.Hooks{}
		server.WithHooks(hooks)(m)
	}
	hooks.AddOnRequestInitialization(s.vet)
	hooks.AddAfterSubscribe(s.subscribed)
	hooks.AddAfterUnsubscribe(s.unsubscribed)
	hooks.AddBeforeSubscriptionsListen(s.listening)
	hooks.AddOnUnregisterSession(func(_ context.Context, sess server.ClientSession) { s.hub.Forget(sessionKey(sess)) })
}

// Close ends the subscriptions and the lock watch.
func (s *Service) Close() {
	s.hub.Close()
	s.locks.close()
}

// handler serves resources/read for every URI of the server's.
func (s *Service) handler(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	ref, err := Parse(uri)
	if err != nil {
		return nil, errors.New(s.sentence(err))
	}
	v, err := s.r.Read(ctx, ref, uri)
	if err != nil {
		return nil, errors.New(s.sentence(err))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errors.New(s.sentence(fmt.Errorf("encode %s: %w", uri, err)))
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: MIMEType, Text: string(b)}}, nil
}

// sentence is what a caller is told of a failed read or subscription: the
// class and the server's own words, with a reference to the log line for a
// fault (the cause never reaches the caller).
func (s *Service) sentence(err error) string {
	e, ok := fault.As(err)
	if !ok {
		e = &fault.Error{Code: fault.Internal, Err: err}
	}
	switch e.Code {
	case fault.Invalid:
		return "invalid resource URI: " + e.Error()
	case fault.NotFound:
		return "not found: " + e.Error()
	}
	if e.Code == fault.Unavailable && ok {
		// The error is this read's own: its advice is about reading.
		e.Hint = "Nothing was read; read the resource again later."
	}
	// The rest is mcpkit's sentence (with its log reference), told of a
	// method instead of a tool.
	return mcpkit.Message(err, "resources/read", s.log)
}

// vet refuses, before mcp-go serves them, a resources/read or
// resources/subscribe of an mcp-redis:// URI that names nothing (the
// error names the part of the URI at fault), a subscription beyond the
// bound, and a subscriptions/listen that asks for either. mcp-go maps a
// resource handler's error to -32603 (internal error) whatever it is; this
// hook is the one place that can refuse a request before it is served,
// and mcp-go answers its refusal with -32600 (invalid request).
func (s *Service) vet(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || !bytes.Contains(raw, []byte(`"resources/`)) && !bytes.Contains(raw, []byte(`"subscriptions/listen"`)) {
		return nil
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			URI           string         `json:"uri"`
			Meta          map[string]any `json:"_meta"`
			Notifications struct {
				ResourceSubscriptions []string `json:"resourceSubscriptions"`
			} `json:"notifications"`
		} `json:"params"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return nil // mcp-go says what is wrong with it
	}
	switch m.Method {
	case string(mcp.MethodResourcesRead), string(mcp.MethodResourcesSubscribe):
		if _, err := Parse(m.Params.URI); err != nil && !errors.Is(err, ErrNotOurs) {
			return errors.New(s.sentence(err))
		}
		if m.Method != string(mcp.MethodResourcesSubscribe) || m.Params.Meta[mcp.MetaKeyProtocolVersion] != nil {
			// A 2026-07-28 request: mcp-go answers that the method is gone.
			break
		}
		sess := server.ClientSessionFromContext(ctx)
		switch {
		case sess == nil || sess.SessionID() == "":
			return errors.New("resources/subscribe needs a session to send the updates to, and this server is stateless (http.stateless): " +
				"open a subscriptions/listen stream (protocol 2026-07-28), or use a stateful server")
		case s.hub.Held(sessionKey(sess)) >= MaxSubscriptions:
			return fmt.Errorf("too many subscriptions: this session holds %d, the most one session may; unsubscribe from one first", MaxSubscriptions)
		}
	case string(mcp.MethodSubscriptionsListen):
		uris := m.Params.Notifications.ResourceSubscriptions
		if len(uris) > MaxSubscriptions {
			return fmt.Errorf("too many resourceSubscriptions: %d; one stream may hold at most %d", len(uris), MaxSubscriptions)
		}
		for _, u := range uris {
			if _, err := Parse(u); err != nil {
				if errors.Is(err, ErrNotOurs) {
					return fmt.Errorf("resourceSubscriptions: %q is not a resource of this server (they begin %s)", u, Scheme)
				}
				return errors.New(s.sentence(err))
			}
		}
	}
	return nil
}

// sessionKey is the hub's key of a legacy session.
func sessionKey(sess server.ClientSession) string { return "session/" + sess.SessionID() }

// subscribed records a resources/subscribe that mcp-go accepted.
func (s *Service) subscribed(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
	sess := server.ClientSessionFromContext(ctx)
	ref, err := Parse(req.Params.URI)
	if sess == nil || err != nil {
		return
	}
	s.start(ctx)
	id := sess.SessionID()
	send := func(label string) notify.Delivery {
		err := s.mcp.SendNotificationToSpecificClient(id, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": label})
		switch {
		case err == nil:
			return notify.Sent
		case errors.Is(err, server.ErrSessionNotFound):
			return notify.Gone
		}
		return notify.Full // blocked, or not initialised yet
	}
	if err := s.hub.Subscribe(sessionKey(sess), ref.URI(), req.Params.URI, send); err != nil {
		// Past vet's check only when subscriptions race at the bound.
		s.log.Warn("resources: a subscription over the bound was not kept", "session", id, "uri", req.Params.URI, "err", err)
	}
}

func (s *Service) unsubscribed(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
	if sess := server.ClientSessionFromContext(ctx); sess != nil {
		s.hub.Unsubscribe(sessionKey(sess), req.Params.URI)
	}
}

// listening serves the resource subscriptions of a subscriptions/listen
// stream (2026-07-28) for as long as its request runs: each change is a
// notifications/resources/updated tagged with the stream's subscription
// id (the listen request's id), on the session the request came over.
func (s *Service) listening(ctx context.Context, id any, req *mcp.SubscriptionsListenRequest) {
	sess := server.ClientSessionFromContext(ctx)
	uris := req.Params.Notifications.ResourceSubscriptions
	if sess == nil || id == nil || len(uris) == 0 {
		return
	}
	s.start(ctx)
	key := fmt.Sprintf("listen/%d", s.listens.Add(1))
	ch := sess.NotificationChannel()
	send := func(label string) notify.Delivery {
		n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{
			Method: mcp.MethodNotificationResourceUpdated,
			Params: mcp.NotificationParams{Meta: map[string]any{mcp.MetaKeySubscriptionID: id}, AdditionalFields: map[string]any{"uri": label}},
		}}
		select {
		case <-ctx.Done():
			return notify.Gone
		default:
		}
		select {
		case ch <- n:
			return notify.Sent
		default:
			return notify.Full
		}
	}
	for _, u := range uris {
		if ref, err := Parse(u); err == nil {
			_ = s.hub.Subscribe(key, ref.URI(), u, send)
		}
	}
	go func() {
		<-ctx.Done()
		s.hub.Forget(key)
	}()
}

// start starts the Redis subscription with the first resource
// subscription, waiting (a bounded time) until Redis confirms it, so a
// change right after the subscribe answer is heard.
func (s *Service) start(ctx context.Context) {
	if s.listen != nil {
		s.listen.Start(ctx, time.Second)
	}
}

// Notice is told of every notice on the channels (the Listening calls
// it); it marks the resources the notice changed.
func (s *Service) Notice(channel, payload string) { s.Heard(channel, notify.Decode(payload)) }

// Heard is Notice of a payload already decoded.
func (s *Service) Heard(channel string, n notify.Notice) {
	if channel == s.lockChan {
		if n.Resource != "" {
			s.hub.Publish(LockURI(n.Resource))
			s.locks.poke(n.Resource)
		}
		return
	}
	name, ok := s.channels[channel]
	if !ok {
		return
	}
	s.hub.Publish(StreamURI(name))
	// Every stream's notice carries its entry's workflow_id, when it has
	// one (feedback's is optional).
	if n.WorkflowID != "" {
		s.hub.Publish(EventsURI(n.WorkflowID))
		if name == keyspace.CCWJUpdate {
			s.hub.Publish(ContextURI(n.WorkflowID))
		}
	}
}

// Resubscribed is told when the Redis subscription was lost and made
// again: every subscriber re-reads, as notices were missed meanwhile.
func (s *Service) Resubscribed() {
	s.hub.PublishAll()
	s.locks.pokeAll()
}

// completer completes the stream variable of the templates.
type completer struct{}

func (completer) CompleteResourceArgument(_ context.Context, _ string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	values := []string{}
	if arg.Name == "stream" {
		for _, name := range keyspace.Streams {
			if strings.HasPrefix(name, arg.Value) {
				values = append(values, name)
			}
		}
	}
	return &mcp.Completion{Values: values, Total: len(values)}, nil
}

// lockWatch tells the subscribers of a lock when it expires: an expiry
// announces nothing, so each lock someone follows is read again when its
// holder's ttl runs out (and after every notice of it), and a change of
// holder or grant since the last read is a change. Keyspace notifications
// would need a server setting (notify-keyspace-events) the least-privilege
// user may not make, are lost as any pub/sub notice is, and come from each
// node of a Cluster; one read per grant's expiry costs less.
type lockWatch struct {
	s       *Service
	mu      sync.Mutex
	closed  bool
	watched map[string]*watched
}

type watched struct {
	known       bool // a read has succeeded
	held        bool
	fence       int64
	timer       *time.Timer
	running     bool // a read is under way
	again       bool // read once more when it ends
	againAnnoun bool
}

// changed hears a topic come alive or die (notify.Options.Changed).
func (w *lockWatch) changed(topic string) {
	res, ok := strings.CutPrefix(topic, LockPrefix)
	if !ok {
		return
	}
	live := w.s.hub.Live(topic)
	w.mu.Lock()
	st := w.watched[res]
	switch {
	case live && st == nil && !w.closed:
		w.watched[res] = &watched{}
		w.mu.Unlock()
		go w.check(res, false)
		return
	case !live && st != nil:
		if st.timer != nil {
			st.timer.Stop()
		}
		delete(w.watched, res)
	}
	w.mu.Unlock()
}

// poke reads a followed lock again (after a notice of it).
func (w *lockWatch) poke(res string) {
	w.mu.Lock()
	_, ok := w.watched[res]
	w.mu.Unlock()
	if ok {
		go w.check(res, false)
	}
}

func (w *lockWatch) pokeAll() {
	w.mu.Lock()
	var all []string
	for r := range w.watched {
		all = append(all, r)
	}
	w.mu.Unlock()
	for _, r := range all {
		go w.check(r, false)
	}
}

// check reads res and, when announce, marks it changed if its holder or
// grant differs from the last read; then it waits for the holder's expiry.
// Reads of one lock do not overlap: one asked for meanwhile runs after.
func (w *lockWatch) check(res string, announce bool) {
	w.mu.Lock()
	st := w.watched[res]
	if st == nil {
		w.mu.Unlock()
		return
	}
	if st.running {
		st.again = true
		st.againAnnoun = st.againAnnoun || announce
		w.mu.Unlock()
		return
	}
	st.running = true
	w.mu.Unlock()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), w.s.r.Timeout)
		ls, err := w.s.r.Locks.Peek(ctx, res)
		cancel()
		w.mu.Lock()
		if w.watched[res] != st {
			w.mu.Unlock()
			return
		}
		changed := false
		var wait time.Duration
		if err == nil {
			changed = announce && st.known && (ls.Held != st.held || ls.Fence != st.fence)
			st.known, st.held, st.fence = true, ls.Held, ls.Fence
			if ls.Held && ls.TTL > 0 {
				wait = ls.TTL + 10*time.Millisecond
			}
		} else {
			wait = time.Second // Redis did not answer: read again soon
		}
		if st.timer != nil {
			st.timer.Stop()
			st.timer = nil
		}
		if wait > 0 && !w.closed {
			st.timer = time.AfterFunc(wait, func() { w.check(res, true) })
		}
		again := st.again
		announce = st.againAnnoun
		st.again, st.againAnnoun = false, false
		if !again {
			st.running = false
		}
		w.mu.Unlock()
		if changed {
			w.s.hub.Publish(LockURI(res))
		}
		if !again {
			return
		}
	}
}

func (w *lockWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for r, st := range w.watched {
		if st.timer != nil {
			st.timer.Stop()
		}
		delete(w.watched, r)
	}
}

var _ Locks = (*lock.Locker)(nil)
