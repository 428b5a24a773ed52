package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/internal/store"
)

// Issue starts a login family for s: a new session id, an access JWT and a
// refresh token valid until now + RefreshTTL (stored hashed).
//
// Errors: [ErrInvalidSubject]; a store error (wrapped); a signing failure.
func (m *Manager) Issue(ctx context.Context, s Subject) (Tokens, error) {
	if s.UserID == "" || s.AppID == "" || s.OpenID == "" {
		return Tokens{}, ErrInvalidSubject
	}
	now := m.now()
	sid := store.RandomBase62(22)
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return Tokens{}, err
	}
	expires := now.Add(m.cfg.RefreshTTL)
	t, err := m.sign(now, expires, sid, s)
	if err != nil {
		return Tokens{}, err
	}
	err = m.st.RefreshTokens.CreateRefreshToken(ctx, store.RefreshToken{
		Hash:      hash,
		FamilyID:  sid,
		UserID:    s.UserID,
		Scope:     s.Scope,
		CreatedAt: now,
		ExpiresAt: expires,
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("session: issue: store refresh token: %w", err)
	}
	t.RefreshToken = refresh
	t.RefreshExpires = expires
	return t, nil
}

// sign builds and signs the access JWT of family sid for s at now; its exp
// never passes familyEnd.
func (m *Manager) sign(now, familyEnd time.Time, sid string, s Subject) (Tokens, error) {
	set := m.current()
	k := set.signer
	if k == nil {
		return Tokens{}, errors.New("session: no signing key")
	}
	jti := store.RandomBase62(22)
	now = now.Truncate(time.Second)
	exp := now.Add(m.cfg.AccessTTL)
	if familyEnd.Before(exp) {
		exp = familyEnd.Truncate(time.Second)
	}
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    m.cfg.Issuer,
			Subject:   s.UserID,
			Audience:  jwt.ClaimStrings{m.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		OpenID:    s.OpenID,
		UnionID:   s.UnionID,
		AppID:     s.AppID,
		Scope:     s.Scope,
		SessionID: sid,
		ClientID:  s.ClientID,
	}
	raw, err := k.sign(c)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{
		AccessToken: raw,
		ExpiresIn:   int(exp.Sub(now) / time.Second),
		SessionID:   sid,
		Claims:      c,
	}, nil
}

// IssueAccess starts a login family for s with an access JWT only: no
// refresh token is stored (an OAuth client that was not granted
// offline_access). The family is revocable like any other ([Manager.RevokeSession]
// with Tokens.SessionID).
//
// Errors: [ErrInvalidSubject]; a signing failure.
func (m *Manager) IssueAccess(ctx context.Context, s Subject) (Tokens, error) {
	if s.UserID == "" || s.AppID == "" || s.OpenID == "" {
		return Tokens{}, ErrInvalidSubject
	}
	sid := store.RandomBase62(22)
	now := m.now()
	return m.sign(now, now.Add(m.cfg.RefreshTTL), sid, s)
}

// IssueClient issues an access JWT to an OAuth client for itself (the
// client_credentials grant, RFC 6749 section 4.4): "sub" and "client_id"
// are clientID, no openid, "scope" is scope, and a fresh "sid" makes it
// revocable like any session. No refresh token.
//
// Errors: an empty clientID; a signing failure.
func (m *Manager) IssueClient(ctx context.Context, clientID, appID, scope string) (Tokens, error) {
	if clientID == "" {
		return Tokens{}, ErrInvalidSubject
	}
	sid := store.RandomBase62(22)
	now := m.now()
	return m.sign(now, now.Add(m.cfg.AccessTTL), sid, Subject{UserID: clientID, AppID: appID, Scope: scope, ClientID: clientID})
}

// SignJWT signs claims with the current key of alg (one of [Manager.Algs];
// empty means Config.Alg), "kid" in the header, ES256 with a low S like the
// access JWTs. It is how ID tokens are signed, per client algorithm.
//
// Errors: an algorithm this manager keeps no key of; a signing failure.
func (m *Manager) SignJWT(alg string, claims jwt.Claims) (string, error) {
	if alg == "" {
		alg = m.cfg.Alg
	}
	k := m.current().signers[alg]
	if k == nil {
		return "", fmt.Errorf("session: no signing key of alg %q", alg)
	}
	return k.sign(claims)
}

// sign signs claims with k, "kid" in the header; an ES256 signature is
// normalised to low S, so that a token has one valid string (the verifier
// refuses high S). Errors: the signer's, wrapped with the kid.
func (k *key) sign(claims jwt.Claims) (string, error) {
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.id
	raw, err := tok.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("session: sign with key %s: %w", k.id, err)
	}
	if k.alg == "ES256" {
		raw = normalizeLowS(raw)
	}
	return raw, nil
}

// ParseJWT checks the signature of a JWT signed by one of this manager's
// published keys (each token pinned to its key's own alg) and decodes its
// claims into claims; expiry, issuer and audience are the caller's to
// check. For id_token_hint (RP-Initiated Logout), which may have expired.
//
// Errors: [ErrInvalidToken] wrapping the cause.
func (m *Manager) ParseJWT(raw string, claims jwt.Claims) error {
	if !wellFormed(raw) {
		return fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	set := m.current()
	p := jwt.NewParser(jwt.WithValidMethods(m.algs()), jwt.WithoutClaimsValidation())
	if _, err := p.ParseWithClaims(raw, claims, set.keyfunc); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return nil
}
