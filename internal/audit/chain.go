// Package audit makes the audit trail tamper-evident: the canonical
// encoding and hash that link the entries of a chained stream, the Ed25519
// checkpoints that sign the chain, and the verifier that walks both.
//
// The canonical encoding of an entry (version 1), which any program can
// recompute from `XRANGE key - +`:
//
//	enc  = lp("mcp-redis/audit-chain/v1") || lp(key) || lp(name1) || lp(value1) || … || lp(nameN) || lp(valueN)
//	lp(s) = the length of s in bytes as 4 bytes big-endian, then s
//	hash = lowercase hex of SHA-256(enc)
//
// key is the stream's full Redis key ("mcp:audit_log_stream"); the pairs
// are every field of the entry in entry order, prev_hash included, except
// the field named hash. The Redis entry id is not covered: XADD assigns it
// inside the append script, after the hash is computed. The entry's time is
// its timestamp field, which is covered, and a signed checkpoint names the
// entry id it signs.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
)

// Domain separates the chain's hash input from any other use of SHA-256.
const Domain = "mcp-redis/audit-chain/v1"

// Genesis is the prev_hash of a chain's first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Field names the chain adds to every entry of a chained stream, last and
// in this order.
const (
	PrevHashField = "prev_hash"
	HashField     = "hash"
)

// Pair is one field of an entry, as the chain covers it.
type Pair struct{ Name, Value string }

// Canonical returns the canonical encoding of the entry of stream key with
// fields (in entry order); a field named hash is left out.
func Canonical(key string, fields []Pair) []byte {
	n := 4 + len(Domain) + 4 + len(key)
	for _, f := range fields {
		n += 8 + len(f.Name) + len(f.Value)
	}
	b := make([]byte, 0, n)
	b = lp(b, Domain)
	b = lp(b, key)
	for _, f := range fields {
		if f.Name == HashField {
			continue
		}
		b = lp(b, f.Name)
		b = lp(b, f.Value)
	}
	return b
}

func lp(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// Hash is the hash of an entry: hex SHA-256 of its canonical encoding.
func Hash(key string, fields []Pair) string {
	sum := sha256.Sum256(Canonical(key, fields))
	return hex.EncodeToString(sum[:])
}

// ErrMalformed is returned by Decode for bytes Canonical cannot produce.
var ErrMalformed = errors.New("audit: not a canonical encoding")

// Decode parses a canonical encoding back into the stream key and the
// fields. It exists to show (and test) that the encoding is injective.
func Decode(b []byte) (key string, fields []Pair, err error) {
	next := func() (string, bool) {
		if len(b) < 4 {
			return "", false
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(n) {
			return "", false
		}
		s := string(b[4 : 4+n])
		b = b[4+n:]
		return s, true
	}
	d, ok := next()
	if !ok || d != Domain {
		return "", nil, ErrMalformed
	}
	if key, ok = next(); !ok {
		return "", nil, ErrMalformed
	}
	for len(b) > 0 {
		name, ok1 := next()
		value, ok2 := next()
		if !ok1 || !ok2 || name == HashField {
			return "", nil, ErrMalformed
		}
		fields = append(fields, Pair{name, value})
	}
	return key, fields, nil
}

// IsHash reports whether s is a hash as the chain writes it: 64 lowercase
// hex digits.
func IsHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
