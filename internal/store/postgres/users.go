package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wxauth/wxauth/internal/store"
)

// userColumns are the users columns scanUser reads, in order.
const userColumns = `id, unionid, appid, openid, nickname, headimgurl, sex, province, city, country,
	privilege, scope, web_token, profile_updated_at, created_at, updated_at`

// scanUser reads one row of userColumns; pgx.ErrNoRows becomes
// store.ErrNotFound.
func scanUser(r pgx.Row) (store.User, error) {
	var (
		u                store.User
		profileAt        *time.Time
		created, updated time.Time
	)
	err := r.Scan(&u.ID, &u.UnionID, &u.AppID, &u.OpenID, &u.Nickname, &u.HeadImgURL, &u.Sex, &u.Province,
		&u.City, &u.Country, &u.Privilege, &u.Scope, &u.WebToken, &profileAt, &created, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, store.ErrNotFound
	}
	if err != nil {
		return store.User{}, err
	}
	if len(u.Privilege) == 0 {
		u.Privilege = nil
	}
	u.ProfileUpdatedAt, u.CreatedAt, u.UpdatedAt = fromNull(profileAt), created.UTC(), updated.UTC()
	return u, nil
}

// UpsertUser finds the user by u.UnionID, else by (u.AppID, u.OpenID),
// creating it when none is found, links the identity and applies u, in one
// transaction, as [store.Users] documents. Concurrent upserts of one new
// person meet on the unique unionid index or the identities primary key;
// the loser runs again and finds the winner's user. Errors: wrapped driver
// errors (store.ErrUnavailable when the server cannot be reached).
func (d *DB) UpsertUser(ctx context.Context, u store.User, now time.Time) (store.User, error) {
	var out store.User
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		id, err := findUserID(ctx, tx, u)
		if err != nil {
			return err
		}
		if id == "" {
			id = store.NewUserID()
			if _, err := tx.Exec(ctx, `INSERT INTO users (id, unionid, appid, openid, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $5)`, id, u.UnionID, u.AppID, u.OpenID, now); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO identities (appid, openid, user_id, created_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT (appid, openid) DO NOTHING`, u.AppID, u.OpenID, id, now)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return lostRace()
			}
		} else if _, err := tx.Exec(ctx, `INSERT INTO identities (appid, openid, user_id, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (appid, openid) DO UPDATE SET user_id = excluded.user_id`,
			u.AppID, u.OpenID, id, now); err != nil {
			return err
		}
		profile := !u.ProfileUpdatedAt.IsZero()
		privilege := u.Privilege
		if privilege == nil {
			privilege = []string{}
		}
		out, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET
				unionid = CASE WHEN unionid = '' THEN $2 ELSE unionid END,
				appid = $3, openid = $4,
				nickname = CASE WHEN $5 THEN $6 ELSE nickname END,
				headimgurl = CASE WHEN $5 THEN $7 ELSE headimgurl END,
				sex = CASE WHEN $5 THEN $8 ELSE sex END,
				province = CASE WHEN $5 THEN $9 ELSE province END,
				city = CASE WHEN $5 THEN $10 ELSE city END,
				country = CASE WHEN $5 THEN $11 ELSE country END,
				privilege = CASE WHEN $5 THEN $12::text[] ELSE privilege END,
				profile_updated_at = CASE WHEN $5 THEN $13 ELSE profile_updated_at END,
				scope = CASE WHEN $14 <> '' THEN $14 ELSE scope END,
				web_token = CASE WHEN $15 THEN $16 ELSE web_token END,
				updated_at = $17
			WHERE id = $1
			RETURNING `+userColumns,
			id, u.UnionID, u.AppID, u.OpenID, profile, u.Nickname, u.HeadImgURL, u.Sex, u.Province, u.City,
			u.Country, privilege, nullTime(u.ProfileUpdatedAt), u.Scope, u.WebToken != nil, u.WebToken, now))
		return err
	})
	if err != nil {
		return store.User{}, wrap("upsert user", err)
	}
	return out, nil
}

// lostRace aborts an upsert transaction that another one overtook (the
// identity appeared meanwhile); as a unique violation, inTx runs it again.
func lostRace() error {
	return &pgconn.PgError{Code: codeUniqueViolation, Message: "identity created concurrently"}
}

// findUserID returns the ID of the user u names (unionid first, then
// appid+openid), or "" when there is none.
func findUserID(ctx context.Context, tx pgx.Tx, u store.User) (string, error) {
	var id string
	if u.UnionID != "" {
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE unionid = $1`, u.UnionID).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return "", err
		}
	}
	err := tx.QueryRow(ctx, `SELECT user_id FROM identities WHERE appid = $1 AND openid = $2`,
		u.AppID, u.OpenID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// GetUser returns the user with this ID, or store.ErrNotFound. Errors:
// wrapped driver errors.
func (d *DB) GetUser(ctx context.Context, id string) (store.User, error) {
	var u store.User
	err := d.pool.with(ctx, func(c *pgx.Conn) (err error) {
		u, err = scanUser(c.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
		return err
	})
	if err != nil {
		return store.User{}, wrap("get user", err)
	}
	return u, nil
}

// FindUser returns the user linked to (appID, openID), or store.ErrNotFound.
// Errors: wrapped driver errors.
func (d *DB) FindUser(ctx context.Context, appID, openID string) (store.User, error) {
	var u store.User
	err := d.pool.with(ctx, func(c *pgx.Conn) (err error) {
		u, err = scanUser(c.QueryRow(ctx, `SELECT `+userColumns+` FROM users
			WHERE id = (SELECT user_id FROM identities WHERE appid = $1 AND openid = $2)`, appID, openID))
		return err
	})
	if err != nil {
		return store.User{}, wrap("find user", err)
	}
	return u, nil
}
