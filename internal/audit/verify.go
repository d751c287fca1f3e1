package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

// Kinds of Problem.
const (
	Modified     = "modified"      // the entry's hash does not match its content
	Deleted      = "deleted"       // an entry before this one is gone
	Inserted     = "inserted"      // the entry was not appended through the chain
	Reordered    = "reordered"     // the entry links to an entry that is not its predecessor
	Rewritten    = "rewritten"     // a signed checkpoint no longer matches the entry at its id
	BadSignature = "bad_signature" // a checkpoint that claims the trusted key fails its signature
)

// Problem is the first break found in a chain.
type Problem struct {
	EntryID string `json:"entry_id"`
	Kind    string `json:"kind"`
	Reason  string `json:"reason"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("entry %s: %s: %s", p.EntryID, p.Kind, p.Reason)
}

// Request is one verification.
type Request struct {
	Stream string // keyspace.AuditLog, …
	// From is the first entry to check ("-" or "" for the oldest kept);
	// its prev_hash is taken as it is, unless PrevHash is set.
	From string
	// After, with PrevHash, resumes after entry After (a cursor): the
	// next entry must link to PrevHash.
	After, PrevHash string
	// Limit bounds the entries checked; 0 means no bound.
	Limit int
}

// Report is the outcome of a verification.
type Report struct {
	Key         string   `json:"stream"`
	Checked     int      `json:"checked"`
	Unchained   int      `json:"unchained,omitempty"` // entries before the chain began (no hash fields)
	First       string   `json:"first_id,omitempty"`
	Last        string   `json:"last_id,omitempty"`
	LastHash    string   `json:"last_hash,omitempty"`
	FromGenesis bool     `json:"from_genesis"` // the first entry checked is the chain's first
	Problem     *Problem `json:"problem,omitempty"`
	// Checkpoint is the newest checkpoint signed by the trusted key whose
	// entry was checked and matched.
	Checkpoint  *Checkpoint `json:"-"`
	Checkpoints int         `json:"checkpoints_checked"`
	// OtherKeys counts checkpoints signed by another key: not checked.
	OtherKeys int `json:"checkpoints_other_keys,omitempty"`
	// Next, when the limit ended the walk, resumes it: pass it back as
	// After/PrevHash (see Cursor).
	Next string `json:"next,omitempty"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return r.Problem == nil }

// Cursor joins an entry id and its hash into a resumable cursor.
func Cursor(id, hash string) string { return id + ":" + hash }

// ParseCursor splits a cursor.
func ParseCursor(s string) (id, hash string, ok bool) {
	id, hash, ok = strings.Cut(s, ":")
	if !ok || !IsHash(hash) {
		return "", "", false
	}
	if _, _, err := parseID(id); err != nil {
		return "", "", false
	}
	return id, hash, true
}

// Verifier walks chains and their checkpoints.
type Verifier struct {
	c    Client
	keys keyspace.Keyspace
	// pub is the trusted checkpoint key; nil checks no checkpoint.
	pub   ed25519.PublicKey
	keyID string
	// page is how many entries one XRANGE reads.
	page int
}

// NewVerifier returns a Verifier; pub may be nil.
func NewVerifier(c Client, keys keyspace.Keyspace, pub ed25519.PublicKey) *Verifier {
	v := &Verifier{c: c, keys: keys, pub: pub, page: 1000}
	if pub != nil {
		v.keyID = KeyID(pub)
	}
	return v
}

// Trusted reports whether the verifier checks checkpoints.
func (v *Verifier) Trusted() bool { return v.pub != nil }

type idNum struct{ ms, seq uint64 }

func parseID(s string) (idNum, bool, error) {
	ms, seq, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return idNum{}, false, fmt.Errorf("%q is not a stream id", s)
	}
	return idNum{a, b}, true, nil
}

func (a idNum) less(b idNum) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

func mustID(s string) idNum { n, _, _ := parseID(s); return n }

// walk is the state of one verification.
type walk struct {
	v      *Verifier
	r      *Report
	prevID string
	prev   string // the previous entry's hash; "" before the first
	// recent maps the hashes of the last entries to their ids, to tell a
	// deletion from an insertion.
	recent     map[string]string
	recentList []string
	cps        []Checkpoint // trusted, sorted by entry id
	cpNext     int
}

const recentWindow = 1024

