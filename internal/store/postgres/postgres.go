package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/wxauth/wxauth/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Compile-time checks of what DB implements.
var (
	_ store.Users         = (*DB)(nil)
	_ store.RefreshTokens = (*DB)(nil)
	_ store.Keys          = (*DB)(nil)
	_ store.Records       = (*DB)(nil)
	_ store.Locker        = (*DB)(nil)
	_ store.TokenCache    = (*DB)(nil)
)

// MaxConns is the most connections one DB opens to the server.
const MaxConns = 8

// SweepInterval is how often the janitor deletes expired records and
// refresh tokens.
const SweepInterval = time.Minute

// migrationLockID is the pg_advisory_lock key serialising migrations
// ("wxauth" in ASCII).
const migrationLockID = 0x777861757468

// keysLockID is the pg_advisory_xact_lock key serialising UpdateKeys.
const keysLockID = migrationLockID + 1

// maxTxAttempts bounds the runs of a transaction that lost a race.
const maxTxAttempts = 8

// DB is an open PostgreSQL store, safe for concurrent use. Call
// [DB.Close] when done.
type DB struct {
	pool *pool
	now  func() time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Open connects to the PostgreSQL database named by url
// (postgres://user[:password]@host:port/dbname?sslmode=...), applies the
// embedded migrations not yet applied (under pg_advisory_lock), and starts
// the janitor. now is the clock for expiry (time.Now when nil).
//
// Errors: a parse error (without the URL, which may hold a password);
// store.ErrUnavailable wrapped with the cause when the server cannot be
// reached; a migration error naming the file.
func Open(ctx context.Context, url string, now func() time.Time) (*DB, error) {
	if now == nil {
		now = time.Now
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("postgres: invalid URL: expected postgres://user@host:port/dbname")
	}
	pl, err := newPool(cfg, MaxConns)
	if err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	d := &DB{
		pool: pl,
		now:  now,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := d.migrate(ctx); err != nil {
		d.pool.close()
		return nil, err
	}
	go d.janitor()
	return d, nil
}

// migrate applies, in one transaction under a session advisory lock, every
// embedded migration not yet in schema_migrations, in file name order.
func (d *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	sort.Strings(names)
	return d.pool.with(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLockID)); err != nil {
			return wrap("migration lock", err)
		}
		defer func() {
			// A fresh context: the unlock must happen even when ctx ended.
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.Exec(uctx, `SELECT pg_advisory_unlock($1)`, int64(migrationLockID)); err != nil {
				_ = c.Close(uctx) // closing the session releases the lock
			}
		}()
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version text PRIMARY KEY, applied_at timestamptz NOT NULL)`); err != nil {
				return wrap("create schema_migrations", err)
			}
			for _, name := range names {
				version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
				var applied bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`,
					version).Scan(&applied); err != nil {
					return wrap("read schema_migrations", err)
				}
				if applied {
					continue
				}
				body, err := migrations.ReadFile(name)
				if err != nil {
					return fmt.Errorf("postgres: migration %s: %w", version, err)
				}
				if _, err := tx.Exec(ctx, string(body)); err != nil {
					return wrap("migration "+version, err)
				}
				if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
					version, d.now()); err != nil {
					return wrap("record migration "+version, err)
				}
			}
			return nil
		})
	})
}

// Ping checks that the server answers. Errors: store.ErrUnavailable wrapped
// with the cause.
func (d *DB) Ping(ctx context.Context) error {
	return d.pool.with(ctx, func(c *pgx.Conn) error {
		if err := c.Ping(ctx); err != nil {
			return fmt.Errorf("postgres: ping: %w: %w", store.ErrUnavailable, err)
		}
		return nil
	})
}

// Close stops the janitor and closes every connection. It is idempotent
// and returns nil.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		<-d.done
		d.pool.close()
	})
	return nil
}

// janitor calls Sweep every SweepInterval until Close.
func (d *DB) janitor() {
	defer close(d.done)
	tick := time.NewTicker(SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), SweepInterval)
			_ = d.Sweep(ctx) // a failed sweep is retried at the next tick
			cancel()
		}
	}
}

