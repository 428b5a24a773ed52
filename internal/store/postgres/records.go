package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wxauth/wxauth/internal/store"
)

// checkTTL rejects a ttl that would store an already expired item.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("postgres: ttl %v is not positive", ttl)
	}
	return nil
}

// PutIfAbsent stores val under key for ttl unless a live record exists (one
// upsert that replaces only an expired row; concurrent callers serialise on
// the row), and reports whether it stored. Errors: ttl <= 0; wrapped driver
// errors.
func (d *DB) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	now := d.now()
	var stored bool
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `INSERT INTO records (key, val, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET val = excluded.val, expires_at = excluded.expires_at
			WHERE records.expires_at <= $4`, key, nonNilBytes(val), now.Add(ttl), now)
		stored = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, wrap("put record", err)
	}
	return stored, nil
}

// Put stores val under key for ttl, replacing any record. Errors: ttl <= 0;
// wrapped driver errors.
func (d *DB) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO records (key, val, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET val = excluded.val, expires_at = excluded.expires_at`,
			key, nonNilBytes(val), d.now().Add(ttl))
		return err
	})
	if err != nil {
		return wrap("put record", err)
	}
	return nil
}

// Get returns the live value of key, or store.ErrNotFound. Errors: wrapped
// driver errors.
func (d *DB) Get(ctx context.Context, key string) ([]byte, error) {
	var val []byte
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		err := c.QueryRow(ctx, `SELECT val FROM records WHERE key = $1 AND expires_at > $2`, key, d.now()).Scan(&val)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, wrap("get record", err)
	}
	return nonNilBytes(val), nil
}

// Take atomically returns and deletes the live value of key (DELETE ...
// RETURNING), or store.ErrNotFound; an expired record is deleted too.
// Errors: wrapped driver errors.
func (d *DB) Take(ctx context.Context, key string) ([]byte, error) {
	var val []byte
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		var exp time.Time
		err := c.QueryRow(ctx, `DELETE FROM records WHERE key = $1 RETURNING val, expires_at`, key).Scan(&val, &exp)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !exp.After(d.now())) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, wrap("take record", err)
	}
	return nonNilBytes(val), nil
}

// Delete removes key; deleting an absent key returns nil. Errors: wrapped
// driver errors.
func (d *DB) Delete(ctx context.Context, key string) error {
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `DELETE FROM records WHERE key = $1`, key)
		return err
	})
	if err != nil {
		return wrap("delete record", err)
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
// Errors: wrapped driver errors.
func (l *lease) Release(ctx context.Context) error {
	err := l.d.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `UPDATE locks SET token = '', expires_at = '-infinity'
			WHERE name = $1 AND token = $2`, l.name, l.token)
		return err
	})
	if err != nil {
		return wrap("release lock", err)
	}
	return nil
}

// Lock blocks until the lock row name is free or expired (by the DB's
// clock), polling every 20 ms, then takes it for ttl with the next fence in
// one upsert. Errors: ctx.Err() when ctx ends first; ttl <= 0; wrapped
// driver errors.
func (d *DB) Lock(ctx context.Context, name string, ttl time.Duration) (store.Lease, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	token := store.RandomBase62(22)
	for {
		now := d.now()
		var fence int64
		err := d.pool.with(ctx, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `INSERT INTO locks (name, token, fence, expires_at) VALUES ($1, $2, 1, $3)
				ON CONFLICT (name) DO UPDATE SET token = excluded.token, fence = locks.fence + 1,
					expires_at = excluded.expires_at
				WHERE locks.expires_at <= $4
				RETURNING fence`, name, token, now.Add(ttl), now).Scan(&fence)
		})
		if err == nil {
			return &lease{d: d, name: name, token: token, fence: fence}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, wrap("lock", err)
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
