package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/store"
)

// Defaults applied by [NewManager] to zero fields of [Config].
const (
	// DefaultAudience is the JWT "aud" when Config.Audience is empty.
	DefaultAudience = "wxauth"
	// DefaultAlg is the signing algorithm when Config.Alg is empty.
	DefaultAlg = "ES256"
	// DefaultAccessTTL is the access JWT lifetime (15 min).
	DefaultAccessTTL = 15 * time.Minute
	// DefaultRefreshTTL is the absolute life of a login family (30 days).
	DefaultRefreshTTL = 720 * time.Hour
	// DefaultKeyRotation is the default of WXAUTH_KEY_ROTATION (30 days),
	// for the configuration to fill in: a zero Config.KeyRotation means no
	// scheduled rotation.
	DefaultKeyRotation = 720 * time.Hour
	// DefaultReloadInterval is how often Run reloads the key set (1 min).
	DefaultReloadInterval = time.Minute
)

// Margins and sizes, named once.
const (
	// leeway is the clock skew tolerated on nbf and exp by [Manager.Verify].
	leeway = 30 * time.Second
	// removeMargin is added to the access-token lifetime before a retired
	// key leaves the JWKS: it covers the leeway of any verifier (<= 60 s).
	removeMargin = 60 * time.Second
	// maxPublishDelay caps the time between publishing a key and signing
	// with it.
	maxPublishDelay = 10 * time.Minute
	// maxTokenLen bounds the JWT accepted by Verify, in bytes.
	maxTokenLen = 8 << 10
	// refreshTokenBytes is the entropy of an opaque refresh token; its
	// base64url (unpadded) form is refreshTokenLen characters.
	refreshTokenBytes = 32
	refreshTokenLen   = 43
	// revokedPrefix names the Records key of a revoked login family.
	revokedPrefix = string(store.KeyRevoked)
)

// Errors returned by [Manager] methods. They are returned wrapped; compare
// with errors.Is. None of them carries token material.
var (
	// ErrInvalidToken is returned by Verify for any JWT that is malformed,
	// badly signed, signed by an unknown key or algorithm, for another
	// issuer or audience, expired or not yet valid. The jwt/v5 cause
	// (jwt.ErrTokenExpired, ...) is wrapped too.
	ErrInvalidToken = errors.New("session: invalid token")
	// ErrRevoked is returned by Verify when the token's login family was
	// logged out or revoked after refresh-token reuse.
	ErrRevoked = errors.New("session: session revoked")
	// ErrInvalidRefreshToken is returned by Refresh and Logout for a refresh
	// token that is malformed, unknown, expired, or of a revoked family.
	ErrInvalidRefreshToken = errors.New("session: invalid refresh token")
	// ErrRefreshTokenReused is returned by Refresh when the token was already
	// used (outside Config.RefreshGrace); the family and its JWTs are revoked
	// before it returns.
	ErrRefreshTokenReused = errors.New("session: refresh token reused")
	// ErrInvalidSubject is returned by Issue when the Subject lacks UserID,
	// AppID or OpenID.
	ErrInvalidSubject = errors.New("session: incomplete subject")
)

// Config configures a [Manager]. Zero fields take the defaults named below,
// except KeyRotation, where zero means no scheduled rotation.
type Config struct {
	// Issuer is the JWT "iss" (WXAUTH_ISSUER, by default the public URL).
	// Required.
	Issuer string
	// Audience is the JWT "aud" (WXAUTH_AUDIENCE); default "wxauth".
	Audience string
	// Alg is the signing algorithm of new keys (WXAUTH_JWT_ALG): "ES256"
	// (P-256, default), "RS256" (2048-bit) or "EdDSA" (Ed25519).
	Alg string
	// ExtraAlgs are algorithms this manager keeps a signing key of besides
	// Alg, for [Manager.SignJWT] (ID tokens: RS256 is always offered, and a
	// client may ask for another; see clients.Client.IDTokenAlg). Each is
	// "ES256", "RS256" or "EdDSA"; their keys rotate with Alg's. Access
	// tokens are always signed with Alg.
	ExtraAlgs []string
	// AccessTTL is the lifetime of an access JWT; default 15 min.
	AccessTTL time.Duration
	// RefreshTTL is the absolute life of a login family, not extended by
	// refreshing; default 720h (30 days).
	RefreshTTL time.Duration
	// KeyRotation is the age at which [Manager.Run] rotates the signing key
	// (WXAUTH_KEY_ROTATION, whose default is [DefaultKeyRotation]); zero
	// means no scheduled rotation.
	KeyRotation time.Duration
	// RefreshGrace is the window after a refresh token's first use in which
	// presenting it again rotates again (two tabs refreshing at once)
	// instead of counting as reuse; default 0.
	RefreshGrace time.Duration
	// ReloadInterval is how often Run reloads the key set from the store,
	// to learn keys rotated by other instances; default 1 min. Keep it
	// below the publication delay (min(KeyRotation/10, 10 min)).
	ReloadInterval time.Duration
	// VerifyCacheSize bounds the verified-token cache of Verify, in tokens
	// (about 1 KiB each; WXAUTH_VERIFY_CACHE); default 10000. When full,
	// expired entries go first, then arbitrary ones: an evicted token is
	// only verified again (its signature checked), never refused.
	VerifyCacheSize int
	// Box seals private keys at rest (aad "signing-key:"+kid). Required.
	Box *secret.Box
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives key rotation events (kids only, never key material);
	// default discards.
	Logger *slog.Logger
}

