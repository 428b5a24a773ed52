package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// checkTTL rejects a ttl that would store an already expired item.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("sqlite: ttl %v is not positive", ttl)
	}
	return nil
}

// PutIfAbsent stores val under key for ttl unless a live record exists (one
// statement: an upsert that replaces only an expired row), and reports
// whether it stored. Errors: ttl <= 0; the driver's, wrapped with "sqlite:
// put record".
func (d *DB) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	now := d.now()
	res, err := d.wstmts.ExecContext(ctx, `INSERT INTO records (key, val, expires_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (key) DO UPDATE SET val = excluded.val, expires_at = excluded.expires_at
		WHERE records.expires_at <= ?4`, key, nonNilBytes(val), now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("sqlite: put record: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: put record: %w", err)
	}
	return n == 1, nil
}

// Put stores val under key for ttl, replacing any record. Errors: ttl <= 0;
// the driver's, wrapped with "sqlite: put record".
func (d *DB) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if _, err := d.wstmts.ExecContext(ctx, upsertRecord, key, nonNilBytes(val), d.now().Add(ttl).UnixNano()); err != nil {
		return fmt.Errorf("sqlite: put record: %w", err)
	}
	return nil
}

// Get returns the live value of key, or store.ErrNotFound (wrapped with
// "sqlite: get record", as the driver's errors are).
func (d *DB) Get(ctx context.Context, key string) ([]byte, error) {
	var val []byte
	err := d.stmts.QueryRowContext(ctx, `SELECT val FROM records WHERE key = ?1 AND expires_at > ?2`,
		key, d.now().UnixNano()).Scan(&val)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get record: %w", err)
	}
	return nonNilBytes(val), nil
}

// Take atomically returns and deletes the live value of key (DELETE ...
// RETURNING), or store.ErrNotFound; both wrapped with "sqlite: take
// record". An expired record is deleted too.
func (d *DB) Take(ctx context.Context, key string) ([]byte, error) {
	var (
		val []byte
		exp int64
	)
	err := d.wstmts.QueryRowContext(ctx, `DELETE FROM records WHERE key = ?1 RETURNING val, expires_at`, key).
		Scan(&val, &exp)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && exp <= d.now().UnixNano()) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: take record: %w", err)
	}
	return nonNilBytes(val), nil
}

// EachRecord calls fn with every live record whose key starts with prefix
// and its time left at the DB's clock, in no particular order, until fn
// returns an error (returned as is). Errors: the driver's, wrapped with
// "sqlite: each record".
func (d *DB) EachRecord(ctx context.Context, prefix string, fn func(key string, val []byte, ttl time.Duration) error) error {
	now := d.now()
	// The keys starting with prefix are the range [prefix, end), which the
	// primary key's index answers.
	end := []byte(prefix)
	for len(end) > 0 && end[len(end)-1] == 0xff {
		end = end[:len(end)-1]
	}
	if len(end) == 0 {
		end = []byte{0xff, 0xff, 0xff, 0xff} // prefix "" (or all 0xff): every text key sorts below
	} else {
		end[len(end)-1]++
	}
	rows, err := d.stmts.QueryContext(ctx, `SELECT key, val, expires_at FROM records
		WHERE key >= ?1 AND key < ?2 AND expires_at > ?3`, prefix, string(end), now.UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: each record: %w", err)
	}
	type rec struct {
		key string
		val []byte
		exp int64
	}
	// Read them all before calling fn, which may use the database: the
	// rows hold a connection of the pool until closed.
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.key, &r.val, &r.exp); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: each record: %w", err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: each record: %w", err)
	}
	for _, r := range recs {
		if err := fn(r.key, nonNilBytes(r.val), time.Duration(r.exp-now.UnixNano())); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes key; deleting an absent key returns nil. Errors: the
// driver's, wrapped with "sqlite: delete record".
func (d *DB) Delete(ctx context.Context, key string) error {
	if _, err := d.wstmts.ExecContext(ctx, `DELETE FROM records WHERE key = ?1`, key); err != nil {
		return fmt.Errorf("sqlite: delete record: %w", err)
	}
	return nil
}

// lockPoll is how often a blocked Lock tries again.
const lockPoll = 20 * time.Millisecond

// lease is a grant of a lock row.
type lease struct {
	d     *DB
	name  string
	token string
	fence int64
}

// Fence returns the fencing token of this grant, > 0.
func (l *lease) Fence() int64 { return l.fence }

// Release frees the lock row if this lease still holds it (same token).
// Errors: the driver's, wrapped with "sqlite: release lock".
func (l *lease) Release(ctx context.Context) error {
	if _, err := l.d.wstmts.ExecContext(ctx, `UPDATE locks SET token = '', expires_at = 0
		WHERE name = ?1 AND token = ?2`, l.name, l.token); err != nil {
		return fmt.Errorf("sqlite: release lock: %w", err)
	}
	return nil
}

// Lock blocks until the lock row name is free or expired (by the DB's
// clock), polling every 20 ms, then takes it for ttl with the next fence in
// one statement. Errors: ctx.Err() when ctx ends first; ttl <= 0; the
// driver's, wrapped with "sqlite: lock".
func (d *DB) Lock(ctx context.Context, name string, ttl time.Duration) (store.Lease, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	token := store.RandomBase62(22)
	for {
		now := d.now()
		var fence int64
		err := d.wstmts.QueryRowContext(ctx, `INSERT INTO locks (name, token, fence, expires_at) VALUES (?1, ?2, 1, ?3)
			ON CONFLICT (name) DO UPDATE SET token = excluded.token, fence = locks.fence + 1,
				expires_at = excluded.expires_at
			WHERE locks.expires_at <= ?4
			RETURNING fence`, name, token, now.Add(ttl).UnixNano(), now.UnixNano()).Scan(&fence)
		if err == nil {
			return &lease{d: d, name: name, token: token, fence: fence}, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("sqlite: lock: %w", err)
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// upsertRecord writes a record, replacing any under its key: ?1 key, ?2
// value, ?3 expiry (Unix ns). One text for every caller, so one prepared
// statement.
const upsertRecord = `INSERT INTO records (key, val, expires_at) VALUES (?1, ?2, ?3)
	ON CONFLICT (key) DO UPDATE SET val = excluded.val, expires_at = excluded.expires_at`
