package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wxauth/wxauth/internal/store"
)

// CreateRefreshToken stores t. Errors: store.ErrAlreadyExists when t.Hash is
// taken; wrapped driver errors.
func (d *DB) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	err := d.pool.with(ctx, func(c *pgx.Conn) error { return insertRefresh(ctx, c, t) })
	if err != nil {
		return wrap("create refresh token", err)
	}
	return nil
}

// insertRefresh inserts t, mapping a taken hash to store.ErrAlreadyExists.
func insertRefresh[E interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}](ctx context.Context, q E, t store.RefreshToken) error {
	var inserted bool
	err := q.QueryRow(ctx, `WITH ins AS (
			INSERT INTO refresh_tokens (hash, family_id, user_id, scope, created_at, expires_at, used_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM ins)`,
		t.Hash, t.FamilyID, t.UserID, t.Scope, t.CreatedAt, t.ExpiresAt, nullTime(t.UsedAt)).Scan(&inserted)
	if err != nil {
		return err
	}
	if !inserted {
		return store.ErrAlreadyExists
	}
	return nil
}

// refreshColumns are the refresh_tokens columns scanRefresh reads, plus
// whether the family is revoked.
const refreshColumns = `hash, family_id, user_id, scope, created_at, expires_at, used_at,
	EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = refresh_tokens.family_id)`

// scanRefresh reads one row of refreshColumns, then any extra columns into
// extra; pgx.ErrNoRows becomes
// store.ErrNotFound.
func scanRefresh(r pgx.Row, extra ...any) (store.RefreshToken, bool, error) {
	var (
		t            store.RefreshToken
		created, exp time.Time
		used         *time.Time
		revoked      bool
	)
	err := r.Scan(append([]any{&t.Hash, &t.FamilyID, &t.UserID, &t.Scope, &created, &exp, &used, &revoked}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.RefreshToken{}, false, store.ErrNotFound
	}
	if err != nil {
		return store.RefreshToken{}, false, err
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = created.UTC(), exp.UTC(), fromNull(used)
	return t, revoked, nil
}

// RotateRefreshToken marks oldHash used and stores next as its successor in one
// transaction holding the old row's lock (SELECT ... FOR UPDATE), so of two
// concurrent rotations the second sees the first's used_at. Errors, as
// [store.RefreshTokens] documents: store.ErrNotFound (unknown, expired at
// [store.RotationTime], family revoked); store.ErrReused (the family revocation is committed
// before returning); store.ErrAlreadyExists when next.Hash is taken
// or the token was rotated into another successor within grace;
// wrapped driver errors.
func (d *DB) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, now time.Time, grace time.Duration) (store.RefreshToken, error) {
	var (
		old    store.RefreshToken
		reused bool
	)
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		reused = false
		var nextHash string
		t, revoked, err := scanRefresh(tx.QueryRow(ctx,
			`SELECT `+refreshColumns+`, next_hash FROM refresh_tokens WHERE hash = $1 FOR UPDATE`, oldHash), &nextHash)
		if err != nil {
			return err
		}
		at := store.RotationTime(now, d.now)
		if revoked || !at.Before(t.ExpiresAt) {
			return store.ErrNotFound
		}
		if next.FamilyID != t.FamilyID {
			return errors.New("next refresh token is not of the rotated family")
		}
		if store.UsedOutsideGrace(t.UsedAt, at, grace) {
			reused = true // commit the revocation, then report
			return revokeFamily(ctx, tx, t.FamilyID, at)
		}
		if !t.UsedAt.IsZero() {
			// Within grace: the same successor again, or nothing.
			if nextHash != next.Hash {
				return store.ErrAlreadyExists
			}
			old = t
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $2, next_hash = $3 WHERE hash = $1`,
			oldHash, at, next.Hash); err != nil {
			return err
		}
		t.UsedAt = at
		old = t
		return insertRefresh(ctx, tx, next)
	})
	if err == nil && reused {
		err = store.ErrReused
	}
	if err != nil {
		return store.RefreshToken{}, wrap("rotate refresh token", err)
	}
	return old, nil
}

// GetRefreshToken returns the record for hash, or store.ErrNotFound when it
// is unknown or its family is revoked. Errors: wrapped driver errors.
func (d *DB) GetRefreshToken(ctx context.Context, hash string) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		var (
			revoked bool
			err     error
		)
		t, revoked, err = scanRefresh(c.QueryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, hash))
		if err == nil && revoked {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return store.RefreshToken{}, wrap("get refresh token", err)
	}
	return t, nil
}

// RevokeFamily revokes every refresh token of familyID, present and future.
// Errors: wrapped driver errors.
func (d *DB) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO revoked_families (family_id, revoked_at) VALUES ($1, $2)
			ON CONFLICT (family_id) DO NOTHING`, familyID, now)
		return err
	})
	if err != nil {
		return wrap("revoke family", err)
	}
	return nil
}

