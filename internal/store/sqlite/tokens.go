package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// errNextFamily is returned when a rotation's successor names another family.
func errNextFamily() error {
	return errors.New("next refresh token is not of the rotated family")
}

// CreateRefreshToken stores t. Errors: store.ErrAlreadyExists when t.Hash is
// taken; the driver's, wrapped with "sqlite: create refresh token".
func (d *DB) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	// One statement: its own transaction, without BEGIN and COMMIT.
	if err := insertRefresh(ctx, d.wstmts, t); err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	return nil
}

// execer is a transaction's statements or the DB's.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertRefresh inserts t, mapping a taken hash to store.ErrAlreadyExists.
func insertRefresh(ctx context.Context, tx execer, t store.RefreshToken) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens
		(hash, family_id, user_id, scope, created_at, expires_at, used_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (hash) DO NOTHING`,
		t.Hash, t.FamilyID, t.UserID, t.Scope, ns(t.CreatedAt), ns(t.ExpiresAt), ns(t.UsedAt))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return store.ErrAlreadyExists
	}
	return nil
}

// refreshColumns are the refresh_tokens columns scanRefresh reads, plus
// whether the family is revoked.
const refreshColumns = `hash, family_id, user_id, scope, created_at, expires_at, used_at,
	EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = refresh_tokens.family_id)`

// scanRefresh reads one row of refreshColumns, then any extra columns into
// extra; sql.ErrNoRows becomes
// store.ErrNotFound.
func scanRefresh(r rowScanner, extra ...any) (store.RefreshToken, bool, error) {
	var (
		t                   store.RefreshToken
		created, exp, usedT int64
		revoked             bool
	)
	err := r.Scan(append([]any{&t.Hash, &t.FamilyID, &t.UserID, &t.Scope, &created, &exp, &usedT, &revoked}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return store.RefreshToken{}, false, store.ErrNotFound
	}
	if err != nil {
		return store.RefreshToken{}, false, err
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromNS(created), fromNS(exp), fromNS(usedT)
	return t, revoked, nil
}

// RotateRefreshToken marks oldHash used and stores next as its successor
// in one write transaction, as [store.RefreshTokens] documents. Errors:
// store.ErrNotFound (unknown, expired at [store.RotationTime], family
// revoked); store.ErrReused (the family is revoked and committed before
// returning); store.ErrAlreadyExists when next.Hash is taken or the token
// was rotated into another successor within grace; the driver's. All
// wrapped with "sqlite: rotate refresh token".
func (d *DB) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, now time.Time, grace time.Duration) (store.RefreshToken, error) {
	var (
		old    store.RefreshToken
		reused bool
	)
	err := d.inTx(ctx, func(tx *stmtTx) error {
		reused = false
		var nextHash string
		t, revoked, err := scanRefresh(tx.QueryRowContext(ctx,
			`SELECT `+refreshColumns+`, next_hash FROM refresh_tokens WHERE hash = ?1`, oldHash), &nextHash)
		if err != nil {
			return err
		}
		at := store.RotationTime(now, d.now)
		if revoked || !at.Before(t.ExpiresAt) {
			return store.ErrNotFound
		}
		if next.FamilyID != t.FamilyID {
			return errNextFamily()
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
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ?2, next_hash = ?3 WHERE hash = ?1`,
			oldHash, ns(at), next.Hash); err != nil {
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
		return store.RefreshToken{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	return old, nil
}

// GetRefreshToken returns the record for hash, or store.ErrNotFound when it
// is unknown or its family is revoked.
func (d *DB) GetRefreshToken(ctx context.Context, hash string) (store.RefreshToken, error) {
	t, revoked, err := scanRefresh(d.stmts.QueryRowContext(ctx,
		`SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = ?1`, hash))
	if err == nil && revoked {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("sqlite: get refresh token: %w", err)
	}
	return t, nil
}

// RevokeFamily revokes every refresh token of familyID, present and future.
// Errors: the driver's, wrapped with "sqlite: revoke family".
func (d *DB) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	err := d.inTx(ctx, func(tx *stmtTx) error { return revokeFamily(ctx, tx, familyID, now) })
	if err != nil {
		return fmt.Errorf("sqlite: revoke family: %w", err)
	}
	return nil
}

