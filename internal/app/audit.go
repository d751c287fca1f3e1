package app

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// streams is the stream store with the chain verifier beside it: it is
// both tools.Streams and tools.AuditVerifier.
type streams struct {
	*stream.Store
	*audit.Verifier
}

// SigningKeyFile is where cfg keeps the checkpoint signing key.
func SigningKeyFile(cfg config.Config) (string, error) {
	if f := cfg.Audit.SigningKeyFile; f != "" {
		return f, nil
	}
	return audit.DefaultKeyFile()
}

// chainStore builds the stream store with the configured chains and, when
// the signing key can be read or made, the checkpointer. Without a key the
// chain still links every entry, and nothing is signed: a warning says so.
func chainStore(cfg config.Config, conn *rdb.Conn, keys keyspace.Keyspace, log *slog.Logger) (*streams, *audit.Checkpointer) {
	maxLen := func(s string) int64 { return cfg.Streams.Get(s).MaxLen }
	var opts []stream.Option
	if cfg.Redis.ShardedPubSub {
		opts = append(opts, stream.WithShardedPubSub())
	}
	if len(cfg.Audit.Chain) == 0 {
		return &streams{Store: stream.NewStore(conn.Writer, keys, maxLen, cfg.Idempotency.TTL, opts...), Verifier: audit.NewVerifier(conn.Client, keys, nil)}, nil
	}
	var cp *audit.Checkpointer
	var pub ed25519.PublicKey
	signer, err := loadSigner(cfg, log)
	if err != nil {
		log.Warn("audit checkpoints are off: the signing key is unavailable; the chain still links every entry", "err", err)
	} else {
		pub = signer.Public()
		cp = audit.NewCheckpointer(conn.Client, keys, signer, audit.CheckpointerConfig{
			Streams: cfg.Audit.Chain, Every: cfg.Audit.CheckpointEvery, Interval: cfg.Audit.CheckpointInterval, Timeout: cfg.Redis.Timeout,
		}, log)
	}
	var onLink func(stream.Link)
	if cp != nil {
		onLink = func(l stream.Link) { cp.Linked(l.Stream, l.Key, l.ID, l.Hash, l.Length) }
	}
	opts = append(opts, stream.WithChain(cfg.Audit.Chain, onLink))
	st := stream.NewStore(conn.Writer, keys, maxLen, cfg.Idempotency.TTL, opts...)
	return &streams{Store: st, Verifier: audit.NewVerifier(conn.Client, keys, pub)}, cp
}

func loadSigner(cfg config.Config, log *slog.Logger) (*audit.Signer, error) {
	path, err := SigningKeyFile(cfg)
	if err != nil {
		return nil, err
	}
	s, created, err := audit.LoadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("generated the audit checkpoint signing key", "file", path, "key_id", s.ID)
	}
	return s, nil
}

// PublicKey returns the public half of cfg's signing key, generating the
// key when there is none yet (as the server would on its first start).
func PublicKey(cfg config.Config) (ed25519.PublicKey, string, error) {
	path, err := SigningKeyFile(cfg)
	if err != nil {
		return nil, "", err
	}
	s, _, err := audit.LoadOrCreateKey(path)
	if err != nil {
		return nil, "", err
	}
	return s.Public(), path, nil
}

// VerifyOptions are what `mcp-redis audit verify` asks.
type VerifyOptions struct {
	Stream, From string
	// PublicKeyFile is the trusted checkpoint key (PEM); "" uses the
	// public half of audit.signing_key_file when that file exists.
	PublicKeyFile string
}

// Verify walks a chain with cfg's Redis connection. The report's Problem
// says whether the chain is intact; an error is a failure to check.
func Verify(ctx context.Context, cfg config.Config, o VerifyOptions, log *slog.Logger) (*audit.Report, bool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, false, err
	}
	var pub ed25519.PublicKey
	if o.PublicKeyFile != "" {
		b, err := os.ReadFile(o.PublicKeyFile)
		if err != nil {
			return nil, false, fmt.Errorf("read the public key: %w", err)
		}
		if pub, err = audit.ParsePublicKey(b); err != nil {
			return nil, false, fmt.Errorf("read the public key %s: %w", o.PublicKeyFile, err)
		}
	} else if path, err := SigningKeyFile(cfg); err == nil {
		if s, err := audit.LoadKey(path); err == nil {
			pub = s.Public()
		}
	}
	conn, emb, err := openRedis(cfg.Redis, log)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	if emb != nil {
		defer emb.Close()
	}
	keys := keyspace.Keyspace{Prefix: cfg.Redis.Prefix}
	r, err := audit.NewVerifier(conn.Client, keys, pub).Verify(ctx, audit.Request{Stream: o.Stream, From: o.From})
	return r, pub != nil, err
}