func revokeFamily(ctx context.Context, tx pgx.Tx, familyID string, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO revoked_families (family_id, revoked_at) VALUES ($1, $2)
		ON CONFLICT (family_id) DO NOTHING`, familyID, now)
	return err
}

// keyColumns are the signing_keys columns, in scan order.
const keyColumns = `id, alg, private, public, created_at, sign_from, retired_at, remove_at`

// listKeys reads every key, oldest first.
func listKeys[Q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}](ctx context.Context, q Q) ([]store.SigningKey, error) {
	rows, err := q.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []store.SigningKey
	for rows.Next() {
		var (
			k                         store.SigningKey
			created                   time.Time
			signFrom, retired, remove *time.Time
		)
		if err := rows.Scan(&k.ID, &k.Alg, &k.Private, &k.Public, &created, &signFrom, &retired, &remove); err != nil {
			return nil, err
		}
		k.CreatedAt, k.SignFrom, k.RetiredAt, k.RemoveAt = created.UTC(), fromNull(signFrom), fromNull(retired), fromNull(remove)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// ListKeys returns every stored key, oldest (CreatedAt) first. Errors:
// wrapped driver errors.
func (d *DB) ListKeys(ctx context.Context) ([]store.SigningKey, error) {
	var keys []store.SigningKey
	err := d.pool.with(ctx, func(c *pgx.Conn) (err error) {
		keys, err = listKeys(ctx, c)
		return err
	})
	if err != nil {
		return nil, wrap("list keys", err)
	}
	return keys, nil
}

// UpdateKeys runs update on the stored keys inside one transaction holding
// a transaction-level advisory lock (so concurrent updates, from any
// instance, apply one after another) and replaces them with what it
// returns. An error from update is returned as is (nothing changes); others
// are wrapped driver errors.
func (d *DB) UpdateKeys(ctx context.Context, update func(old []store.SigningKey) ([]store.SigningKey, error)) error {
	var updateErr error
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(keysLockID)); err != nil {
			return err
		}
		cur, err := listKeys(ctx, tx)
		if err != nil {
			return err
		}
		next, err := update(cur)
		if err != nil {
			updateErr = err
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM signing_keys`); err != nil {
			return err
		}
		for _, k := range next {
			if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (`+keyColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, k.ID, k.Alg, nonNilBytes(k.Private), nonNilBytes(k.Public),
				k.CreatedAt, nullTime(k.SignFrom), nullTime(k.RetiredAt), nullTime(k.RemoveAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if updateErr != nil && errors.Is(err, updateErr) {
		return updateErr
	}
	if err != nil {
		return wrap("update keys", err)
	}
	return nil
}

// nonNilBytes returns b, or an empty slice for nil (NOT NULL columns).
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GetToken returns the cached token called name, or store.ErrNotFound.
// Errors: wrapped driver errors.
func (d *DB) GetToken(ctx context.Context, name string) (store.CachedToken, error) {
	var t store.CachedToken
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		var exp *time.Time
		err := c.QueryRow(ctx, `SELECT value, expires_at, fence FROM tokens WHERE name = $1`, name).
			Scan(&t.Value, &exp, &t.Fence)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		t.ExpiresAt = fromNull(exp)
		return err
	})
	if err != nil {
		return store.CachedToken{}, wrap("get token", err)
	}
	return t, nil
}

// SetToken stores t unless the stored token has a higher Fence (one upsert
// whose update is conditional on the stored fence). Errors: store.ErrStale;
// wrapped driver errors.
func (d *DB) SetToken(ctx context.Context, name string, t store.CachedToken) error {
	err := d.pool.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `INSERT INTO tokens (name, value, expires_at, fence) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
				fence = excluded.fence
			WHERE tokens.fence <= excluded.fence`, name, nonNilBytes(t.Value), nullTime(t.ExpiresAt), t.Fence)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrStale
		}
		return err
	})
	if err != nil {
		return wrap("set token", err)
	}
	return nil
}
