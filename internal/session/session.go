package session

import (
	"cmp"
	"context"
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

// Claims are the claims of a wxauth access JWT: iss, aud, sub, iat, nbf,
// exp, jti, and the WeChat identity.
type Claims struct {
	jwt.RegisteredClaims        // iss, sub (User.ID; the client_id in client_credentials tokens), aud (one value, as an array), exp, nbf, iat (seconds), jti
	OpenID               string `json:"openid,omitempty"`    // openid under AppID; absent in client_credentials tokens
	UnionID              string `json:"unionid,omitempty"`   // unionid, absent when unknown
	AppID                string `json:"appid"`               // Official Account appid
	Scope                string `json:"scope"`               // space-separated: snsapi_base or snsapi_userinfo for a first-party login, the granted OIDC scopes ("openid profile offline_access") for a client's
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