// Stores are the stores a [Manager] uses. All four are required.
type Stores struct {
	Keys          store.Keys          // signing keys, shared by all instances
	RefreshTokens store.RefreshTokens // refresh-token families (hashed)
	Records       store.Records       // "revoked:<sid>" records, read by every Verify
	Users         store.Users         // re-read by Refresh for fresh claims
}

// Subject is who a login family belongs to: the wxauth user and the WeChat
// identity used to log in (web authorization or QR login).
type Subject struct {
	UserID  string // store.User.ID, JWT "sub"; required
	OpenID  string // openid under AppID; required
	UnionID string // unionid, empty when unknown
	AppID   string // Official Account appid; required
	// Scope is the granted scope, space-separated: snsapi_base or
	// snsapi_userinfo for a first-party (cookie) login, the OpenID Connect
	// scopes ("openid profile offline_access") for a client's login.
	Scope string
	// ClientID is the OAuth client the tokens are issued to (JWT
	// "client_id"); empty for a first-party login.
	ClientID string
}

// Tokens is what [Manager.Issue] and [Manager.Refresh] hand out.
type Tokens struct {
	AccessToken    string    // compact JWS (JWT)
	ExpiresIn      int       // seconds until AccessToken expires
	RefreshToken   string    // opaque, 43 base64url characters; travels in the wxauth_refresh cookie
	RefreshExpires time.Time // absolute end of the login family
	SessionID      string    // login family id, the JWT "sid"
	Claims         *Claims   // the claims inside AccessToken
}

// Claims are the claims of a wxauth access JWT: iss, aud, sub (User.ID), iat,
// nbf, exp, jti, and the WeChat identity.
type Claims struct {
	jwt.RegisteredClaims        // iss, sub (User.ID), aud (one value, as an array), exp, nbf, iat (seconds), jti
	OpenID               string `json:"openid,omitempty"`    // openid under AppID; absent in client_credentials tokens
	UnionID              string `json:"unionid,omitempty"`   // unionid, absent when unknown
	AppID                string `json:"appid"`               // Official Account appid
	Scope                string `json:"scope"`               // snsapi_base or snsapi_userinfo, granted at login
	SessionID            string `json:"sid"`                 // login family id, the unit of revocation
	ClientID             string `json:"client_id,omitempty"` // OAuth client the token was issued to; absent for first-party logins
}

// Manager issues, refreshes, revokes and verifies sessions, and owns the
// signing keys. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	st     Stores
	now    func() time.Time
	log    *slog.Logger
	delay  time.Duration // publication delay of rotated keys
	set    atomic.Pointer[keySet]
	mu     sync.Mutex // serialises reloads and rebuilds of set
	parsed sync.Map   // kid -> *key, parsed once per process
	cache  *tokenCache
}

