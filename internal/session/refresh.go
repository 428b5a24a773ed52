package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/wxauth/wxauth/internal/store"
)

// Refresh rotates refreshToken: it returns a new refresh token of the same
// family (same absolute expiry) and a new access JWT whose claims come from
// the user as stored now (openid and unionid may have changed since login).
// A token presented again within Config.RefreshGrace of its first use
// gets the same successor (the family never forks into two chains); the
// rotation's time is read inside the store's transaction.
//
// Errors: [ErrInvalidRefreshToken] for a malformed, unknown, expired or
// revoked token, or a deleted user; [ErrRefreshTokenReused] when the token
// was used before (the family and its JWTs are then revoked); a store error
// (wrapped).
func (m *Manager) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	return m.RefreshWith(ctx, refreshToken, nil)
}

// RefreshWith is [Manager.Refresh] for an OAuth client: check, when not
// nil, sees the stored token before it rotates and returns the client_id
// of the next access JWT, or an error that stops the refresh (returned as
// is, nothing rotated: a refresh token presented by the wrong client).
func (m *Manager) RefreshWith(ctx context.Context, refreshToken string, check func(old store.RefreshToken) (clientID string, err error)) (Tokens, error) {
	hash, ok := hashRefreshToken(refreshToken)
	if !ok {
		return Tokens{}, ErrInvalidRefreshToken
	}
	now := m.now()
	old, err := m.st.RefreshTokens.GetRefreshToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Tokens{}, ErrInvalidRefreshToken
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("session: refresh: get token: %w", err)
	}
	if !now.Before(old.ExpiresAt) {
		return Tokens{}, ErrInvalidRefreshToken
	}
	var clientID string
	if check != nil {
		if clientID, err = check(old); err != nil {
			return Tokens{}, err
		}
	}
	u, err := m.st.Users.GetUser(ctx, old.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return Tokens{}, ErrInvalidRefreshToken
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("session: refresh: get user: %w", err)
	}
	next, nextHash := m.successor(refreshToken)
	_, err = m.st.RefreshTokens.RotateRefreshToken(ctx, hash, store.RefreshToken{
		Hash:      nextHash,
		FamilyID:  old.FamilyID,
		UserID:    old.UserID,
		Scope:     old.Scope,
		CreatedAt: now,
		ExpiresAt: old.ExpiresAt,
	}, m.now(), m.cfg.RefreshGrace)
	switch {
	case errors.Is(err, store.ErrReused):
		if rerr := m.revokeJWTs(ctx, old.FamilyID); rerr != nil {
			return Tokens{}, fmt.Errorf("%w; revoking its JWTs failed: %w", ErrRefreshTokenReused, rerr)
		}
		m.log.WarnContext(ctx, "refresh token reused; session revoked", "sid", old.FamilyID, "user", old.UserID)
		return Tokens{}, ErrRefreshTokenReused
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAlreadyExists):
		// ErrAlreadyExists: rotated within grace into another successor
		// (under a previous WXAUTH_SECRET_KEY); the chain is not forked.
		return Tokens{}, ErrInvalidRefreshToken
	case err != nil:
		return Tokens{}, fmt.Errorf("session: refresh: rotate: %w", err)
	}
	t, err := m.sign(now, old.ExpiresAt, old.FamilyID, Subject{
		UserID:   u.ID,
		OpenID:   u.OpenID,
		UnionID:  u.UnionID,
		AppID:    u.AppID,
		Scope:    old.Scope,
		ClientID: clientID,
	})
	if err != nil {
		return Tokens{}, err
	}
	t.RefreshToken = next
	t.RefreshExpires = old.ExpiresAt
	return t, nil
}

// LookupRefresh returns the stored record of refreshToken (used or not) when
// it is live: not expired and its family not revoked.
//
// Errors: [ErrInvalidRefreshToken] for a malformed, unknown, expired or
// revoked token; a store error (wrapped).
func (m *Manager) LookupRefresh(ctx context.Context, refreshToken string) (store.RefreshToken, error) {
	hash, ok := hashRefreshToken(refreshToken)
	if !ok {
		return store.RefreshToken{}, ErrInvalidRefreshToken
	}
	rt, err := m.st.RefreshTokens.GetRefreshToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.RefreshToken{}, ErrInvalidRefreshToken
	}
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("session: lookup refresh token: %w", err)
	}
	if !m.now().Before(rt.ExpiresAt) {
		return store.RefreshToken{}, ErrInvalidRefreshToken
	}
	return rt, nil
}

// Logout ends the login family of refreshToken (used or not): its refresh
// tokens are revoked and its JWTs fail Verify with [ErrRevoked] from now on.
//
// Errors: [ErrInvalidRefreshToken] for a malformed or unknown token (the
// caller clears the cookie anyway); a store error (wrapped).
func (m *Manager) Logout(ctx context.Context, refreshToken string) error {
	hash, ok := hashRefreshToken(refreshToken)
	if !ok {
		return ErrInvalidRefreshToken
	}
	rt, err := m.st.RefreshTokens.GetRefreshToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidRefreshToken
	}
	if err != nil {
		return fmt.Errorf("session: logout: get token: %w", err)
	}
	return m.RevokeSession(ctx, rt.FamilyID)
}

// RevokeSession ends the login family sid (the JWT "sid"): it writes the
// Records entry "revoked:<sid>" for AccessTTL + 60 s, so that every JWT of
// the family fails Verify with [ErrRevoked] in every instance, then revokes
// the family's refresh tokens. Revoking an unknown or revoked family is not
// an error.
//
// Errors: an empty sid; a store error (wrapped).
func (m *Manager) RevokeSession(ctx context.Context, sid string) error {
	if sid == "" {
		return errors.New("session: revoke: empty session id")
	}
	if err := m.revokeJWTs(ctx, sid); err != nil {
		return err
	}
	if err := m.st.RefreshTokens.RevokeFamily(ctx, sid, m.now()); err != nil {
		return fmt.Errorf("session: revoke family: %w", err)
	}
	return nil
}

// revokeJWTs marks sid revoked for as long as any JWT of it can be valid.
func (m *Manager) revokeJWTs(ctx context.Context, sid string) error {
	if err := m.st.Records.Put(ctx, revokedPrefix+sid, []byte{1}, m.cfg.AccessTTL+removeMargin); err != nil {
		return fmt.Errorf("session: revoke: put record: %w", err)
	}
	return nil
}

// newRefreshToken returns a fresh opaque refresh token and its hex SHA-256.
func newRefreshToken() (token, hash string, err error) {
	var b [refreshTokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("session: random: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:]), nil
}

// successor returns the refresh token that refreshToken rotates into, and
// its hex SHA-256: a MAC of the token under the secret key (Box.Sum), so
// that two refreshes with one token within Config.RefreshGrace, on any
// instance, hand out the same successor and the family stays one chain,
// while nobody without the key can compute a successor.
func (m *Manager) successor(refreshToken string) (token, hash string) {
	sum := m.cfg.Box.Sum("refresh-successor", []byte(refreshToken))
	token = base64.RawURLEncoding.EncodeToString(sum[:])
	h := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(h[:])
}

// hashRefreshToken checks the shape of an opaque refresh token and returns
// its hex SHA-256.
func hashRefreshToken(token string) (string, bool) {
	if len(token) != refreshTokenLen {
		return "", false
	}
	for i := 0; i < len(token); i++ {
		if !isB64URL(token[i]) {
			return "", false
		}
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:]), true
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