// Verify walks the chain of req.Stream from req.From (or after the
// cursor) and the checkpoints, and stops at the first problem. An error
// is Redis failing, never a broken chain: that is Report.Problem.
func (v *Verifier) Verify(ctx context.Context, req Request) (*Report, error) {
	key := v.keys.Stream(req.Stream)
	r := &Report{Key: key}
	w := &walk{v: v, r: r, recent: map[string]string{}}
	if err := w.loadCheckpoints(ctx, req.Stream); err != nil {
		return nil, err
	}
	start := "-"
	switch {
	case req.After != "":
		start = "(" + req.After
		w.prevID, w.prev = req.After, req.PrevHash
	case req.From != "" && req.From != "-":
		start = req.From
	}
	if r.Problem != nil {
		return r, nil
	}
	for {
		n := v.page
		if req.Limit > 0 {
			n = min(n, req.Limit-r.Checked-r.Unchained)
		}
		if n <= 0 {
			r.Next = Cursor(w.prevID, w.prev)
			return r, nil
		}
		entries, err := v.xrange(ctx, key, start, n)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if w.entry(e); r.Problem != nil {
				return r, nil
			}
		}
		if len(entries) == n {
			start = "(" + entries[len(entries)-1].id
			continue
		}
		// The end of the stream: the head must name the last entry, or the
		// walk goes on to entries appended meanwhile.
		more, err := w.atEnd(ctx, req.Stream)
		if err != nil || r.Problem != nil || !more {
			return r, err
		}
		if w.prevID != "" {
			start = "(" + w.prevID
		}
	}
}

type rawEntry struct {
	id     string
	fields []Pair
}

func (v *Verifier) xrange(ctx context.Context, key, start string, n int) ([]rawEntry, error) {
	res, err := v.c.Do(ctx, "XRANGE", key, start, "+", "COUNT", n).Slice()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	out := make([]rawEntry, 0, len(res))
	for _, x := range res {
		m, _ := x.([]any)
		if len(m) != 2 {
			return nil, fmt.Errorf("read %s: unexpected reply", key)
		}
		id, _ := m[0].(string)
		kv, _ := m[1].([]any)
		e := rawEntry{id: id, fields: make([]Pair, 0, len(kv)/2)}
		for i := 0; i+1 < len(kv); i += 2 {
			name, _ := kv[i].(string)
			val, _ := kv[i+1].(string)
			e.fields = append(e.fields, Pair{name, val})
		}
		out = append(out, e)
	}
	return out, nil
}

func (w *walk) fail(id, kind, format string, a ...any) {
	w.r.Problem = &Problem{EntryID: id, Kind: kind, Reason: fmt.Sprintf(format, a...)}
}

func (w *walk) entry(e rawEntry) {
	r := w.r
	var prev, hash string
	nPrev, nHash := 0, 0
	for _, f := range e.fields {
		switch f.Name {
		case PrevHashField:
			prev = f.Value
			nPrev++
		case HashField:
			hash = f.Value
			nHash++
		}
	}
	// A checkpointed entry that the walk passed over was deleted.
	id := mustID(e.id)
	for w.cpNext < len(w.cps) && mustID(w.cps[w.cpNext].EntryID).less(id) {
		cp := w.cps[w.cpNext]
		w.cpNext++
		// Before the walk began (trimmed, or before From) it proves nothing.
		if w.prevID != "" && mustID(w.prevID).less(mustID(cp.EntryID)) {
			w.fail(cp.EntryID, Deleted, "a signed checkpoint (%s) names entry %s, which is no longer in the stream (the entry after it is %s)", cp.ID, cp.EntryID, e.id)
			return
		}
	}
	if nPrev == 0 && nHash == 0 {
		if w.prev == "" {
			r.Unchained++ // written before the chain was turned on
			return
		}
		w.fail(e.id, Inserted, "the entry has no prev_hash and hash: it was not appended through the chain (it follows %s)", w.prevID)
		return
	}
	if nPrev != 1 || nHash != 1 || !IsHash(prev) || !IsHash(hash) {
		w.fail(e.id, Modified, "the entry does not have exactly one prev_hash and one hash of 64 hex digits")
		return
	}
	if got := Hash(r.Key, e.fields); got != hash {
		w.fail(e.id, Modified, "its hash %s does not match its content, which hashes to %s", hash, got)
		return
	}
	switch {
	case w.prev == "":
		r.First = e.id
		r.FromGenesis = prev == Genesis
	case prev != w.prev:
		if at, ok := w.recent[prev]; ok {
			w.fail(e.id, Reordered, "prev_hash %s is the hash of %s, not of the previous entry %s: the entries after %s up to %s were inserted, or the entries reordered", prev, at, w.prevID, at, w.prevID)
		} else if prev == Genesis {
			w.fail(e.id, Inserted, "prev_hash is the genesis hash, but the entry follows %s: a new chain was started in the stream", w.prevID)
		} else {
			w.fail(e.id, Deleted, "prev_hash %s does not match the hash of the previous entry %s (%s): the entry or entries between them were deleted", prev, w.prevID, w.prev)
		}
		return
	}
	if r.First == "" {
		r.First = e.id
	}
	// Signed checkpoints at this entry must still match it.
	for w.cpNext < len(w.cps) && w.cps[w.cpNext].EntryID == e.id {
		cp := w.cps[w.cpNext]
		w.cpNext++
		if cp.Hash != hash {
			since := "the start of the walk"
			if r.Checkpoint != nil {
				since = "the checkpoint at " + r.Checkpoint.EntryID + ", which still matches"
			}
			w.fail(e.id, Rewritten, "the checkpoint %s signed hash %s for this entry, but it now has %s: the chain was rewritten at or before this entry, after %s", cp.ID, cp.Hash, hash, since)
			return
		}
		r.Checkpoints++
		c := cp
		r.Checkpoint = &c
	}
	r.Checked++
	r.Last, r.LastHash = e.id, hash
	w.prevID, w.prev = e.id, hash
	w.recent[hash] = e.id
	w.recentList = append(w.recentList, hash)
	if len(w.recentList) > 2*recentWindow {
		for _, h := range w.recentList[:recentWindow] {
			delete(w.recent, h)
		}
		w.recentList = append(w.recentList[:0], w.recentList[recentWindow:]...)
	}
}

