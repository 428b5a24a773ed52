package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// stmts keeps one prepared statement per query text, so that SQLite parses
// each statement once instead of on every call: database/sql then keeps the
// statement prepared on each connection it runs on, and a transaction reuses
// the one of its connection ([sql.Tx.StmtContext]). Queries are the
// package's constant texts, so the cache is bounded by them.
type stmts struct {
	db *sql.DB
	// turn, when not nil (the writing pool), orders the statements run
	// outside a transaction, and the transactions ([DB.inTx]), first come
	// first served: database/sql hands a freed connection to a random
	// waiter, which under load left some writes waiting for many others
	// (the refresh grant's p99 doubled at 64 concurrent requests). Taking
	// the turn (a channel of capacity 1, whose waiters Go wakes in order)
	// before the connection keeps at most one waiter at the pool.
	turn    chan struct{}
	m       sync.Map // query -> *sql.Stmt
	pending sync.Map // query -> struct{}: being prepared in the background

	mu     sync.Mutex // guards closed and adding to bg
	closed bool
	bg     sync.WaitGroup // background preparations
}

// prepareTimeout bounds a background preparation.
const prepareTimeout = 10 * time.Second

// cached returns the prepared statement of query, or nil when it is not
// prepared yet.
func (s *stmts) cached(query string) *sql.Stmt {
	if v, ok := s.m.Load(query); ok {
		return v.(*sql.Stmt)
	}
	return nil
}

// get returns the prepared statement of query, preparing it on first use.
// It takes a connection of the pool: never call it while holding one (in
// a transaction); see prepareLater.
func (s *stmts) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := s.cached(query); st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.m.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// prepareLater prepares query on a goroutine of its own, for a statement
// first met inside a transaction: the transaction holds its connection,
// and a pool of one connection (":memory:") or of connections all in
// transactions would wait on itself. A failure is left to the next call.
func (s *stmts) prepareLater(query string) {
	if _, busy := s.pending.LoadOrStore(query, struct{}{}); busy {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer s.pending.Delete(query)
		ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
		defer cancel()
		s.get(ctx, query)
	}()
}

// close waits for the background preparations and stops new ones; call
// it before closing the database, so that none holds a connection past it.
func (s *stmts) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.bg.Wait()
}

// take waits for the turn (see stmts.turn); the caller calls give after.
// Errors: ctx's when it ends first.
func (s *stmts) take(ctx context.Context) error {
	if s.turn == nil {
		return nil
	}
	select {
	case s.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// give ends a turn taken by take.
func (s *stmts) give() {
	if s.turn != nil {
		<-s.turn
	}
}

// ExecContext is [sql.DB.ExecContext] through the prepared statement.
func (s *stmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := s.take(ctx); err != nil {
		return nil, err
	}
	defer s.give()
	st, err := s.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryRowContext is [sql.DB.QueryRowContext] through the prepared
// statement; when preparing fails, the unprepared query reports the error.
// The turn ends before the row is scanned: the next writer then waits for
// this connection alone.
func (s *stmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if err := s.take(ctx); err != nil {
		return s.db.QueryRowContext(ctx, query, args...) // reports ctx's error
	}
	defer s.give()
	st, err := s.get(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext is [sql.DB.QueryContext] through the prepared statement,
// for reads only: it takes no turn (the rows would hold the writing
// connection until closed).
func (s *stmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// stmtTx is a transaction running the cached statements: the methods of
// [sql.Tx] that the store uses, through [sql.Tx.StmtContext] when the
// statement is prepared, else unprepared (and prepared for next time).
type stmtTx struct {
	tx *sql.Tx
	s  *stmts
}

// stmt returns the transaction's instance of query's prepared statement,
// or nil.
func (t *stmtTx) stmt(ctx context.Context, query string) *sql.Stmt {
	st := t.s.cached(query)
	if st == nil {
		t.s.prepareLater(query)
		return nil
	}
	return t.tx.StmtContext(ctx, st)
}

// ExecContext is [sql.Tx.ExecContext].
func (t *stmtTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// QueryRowContext is [sql.Tx.QueryRowContext].
func (t *stmtTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// QueryContext is [sql.Tx.QueryContext].
func (t *stmtTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}
