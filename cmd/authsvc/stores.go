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
	"github.com/wxauth/wxauth/internal/store/sqlite"
)

// openStores composes the store.Set of cfg. One instance (SQLite): users,
// refresh tokens, keys and the credential cache in the SQLite file; login
// state, de-duplication records, locks and pub/sub in the process, which is
// fastest and loses nothing that outlives a restart by more than minutes.
func openStores(ctx context.Context, cfg *config.Config, logger *slog.Logger, now func() time.Time) (store.Set, error) {
	mem := memory.New(now)
	set := store.Set{Records: mem, Locker: mem, Broker: mem, TokenCache: mem}
	closers := []func() error{mem.Close}
	pings := []func(context.Context) error{}
	switch {
	case strings.HasPrefix(cfg.DatabaseURL, "sqlite:"):
		db, err := sqlite.Open(ctx, strings.TrimPrefix(cfg.DatabaseURL, "sqlite:"), now)
		if err != nil {
			mem.Close()
			return store.Set{}, fmt.Errorf("WXAUTH_DATABASE_URL: %w", err)
		}
		set.Users, set.RefreshTokens, set.Keys, set.TokenCache = db, db, db, db
		closers = append(closers, db.Close)
		pings = append(pings, db.Ping)
	default:
		mem.Close()
		return store.Set{}, errors.New("WXAUTH_DATABASE_URL: only sqlite: is supported by this build")
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