// NewManager checks cfg, loads the signing keys from st.Keys (opening each
// private key once) and creates the first key, signing at once, when no key
// of cfg.Alg is active or pending.
//
// Errors: a configuration problem naming the field; a store error (wrapped);
// a failure to open the current signing key (WXAUTH_SECRET_KEY changed
// without WXAUTH_SECRET_KEY_PREVIOUS), which names the kid only.
func NewManager(ctx context.Context, cfg Config, st Stores) (*Manager, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("session: Config.Issuer is required")
	}
	if cfg.Box == nil {
		return nil, errors.New("session: Config.Box is required")
	}
	if st.Keys == nil || st.RefreshTokens == nil || st.Records == nil || st.Users == nil {
		return nil, errors.New("session: Stores.Keys, RefreshTokens, Records and Users are required")
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Alg == "" {
		cfg.Alg = DefaultAlg
	}
	if _, ok := algs[cfg.Alg]; !ok {
		return nil, fmt.Errorf("session: Config.Alg %q: want ES256, RS256 or EdDSA", cfg.Alg)
	}
	for _, a := range cfg.ExtraAlgs {
		if _, ok := algs[a]; !ok {
			return nil, fmt.Errorf("session: Config.ExtraAlgs %q: want ES256, RS256 or EdDSA", a)
		}
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	switch {
	case cfg.AccessTTL < time.Second:
		return nil, errors.New("session: Config.AccessTTL must be at least 1s")
	case cfg.RefreshTTL < cfg.AccessTTL:
		return nil, errors.New("session: Config.RefreshTTL must not be shorter than AccessTTL")
	case cfg.KeyRotation < 0 || cfg.RefreshGrace < 0 || cfg.ReloadInterval < 0:
		return nil, errors.New("session: Config.KeyRotation, RefreshGrace and ReloadInterval must not be negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		cfg:   cfg,
		st:    st,
		now:   cfg.Now,
		log:   cfg.Logger,
		delay: publishDelay(cfg.KeyRotation),
		cache: newTokenCache(cmp.Or(max(cfg.VerifyCacheSize, 0), defaultCacheSize)),
	}
	if err := m.bootstrap(ctx); err != nil {
		return nil, err
	}
	if err := m.reload(ctx); err != nil {
		return nil, err
	}
	s := m.current()
	if s.signer == nil {
		return nil, errors.New("session: no signing key can be opened (WXAUTH_SECRET_KEY changed?)")
	}
	return m, nil
}

// publishDelay is the time between publishing a rotated key in the JWKS and
// signing with it: min(rotation/10, 10 min), or 10 min without scheduled
// rotation, so that JWKS consumers refetching at least that often know the
// key before they meet a token it signed.
func publishDelay(rotation time.Duration) time.Duration {
	if rotation == 0 || rotation/10 > maxPublishDelay {
		return maxPublishDelay
	}
	return rotation / 10
}

// Issue starts a login family for s: a new session id, an access JWT and a
// refresh token valid until now + RefreshTTL (stored hashed).
//
// Errors: [ErrInvalidSubject]; a store error (wrapped); a signing failure.
func (m *Manager) Issue(ctx context.Context, s Subject) (Tokens, error) {
	if s.UserID == "" || s.AppID == "" || s.OpenID == "" {
		return Tokens{}, ErrInvalidSubject
	}
	now := m.now()
	sid, err := randomBase62(22)
	if err != nil {
		return Tokens{}, err
	}
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
	jti, err := randomBase62(22)
	if err != nil {
		return Tokens{}, err
	}
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
	tok := jwt.NewWithClaims(k.method, c)
	tok.Header["kid"] = k.id
	raw, err := tok.SignedString(k.priv)
	if err != nil {
		return Tokens{}, fmt.Errorf("session: sign with key %s: %w", k.id, err)
	}
	if k.alg == "ES256" {
		raw = normalizeLowS(raw)
	}
	return Tokens{
		AccessToken: raw,
		ExpiresIn:   int(exp.Sub(now) / time.Second),
		SessionID:   sid,
		Claims:      c,
	}, nil
}

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
	sid, err := randomBase62(22)
	if err != nil {
		return Tokens{}, err
	}
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
	sid, err := randomBase62(22)
	if err != nil {
		return Tokens{}, err
	}
	now := m.now()
	return m.sign(now, now.Add(m.cfg.AccessTTL), sid, Subject{UserID: clientID, AppID: appID, Scope: scope, ClientID: clientID})
}

// SignJWT signs claims with the current key of alg (one of [Manager.Algs];
// empty means Config.Alg), "kid" in the header. It is how ID tokens are
// signed, per client algorithm.
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
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.id
	raw, err := tok.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("session: sign with key %s: %w", k.id, err)
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

// randomBase62 returns n uniformly random base62 characters
// ([store.RandomBase62]); the error is always nil.
func randomBase62(n int) (string, error) { return store.RandomBase62(n), nil }