// atEnd compares the chain head with the last entry checked. more means
// the head moved on (entries were appended meanwhile): walk on.
func (w *walk) atEnd(ctx context.Context, stream string) (more bool, err error) {
	if w.prev == "" {
		return false, nil
	}
	key := w.v.keys.ChainHead(stream)
	h, err := w.v.c.Get(ctx, key).Result()
	if err == redis.Nil {
		w.fail(w.prevID, Deleted, "the chain head %s is missing", key)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	id, hash, _, ok := ParseHead(h)
	if !ok {
		w.fail(w.prevID, Modified, "the chain head %s is malformed", key)
		return false, nil
	}
	last := mustID(w.prevID)
	hid, _, err := parseID(id)
	switch {
	case err != nil:
		w.fail(w.prevID, Modified, "the chain head %s names %q, not an entry id", key, id)
	case id == w.prevID && hash != w.prev:
		w.fail(id, Modified, "the chain head says its hash is %s, the entry has %s", hash, w.prev)
	case id == w.prevID:
		// Consistent; a checkpoint beyond the last entry names an entry
		// deleted together with a rewound head.
		for ; w.cpNext < len(w.cps); w.cpNext++ {
			if cp := w.cps[w.cpNext]; last.less(mustID(cp.EntryID)) {
				w.fail(cp.EntryID, Deleted, "a signed checkpoint (%s) names entry %s, after the last entry %s: the newest entries were deleted", cp.ID, cp.EntryID, w.prevID)
				return false, nil
			}
		}
	case last.less(hid):
		// Appended since, or the newest entries were deleted.
		entries, err := w.v.xrange(ctx, w.r.Key, "("+w.prevID, 1)
		if err != nil {
			return false, err
		}
		if len(entries) > 0 {
			return true, nil
		}
		w.fail(id, Deleted, "the chain head names entry %s (hash %s), but the stream ends at %s: the newest entries were deleted", id, hash, w.prevID)
	default:
		// Entries after the head were not written by the append script.
		entries, err := w.v.xrange(ctx, w.r.Key, "("+id, 1)
		if err != nil {
			return false, err
		}
		at := w.prevID
		if len(entries) > 0 {
			at = entries[0].id
		}
		w.fail(at, Inserted, "the entry follows the chain head %s: it was not appended by the server", id)
	}
	return false, nil
}

// loadCheckpoints reads every checkpoint of stream signed by the trusted
// key, and checks each signature.
func (w *walk) loadCheckpoints(ctx context.Context, stream string) error {
	if w.v.pub == nil {
		return nil
	}
	key := w.v.keys.Checkpoints(stream)
	start := "-"
	for {
		msgs, err := w.v.c.XRangeN(ctx, key, start, "+", 1000).Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		for _, m := range msgs {
			cp, err := parseCheckpoint(w.r.Key, m)
			if cp.KeyID != w.v.keyID {
				w.r.OtherKeys++
				continue
			}
			if _, _, e := parseID(cp.EntryID); err == nil && e != nil {
				err = e
			}
			if err != nil {
				w.fail(cp.EntryID, BadSignature, "checkpoint %s is malformed: %v", m.ID, err)
				return nil
			}
			if !cp.Verify(w.v.pub) {
				w.fail(cp.EntryID, BadSignature, "checkpoint %s (entry %s, hash %s) does not carry a valid signature of key %s: it was forged or altered", m.ID, cp.EntryID, cp.Hash, w.v.keyID)
				return nil
			}
			w.cps = append(w.cps, cp)
		}
		if len(msgs) < 1000 {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	sort.SliceStable(w.cps, func(i, j int) bool { return mustID(w.cps[i].EntryID).less(mustID(w.cps[j].EntryID)) })
	return nil
}
