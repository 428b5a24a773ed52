package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver"    // registers database/sql driver "sqlite3"
	_ "github.com/ncruces/go-sqlite3/vfs/memdb" // the memdb VFS of :memory: databases

	"github.com/wxauth/wxauth/internal/store"
)

// busyTimeout is how long a statement waits for another connection's write
// lock before failing with SQLITE_BUSY (milliseconds in the pragma).
const busyTimeout = 10 * time.Second

// maxOpenConns bounds the reading pool of a file database: WAL lets readers
// proceed beside the one writer.
const maxOpenConns = 4

// SweepInterval is how often the janitor deletes expired records and
// refresh tokens.
const SweepInterval = time.Minute

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

// DB is an open SQLite store, safe for concurrent use. Call [DB.Close]
// when done.
type DB struct {
	db    *sql.DB
	stmts *stmts // the reading statements, prepared once
	// w is the writing pool: one connection runs every write statement and
	// transaction. SQLite has one writer at a time anyway; with one
	// connection, writers queue on its turn (stmts.turn: woken at once, in
	// order) instead of in SQLite's busy handler (which sleeps 1, 2, 5, 10
	// ... ms between tries), and the writer's page cache stays warm: a
	// connection drops its whole cache when it sees another connection's
	// commit, which on a pool of four writers was most of the cost of a
	// login's writes. For an in-memory database w is db.
	w      *sql.DB
	wstmts *stmts // the writing statements
	now    func() time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the SQLite database named by dsn, applies
// the embedded migrations not yet applied, and starts the janitor. dsn is a
// file path, optionally prefixed "sqlite:" (WXAUTH_DATABASE_URL's form);
// ":memory:" or "sqlite::memory:" opens a private in-memory database (a
// shared-cache database with a unique name, on one connection), for tests.
// now is the clock for expiry (time.Now when nil).
//
// Errors: the driver's error wrapped with "sqlite: open" when the file
// cannot be opened or is not a database; a migration error naming the file.
func Open(ctx context.Context, dsn string, now func() time.Time) (*DB, error) {
	if now == nil {
		now = time.Now
	}
	path := strings.TrimPrefix(dsn, "sqlite:")
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	memory := path == ":memory:"
	var conn string
	if memory {
		conn = "file:/wxauth-" + store.RandomBase62(16) + "?vfs=memdb&_txlock=immediate" +
			"&_pragma=foreign_keys(1)"
	} else {
		// Escape what would end the path part of an SQLite URI filename.
		escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
		conn = "file:" + escaped + "?_txlock=immediate" +
			fmt.Sprintf("&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
			"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	}
	readConn := conn
	if !memory {
		// The reading pool cannot write: every write goes through w.
		readConn += "&_pragma=query_only(1)"
	}
	db, err := sql.Open("sqlite3", readConn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if memory {
		// One connection keeps the database alive and serialises access.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
	} else {
		db.SetMaxOpenConns(maxOpenConns)
		db.SetMaxIdleConns(maxOpenConns)
	}
	d := &DB{db: db, stmts: &stmts{db: db}, w: db, now: now, stop: make(chan struct{}), done: make(chan struct{})}
	d.wstmts = d.stmts
	if !memory {
		w, err := sql.Open("sqlite3", conn)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxIdleTime(0)
		w.SetConnMaxLifetime(0)
		d.w, d.wstmts = w, &stmts{db: w, turn: make(chan struct{}, 1)}
	}
	closeAll := func() {
		if d.w != d.db {
			d.w.Close()
		}
		db.Close()
	}
	if err := db.PingContext(ctx); err != nil {
		closeAll()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := d.migrate(ctx); err != nil {
		closeAll()
		return nil, err
	}
	go d.janitor()
	return d, nil
}

// migrate applies, in one transaction, every embedded migration not yet in
// schema_migrations, in file name order.
func (d *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	sort.Strings(names)
	return d.inTx(ctx, func(tx *stmtTx) error {
		if _, err := tx.tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("sqlite: create schema_migrations: %w", err)
		}
		for _, name := range names {
			version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
			var n int
			if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?1`, version).Scan(&n); err != nil {
				return fmt.Errorf("sqlite: read schema_migrations: %w", err)
			}
			if n > 0 {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", version, err)
			}
			if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", version, err)
			}
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)`,
				version, d.now().UnixNano()); err != nil {
				return fmt.Errorf("sqlite: record migration %s: %w", version, err)
			}
		}
		return nil
	})
}

// Ping checks that the database answers a query.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close stops the janitor and closes the database. Calling it again returns
// the first result.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		<-d.done
		d.stmts.close()
		var errs []error
		if d.w != d.db {
			d.wstmts.close()
			errs = append(errs, d.w.Close())
		}
		errs = append(errs, d.db.Close())
		if err := errors.Join(errs...); err != nil {
			d.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return d.closeErr
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
// expired rows already; this only reclaims space.
func (d *DB) Sweep(ctx context.Context) error {
	now := d.now().UnixNano()
	if _, err := d.wstmts.ExecContext(ctx, `DELETE FROM records WHERE expires_at <= ?1`, now); err != nil {
		return fmt.Errorf("sqlite: sweep records: %w", err)
	}
	if _, err := d.wstmts.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at <= ?1`, now); err != nil {
		return fmt.Errorf("sqlite: sweep refresh tokens: %w", err)
	}
	return nil
}

// maxTxAttempts bounds the retries of a transaction that hit a constraint
// race or SQLITE_BUSY.
const maxTxAttempts = 5

// inTx runs fn in a write (IMMEDIATE) transaction, committing when it
// returns nil. A transaction failing with SQLITE_BUSY or a uniqueness
// violation is retried from the start (fn may run more than once).
func (d *DB) inTx(ctx context.Context, fn func(tx *stmtTx) error) error {
	var err error
	for range maxTxAttempts {
		err = d.tryTx(ctx, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (d *DB) tryTx(ctx context.Context, fn func(tx *stmtTx) error) error {
	if err := d.wstmts.take(ctx); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer d.wstmts.give()
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(&stmtTx{tx: tx, s: d.wstmts}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// SQLite primary result codes (https://sqlite.org/rescode.html).
const (
	codeBusy       = 5
	codeLocked     = 6
	codeConstraint = 19
)

// sqliteCode returns the primary result code of a driver error, or 0.
func sqliteCode(err error) int {
	var e *sqlite3.Error
	if errors.As(err, &e) {
		return int(e.Code())
	}
	return 0
}

// retryable reports whether a transaction failing with err may succeed when
// run again.
func retryable(err error) bool {
	switch sqliteCode(err) {
	case codeBusy, codeLocked, codeConstraint:
		return true
	}
	return false
}

// ns returns t as Unix nanoseconds, 0 for the zero time.
func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNS is the inverse of ns, in UTC.
func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
