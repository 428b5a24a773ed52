package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wxauth/wxauth/internal/config"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/store/postgres"
	"github.com/wxauth/wxauth/internal/store/redis"
	"github.com/wxauth/wxauth/internal/store/sqlite"
)

// memoryRecordPrefixes name the records that stay in process memory on
// SQLite (one instance): short-lived records whose loss in a restart costs
// at most a retry, written and read on every message or login, so that
// the database writes only what must outlive the process.
//
//   - callback de-duplication ("dedup:"), written twice per message, 30 s:
//     a restart loses at most a second handling of a redelivery;
//   - the callback's claim of a state and its sealed outcome ("cb:",
//     "done:"): a duplicate callback after a restart exchanges the code
//     again, WeChat answers 40163, and the authorization restarts once;
//   - authorization codes and their redemptions ("code:", "codeused:"),
//     60 s: a client redeeming a code across a restart gets invalid_grant
//     and its user logs in again.
//
// The state of a login in flight ("state:") stays in the database: a user
// on WeChat's authorize page during a restart still completes the login.
var memoryRecordPrefixes = []store.KeyPrefix{store.KeyDedup, store.KeyClaim, store.KeyDone, store.KeyCode, store.KeyCodeUsed}

// revokedRecordPrefix names the revocation records of ended sessions
// ("revoked:<sid>", package session), read by every /verify and /me: on
// SQLite they are kept in the database and mirrored in memory
// (store.MirroredRecords), so the check costs no database read.
const revokedRecordPrefix = string(store.KeyRevoked)

// revocationMirrorBytes bounds the in-memory mirror of revocations (about
// 150 bytes each: some 28,000 sessions ended within one access-token
// lifetime); past it, the revocation check reads the database.
const revocationMirrorBytes = 4 << 20

// openStores composes the store.Set of cfg.
//
// One instance (SQLite, the default): users, refresh tokens, keys, the
// credential cache and every short-lived record that a restart must not
// lose (login state, revocations of logged-out and reused sessions, QR
// login attempts) in the SQLite file; the records of memoryRecordPrefixes,
// locks and pub/sub in the process, the records bounded by
// WXAUTH_RECORDS_MEMORY_MB.
//
// Several instances: PostgreSQL for the durable data; with WXAUTH_REDIS_URL,
// Redis for records, locks, the credential cache and pub/sub. PostgreSQL
// without Redis keeps records, locks and the cache in PostgreSQL, but pub/sub
// stays in the process (QR logins then complete only on the instance that
// received the scan): startup warns.
func openStores(ctx context.Context, cfg *config.Config, logger *slog.Logger, now func() time.Time) (set store.Set, err error) {
	var closers []func() error
	var pings []func(context.Context) error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	mem := memory.New(now, memory.WithMaxRecordBytes(int64(cfg.RecordsMemoryMiB)<<20))
	closers = append(closers, mem.Close)
	set = store.Set{Records: mem, Locker: mem, Broker: mem, TokenCache: mem, Evictions: mem.Evictions}

	switch {
	case strings.HasPrefix(cfg.DatabaseURL, "sqlite:"):
		db, err := sqlite.Open(ctx, strings.TrimPrefix(cfg.DatabaseURL, "sqlite:"), now)
		if err != nil {
			return store.Set{}, fmt.Errorf("WXAUTH_DATABASE_URL: %w", err)
		}
		closers, pings = append(closers, db.Close), append(pings, db.Ping)
		set.Users, set.RefreshTokens, set.Keys, set.TokenCache = db, db, db, db
		mirror := memory.New(now, memory.WithMaxRecordBytes(revocationMirrorBytes))
		closers = append(closers, mirror.Close)
		revoked := store.MirroredRecords{Mirror: mirror, Durable: db}
		if err := revoked.Load(ctx, func(ctx context.Context, fn func(string, []byte, time.Duration) error) error {
			return db.EachRecord(ctx, revokedRecordPrefix, fn)
		}); err != nil {
			return store.Set{}, fmt.Errorf("WXAUTH_DATABASE_URL: load revocations: %w", err)
		}
		// Login state, QR attempts and the like: grouped writes (one WAL
		// commit per 10 ms), written out on SIGTERM; a SIGKILL loses the
		// last 10 ms of them.
		batched := db.Batched(0, 0)
		closers = append(closers, batched.Close)
		routes := []store.RecordRoute{{Prefix: revokedRecordPrefix, Records: revoked}}
		for _, p := range memoryRecordPrefixes {
			routes = append(routes, store.RecordRoute{Prefix: string(p), Records: mem})
		}
		set.Records = store.RoutedRecords{Default: batched, Routes: routes}
	default: // postgres:// or postgresql://, checked by config.Load
		db, err := postgres.Open(ctx, cfg.DatabaseURL, now)
		if err != nil {
			return store.Set{}, fmt.Errorf("WXAUTH_DATABASE_URL: %w", err)
		}
		closers, pings = append(closers, db.Close), append(pings, db.Ping)
		set.Users, set.RefreshTokens, set.Keys = db, db, db
		set.Records, set.Locker, set.TokenCache = db, db, db
		if cfg.RedisURL == "" {
			logger.Warn("PostgreSQL without WXAUTH_REDIS_URL: records, locks and the credential cache live in PostgreSQL, " +
				"but pub/sub stays in this process; set WXAUTH_REDIS_URL when running several instances")
		}
	}
	if cfg.RedisURL != "" {
		rs, err := redis.Open(ctx, cfg.RedisURL, cfg.RedisPrefix)
		if err != nil {
			return store.Set{}, fmt.Errorf("WXAUTH_REDIS_URL: %w", err)
		}
		closers, pings = append(closers, rs.Close), append(pings, rs.Ping)
		set.Records, set.Locker, set.TokenCache, set.Broker = rs, rs, rs, rs
	}

	set.Ping = func(ctx context.Context) error {
		for _, p := range pings {
			if err := p(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	set.Close = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	return set, nil
}