func revokeFamily(ctx context.Context, tx *stmtTx, familyID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO revoked_families (family_id, revoked_at) VALUES (?1, ?2)
		ON CONFLICT (family_id) DO NOTHING`, familyID, ns(now))
	return err
}

// keyColumns are the signing_keys columns, in scan order.
const keyColumns = `id, alg, private, public, created_at, sign_from, retired_at, remove_at`

// listKeys reads every key, oldest first, through q (the DB or a Tx).
func listKeys(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) ([]store.SigningKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []store.SigningKey
	for rows.Next() {
		var (
			k                                 store.SigningKey
			created, signFrom, retired, remov int64
		)
		if err := rows.Scan(&k.ID, &k.Alg, &k.Private, &k.Public, &created, &signFrom, &retired, &remov); err != nil {
			return nil, err
		}
		k.CreatedAt, k.SignFrom, k.RetiredAt, k.RemoveAt = fromNS(created), fromNS(signFrom), fromNS(retired), fromNS(remov)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// ListKeys returns every stored key, oldest (CreatedAt) first. Errors: the
// driver's, wrapped with "sqlite: list keys".
func (d *DB) ListKeys(ctx context.Context) ([]store.SigningKey, error) {
	keys, err := listKeys(ctx, d.stmts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return keys, nil
}

// UpdateKeys runs update on the stored keys inside one write transaction
// and replaces them with what it returns. An error from update is returned
// as is (nothing changes); others are the driver's, wrapped with "sqlite:
// update keys".
func (d *DB) UpdateKeys(ctx context.Context, update func(old []store.SigningKey) ([]store.SigningKey, error)) error {
	var updateErr error
	err := d.inTx(ctx, func(tx *stmtTx) error {
		cur, err := listKeys(ctx, tx)
		if err != nil {
			return err
		}
		next, err := update(cur)
		if err != nil {
			updateErr = err
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM signing_keys`); err != nil {
			return err
		}
		for _, k := range next {
			if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (`+keyColumns+`)
				VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`, k.ID, k.Alg, nonNilBytes(k.Private), nonNilBytes(k.Public),
				ns(k.CreatedAt), ns(k.SignFrom), ns(k.RetiredAt), ns(k.RemoveAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if updateErr != nil && errors.Is(err, updateErr) {
		return updateErr
	}
	if err != nil {
		return fmt.Errorf("sqlite: update keys: %w", err)
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
func (d *DB) GetToken(ctx context.Context, name string) (store.CachedToken, error) {
	var (
		t   store.CachedToken
		exp int64
	)
	err := d.stmts.QueryRowContext(ctx, `SELECT value, expires_at, fence FROM tokens WHERE name = ?1`, name).
		Scan(&t.Value, &exp, &t.Fence)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.CachedToken{}, fmt.Errorf("sqlite: get token: %w", err)
	}
	t.ExpiresAt = fromNS(exp)
	return t, nil
}

// SetToken stores t unless the stored token has a higher Fence. Errors:
// store.ErrStale in that case; the driver's. Both wrapped with "sqlite: set
// token".
func (d *DB) SetToken(ctx context.Context, name string, t store.CachedToken) error {
	res, err := d.wstmts.ExecContext(ctx, `INSERT INTO tokens (name, value, expires_at, fence) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
			fence = excluded.fence
		WHERE tokens.fence <= excluded.fence`, name, nonNilBytes(t.Value), ns(t.ExpiresAt), t.Fence)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = store.ErrStale
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite: set token: %w", err)
	}
	return nil
}
