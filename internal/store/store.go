// Package store declares what wxauth keeps and the small interfaces over it:
// users, refresh-token families, signing keys, short-lived records (login
// state, callback de-duplication, QR login attempts, revocations), locks with
// fencing, the WeChat credential cache and a publish/subscribe broker.
//
// Implementations live in subpackages named after what they wrap (memory,
// sqlite, postgres, redis); they never import one another, and each asserts at
// compile time which interfaces it implements. cmd/authsvc composes them into
// a [Set]. The contract of every interface is checked by the storetest
// package, run against every implementation.
//
// Errors are the sentinels below, compared with errors.Is (implementations
// wrap them with context). Times are passed in by callers where the contract
// depends on them, so that tests own the clock.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors returned (wrapped) by every implementation.
var (
	// ErrNotFound is returned when the requested item does not exist, or has
	// expired.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists is returned by Create methods when the key is taken.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrReused is returned by RefreshTokens.RotateRefreshToken when the
	// presented refresh token was already used (outside the grace window);
	// the whole family has been revoked before the error is returned.
	ErrReused = errors.New("store: refresh token reused")
	// ErrStale is returned by TokenCache.SetToken when a value with a higher
	// fencing token is already stored: the writer's lease was lost.
	ErrStale = errors.New("store: stale fencing token")
	// ErrUnavailable wraps connection failures to a backing server, so the
	// HTTP layer can answer 503 instead of 500.
	ErrUnavailable = errors.New("store: backend unavailable")
)

