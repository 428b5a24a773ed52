package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// userColumns are the users columns scanUser reads, in order.
const userColumns = `id, unionid, appid, openid, nickname, headimgurl, sex, province, city, country,
	privilege, scope, web_token, profile_updated_at, created_at, updated_at`

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanUser reads one row of userColumns; sql.ErrNoRows becomes
// store.ErrNotFound.
func scanUser(r rowScanner) (store.User, error) {
	var (
		u                           store.User
		privilege                   string
		profileAt, created, updated int64
	)
	err := r.Scan(&u.ID, &u.UnionID, &u.AppID, &u.OpenID, &u.Nickname, &u.HeadImgURL, &u.Sex, &u.Province,
		&u.City, &u.Country, &privilege, &u.Scope, &u.WebToken, &profileAt, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, store.ErrNotFound
	}
	if err != nil {
		return store.User{}, err
	}
	if err := json.Unmarshal([]byte(privilege), &u.Privilege); err != nil {
		return store.User{}, fmt.Errorf("privilege column: %w", err)
	}
	if len(u.Privilege) == 0 {
		u.Privilege = nil
	}
	u.ProfileUpdatedAt, u.CreatedAt, u.UpdatedAt = fromNS(profileAt), fromNS(created), fromNS(updated)
	return u, nil
}

// UpsertUser finds the user by u.UnionID, else by (u.AppID, u.OpenID),
// creating it when none is found, links the identity and applies u, all in
// one transaction, as [store.Users] documents. A race with another instance
// creating the same person (unique violation) retries the transaction.
// Errors: the driver's, wrapped with "sqlite: upsert user".
func (d *DB) UpsertUser(ctx context.Context, u store.User, now time.Time) (store.User, error) {
	privilege, err := json.Marshal(nonNil(u.Privilege))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: upsert user: %w", err)
	}
	var out store.User
	err = d.inTx(ctx, func(tx *stmtTx) error {
		id, err := findUserID(ctx, tx, u)
		if err != nil {
			return err
		}
		if id == "" {
			id = store.NewUserID()
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, unionid, appid, openid, created_at, updated_at)
				VALUES (?1, ?2, ?3, ?4, ?5, ?5)`, id, u.UnionID, u.AppID, u.OpenID, ns(now)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO identities (appid, openid, user_id, created_at)
			VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (appid, openid) DO UPDATE SET user_id = excluded.user_id
			WHERE identities.user_id <> excluded.user_id`,
			u.AppID, u.OpenID, id, ns(now)); err != nil {
			return err
		}
		profile := !u.ProfileUpdatedAt.IsZero()
		out, err = scanUser(tx.QueryRowContext(ctx, `UPDATE users SET
				unionid = CASE WHEN unionid = '' THEN ?2 ELSE unionid END,
				appid = ?3, openid = ?4,
				nickname = CASE WHEN ?5 THEN ?6 ELSE nickname END,
				headimgurl = CASE WHEN ?5 THEN ?7 ELSE headimgurl END,
				sex = CASE WHEN ?5 THEN ?8 ELSE sex END,
				province = CASE WHEN ?5 THEN ?9 ELSE province END,
				city = CASE WHEN ?5 THEN ?10 ELSE city END,
				country = CASE WHEN ?5 THEN ?11 ELSE country END,
				privilege = CASE WHEN ?5 THEN ?12 ELSE privilege END,
				profile_updated_at = CASE WHEN ?5 THEN ?13 ELSE profile_updated_at END,
				scope = CASE WHEN ?14 <> '' THEN ?14 ELSE scope END,
				web_token = CASE WHEN ?15 THEN ?16 ELSE web_token END,
				updated_at = ?17
			WHERE id = ?1
			RETURNING `+userColumns,
			id, u.UnionID, u.AppID, u.OpenID, profile, u.Nickname, u.HeadImgURL, u.Sex, u.Province, u.City,
			u.Country, string(privilege), ns(u.ProfileUpdatedAt), u.Scope, u.WebToken != nil, u.WebToken,
			ns(now)))
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: upsert user: %w", err)
	}
	return out, nil
}

// findUserID returns the ID of the user u names (unionid first, then
// appid+openid), or "" when there is none.
func findUserID(ctx context.Context, tx *stmtTx, u store.User) (string, error) {
	var id string
	if u.UnionID != "" {
		err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE unionid = ?1`, u.UnionID).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
	}
	err := tx.QueryRowContext(ctx, `SELECT user_id FROM identities WHERE appid = ?1 AND openid = ?2`,
		u.AppID, u.OpenID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// nonNil returns s, or an empty slice for nil (so it encodes as []).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GetUser returns the user with this ID, or store.ErrNotFound.
func (d *DB) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(d.stmts.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?1`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: get user: %w", err)
	}
	return u, nil
}

// FindUser returns the user linked to (appID, openID), or store.ErrNotFound.
func (d *DB) FindUser(ctx context.Context, appID, openID string) (store.User, error) {
	u, err := scanUser(d.stmts.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE id = (SELECT user_id FROM identities WHERE appid = ?1 AND openid = ?2)`, appID, openID))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: find user: %w", err)
	}
	return u, nil
}