// Sweep deletes the records and refresh tokens expired at now. Reads ignore
// expired rows already; this only reclaims space. Errors: wrapped driver
// errors.
func (d *DB) Sweep(ctx context.Context) error {
	now := d.now()
	return d.pool.with(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `DELETE FROM records WHERE expires_at <= $1`, now); err != nil {
			return wrap("sweep records", err)
		}
		if _, err := c.Exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at <= $1`, now); err != nil {
			return wrap("sweep refresh tokens", err)
		}
		return nil
	})
}

// inTx runs fn in a READ COMMITTED transaction, committing when it returns
// nil, and runs it again (up to maxTxAttempts) when the transaction lost a
// race: unique violation, serialization failure or deadlock.
func (d *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for range maxTxAttempts {
		err = d.pool.with(ctx, func(c *pgx.Conn) error { return pgx.BeginFunc(ctx, c, fn) })
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// PostgreSQL SQLSTATEs a transaction retries on
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// retryable reports whether a transaction failing with err may succeed when
// run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case codeUniqueViolation, codeSerializationFailure, codeDeadlockDetected:
		return true
	}
	return false
}

// wrap returns err annotated with step, and with store.ErrUnavailable when
// it is a connection failure rather than an answer of the server or the
// end of ctx. store sentinels pass through wrapped.
func wrap(step string, err error) error {
	if err == nil {
		return nil
	}
	var (
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")):
		// Connection exception, or the server shutting down or refusing
		// connections (admin_shutdown, crash_shutdown, cannot_connect_now).
		return fmt.Errorf("postgres: %s: %w: %w", step, store.ErrUnavailable, err)
	case errors.Is(err, store.ErrUnavailable), errors.As(err, &pgErr),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("postgres: %s: %w", step, err)
	case errors.As(err, &connErr), errors.As(err, &netErr), errors.Is(err, errPoolClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The server or the network dropped the connection mid-statement.
		return fmt.Errorf("postgres: %s: %w: %w", step, store.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", step, err)
}

// errPoolClosed is returned by the pool after Close.
var errPoolClosed = errors.New("connection pool closed")

// pool runs statements on connections of a pgxpool.Pool. pgxpool opens,
// reuses, health-checks and closes the connections; pool only adds the
// wrapping of errors into store sentinels and one retry for a connection
// that died while idle.
type pool struct {
	p *pgxpool.Pool
}

// newPool builds the pgxpool over cfg with at most max connections. It
// connects lazily: the first statement dials.
func newPool(cfg *pgx.ConnConfig, max int) (*pool, error) {
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	pc.ConnConfig = cfg
	pc.MaxConns = int32(max)
	pc.MinConns = 0
	p, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, err
	}
	return &pool{p: p}, nil
}

// with runs fn on a connection of the pool and gives it back. When the
// connection turns out dead before fn's statement ran (the server
// terminated it while idle, or nothing was sent), fn runs once more on
// another connection. Errors: from fn; store.ErrUnavailable wrapped when no
// connection can be made or the pool is closed.
func (p *pool) with(ctx context.Context, fn func(c *pgx.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := p.p.Acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, puddle.ErrClosedPool) {
				err = errPoolClosed
			}
			return wrap("connect", err)
		}
		err = fn(c.Conn())
		dead := err != nil && c.Conn().IsClosed() && diedIdle(err)
		c.Release() // a closed connection is destroyed, not reused
		if dead && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// diedIdle reports whether err says the connection was dead before the
// statement ran: nothing was sent, or the server had terminated the
// session (SQLSTATE 57P01-57P03), which it announces before reading more.
func diedIdle(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	return pgconn.SafeToRetry(err)
}

// close closes every connection; later calls fail with errPoolClosed.
// Connections in use close when given back.
func (p *pool) close() { p.p.Close() }

// nullTime returns nil for the zero time (SQL NULL), else t.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromNull is the inverse of nullTime, in UTC.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