// User is a person known to wxauth. Identity is UnionID when WeChat gives
// one, else (AppID, OpenID); ID is the stable subject (JWT "sub") and never
// changes, even when a unionid appears later.
type User struct {
	ID         string   // stable wxauth user id, "u_" + 22 base62 characters
	AppID      string   // the Official Account appid of the latest identity
	OpenID     string   // openid under AppID
	UnionID    string   // unionid, empty when unknown
	Nickname   string   // from sns/userinfo
	HeadImgURL string   // from sns/userinfo; last path segment picks the size
	Sex        int      // 0 unknown, 1 male, 2 female (always 0 since 2021-10-20)
	Province   string   // empty since 2021-10-20
	City       string   // empty since 2021-10-20
	Country    string   // empty since 2021-10-20
	Privilege  []string // sns/userinfo privilege list
	Scope      string   // scope of the latest authorization (snsapi_base or snsapi_userinfo)
	// WebToken is the user's latest web access_token/refresh_token, sealed
	// by the caller (secret.Box); opaque to the store. Nil leaves it as is.
	WebToken []byte
	// ProfileUpdatedAt is when the profile fields above were last fetched
	// from sns/userinfo; zero when never. UpsertUser replaces the profile
	// fields only when this is non-zero.
	ProfileUpdatedAt time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Users keeps users and their WeChat identities.
type Users interface {
	// UpsertUser finds the user by u.UnionID when it is non-empty, else by
	// (u.AppID, u.OpenID); a user found by (AppID, OpenID) without a unionid
	// gains u.UnionID. It creates the user (with a new ID, ignoring u.ID)
	// when none is found, links (AppID, OpenID) to it, and returns the
	// stored user. Profile fields are replaced only when
	// u.ProfileUpdatedAt is non-zero; Scope and WebToken when non-empty.
	UpsertUser(ctx context.Context, u User, now time.Time) (User, error)
	// GetUser returns the user with this ID, or ErrNotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// FindUser returns the user linked to (appID, openID), or ErrNotFound.
	FindUser(ctx context.Context, appID, openID string) (User, error)
}

// RefreshToken is one refresh token of a login family. The opaque token is
// never stored: Hash is its lowercase hex SHA-256.
type RefreshToken struct {
	Hash      string    // hex SHA-256 of the opaque token
	FamilyID  string    // the login (session id, JWT "sid"); shared by every rotation
	UserID    string    // User.ID
	Scope     string    // scope granted at login
	CreatedAt time.Time //
	ExpiresAt time.Time // absolute end of the family; rotation does not extend it
	UsedAt    time.Time // zero until rotated
}

// RefreshTokens keeps refresh-token families with single-use rotation and
// reuse detection.
type RefreshTokens interface {
	// CreateRefreshToken stores t. ErrAlreadyExists if t.Hash is taken.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken atomically marks the token oldHash used and
	// stores next (which must carry the same FamilyID) as its successor,
	// returning the old record. The rotation reads the time once, inside
	// its transaction or lock: at = the later of now and the store's own
	// clock ([RotationTime]); every comparison below uses at, and UsedAt
	// becomes at.
	//
	// Errors: ErrNotFound when oldHash is unknown, expired at at, or its
	// family is revoked; ErrReused when it was already used and grace is 0
	// or at is grace or more after its UsedAt ([UsedOutsideGrace]), in
	// which case the whole family is revoked before returning. So of two
	// concurrent rotations with grace 0 exactly one succeeds, whatever
	// clock readings the callers bring. A token used less than grace
	// before at succeeds again only with the same successor (next.Hash
	// equal to the one stored by its first rotation), storing nothing: the
	// callers end up holding one chain, never two (a fork). With another
	// successor it fails with ErrAlreadyExists, as it does when next.Hash
	// is taken.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, now time.Time, grace time.Duration) (RefreshToken, error)
	// GetRefreshToken returns the record for hash, or ErrNotFound when it
	// is unknown or its family is revoked. Expiry is the caller's to check
	// (ExpiresAt).
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// RevokeFamily revokes every refresh token of familyID. Revoking an
	// unknown or already revoked family is not an error.
	RevokeFamily(ctx context.Context, familyID string, now time.Time) error
}

// SigningKey is a JWT signing key. The private key is sealed by the caller
// (secret.Box) before it reaches the store.
type SigningKey struct {
	ID        string    // kid: base62, no path characters
	Alg       string    // ES256, RS256 or EdDSA
	Private   []byte    // sealed PKCS#8 DER private key
	Public    []byte    // PKIX DER public key
	CreatedAt time.Time // published in the JWKS from this time
	SignFrom  time.Time // first signs at this time (after publication)
	RetiredAt time.Time // stops signing; zero while active
	RemoveAt  time.Time // leaves the JWKS; zero while unknown
}

// Keys keeps the signing keys.
type Keys interface {
	// ListKeys returns every stored key, oldest first.
	ListKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateKeys runs update on the current keys inside one transaction (or
	// under a lock) and stores what it returns; update may be called more
	// than once and must not have side effects. An error from update aborts
	// and is returned as is.
	UpdateKeys(ctx context.Context, update func(old []SigningKey) ([]SigningKey, error)) error
}

// Records keeps short-lived byte values under string keys with a time to
// live: login state, callback de-duplication, QR login attempts, token
// revocations. Keys are namespaced by [KeyPrefix] (keys.go lists them all)
// and must be valid UTF-8 without NUL bytes (PostgreSQL text); values are
// any bytes.
// Expired records behave as absent. A ttl must be positive: a ttl <= 0 is
// an error. Values are copied in and out: callers may reuse their slices.
type Records interface {
	// PutIfAbsent stores val under key for ttl unless a live record exists;
	// it reports whether it stored. Exactly one of many concurrent callers
	// for one key gets true.
	PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Put stores val under key for ttl, replacing any record.
	Put(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Get returns the live value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take atomically returns and deletes the live value of key, or
	// ErrNotFound; of concurrent callers exactly one gets the value.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// RotationTime returns the one time a refresh rotation compares with: the
// later of the caller's now and clock(), read inside the rotation's
// transaction or lock, so that a caller whose reading precedes a concurrent
// winner's UsedAt cannot appear to be earlier than that rotation.
func RotationTime(now time.Time, clock func() time.Time) time.Time {
	if clock != nil {
		if c := clock(); c.After(now) {
			return c
		}
	}
	return now
}

// UsedOutsideGrace reports whether a refresh token used at usedAt (zero:
// never) presented again at at is a reuse: with grace <= 0 any earlier use
// is; otherwise a use grace or more before at. A usedAt after at (another
// instance's clock ahead of this one) counts as no time elapsed.
func UsedOutsideGrace(usedAt, at time.Time, grace time.Duration) bool {
	if usedAt.IsZero() {
		return false
	}
	return grace <= 0 || at.Sub(usedAt) >= grace
}

// Lease is a held lock. Fence increases with every grant of the same lock
// name, so a holder that stalled past its ttl cannot overwrite what a newer
// holder wrote (see TokenCache.SetToken).
type Lease interface {
	// Fence is the fencing token of this grant, > 0.
	Fence() int64
	// Release frees the lock if this lease still holds it; releasing a lost
	// or released lease is not an error.
	Release(ctx context.Context) error
}

// Locker grants named, expiring locks.
type Locker interface {
	// Lock blocks until the lock name is free (or its previous lease has
	// expired) and grants it for ttl, or returns ctx.Err().
	Lock(ctx context.Context, name string, ttl time.Duration) (Lease, error)
}

// CachedToken is a WeChat credential (global access_token, jsapi_ticket)
// in the shared cache. Value is sealed by the caller (secret.Box).
type CachedToken struct {
	Value     []byte    // sealed token
	ExpiresAt time.Time // WeChat's expires_in counted from the fetch
	Fence     int64     // fencing token of the lease under which it was fetched
}

// TokenCache keeps the current WeChat credentials by name
// ("access_token:APPID", "jsapi_ticket:APPID").
type TokenCache interface {
	// GetToken returns the cached token, or ErrNotFound.
	GetToken(ctx context.Context, name string) (CachedToken, error)
	// SetToken stores t unless the stored token has a higher Fence, in
	// which case it returns ErrStale and keeps the stored one.
	SetToken(ctx context.Context, name string, t CachedToken) error
}

// Broker delivers messages to every subscriber of a topic, in this process
// or (Redis) in every instance. Delivery is at most once; a subscriber that
// is not listening misses messages.
type Broker interface {
	// Publish sends payload to the current subscribers of topic.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Subscribe returns a channel of the payloads published to topic from
	// now on; the subscription is ready when Subscribe returns. The channel
	// is closed when ctx ends.
	Subscribe(ctx context.Context, topic string) (<-chan []byte, error)
}

// Set is the composition of stores a running service uses; cmd/authsvc
// fills it from the configuration.
type Set struct {
	Users         Users
	RefreshTokens RefreshTokens
	Keys          Keys
	Records       Records
	Locker        Locker
	TokenCache    TokenCache
	Broker        Broker
	// Ping checks every backing server; nil error means ready. Used by
	// /readyz.
	Ping func(ctx context.Context) error
	// Evictions counts the live records the in-process records dropped
	// before their expiry to stay under their byte limit
	// (WXAUTH_RECORDS_MEMORY_MB), since startup; nil when records are not
	// kept in process memory.
	Evictions func() uint64
	// Close releases every backend, in reverse order of opening.
	Close func() error
}
