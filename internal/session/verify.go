package session

import (
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/internal/store"
)

// defaultCacheSize bounds the verified-token cache, in entries (about 1 KiB
// each).
const defaultCacheSize = 10000

// Verify checks an access JWT (compact form, no "Bearer " prefix) and returns
// its claims. It pins the algorithm to those of the published keys and each
// token to its key's own alg, looks the kid up in the in-memory key set only
// (^[A-Za-z0-9_-]{1,64}$; unknown kids are rejected, nothing is fetched),
// requires exp, checks iss, aud, exp and nbf with 30 s leeway, and requires
// sub and sid. A token verified before skips the signature check (a bounded
// cache keyed by its SHA-256, entries dropped at exp), but revocation is read
// from the store on every call: one Records.Get.
//
// The returned Claims is the caller's; its Audience slice is shared and must
// not be modified.
//
// Errors: [ErrInvalidToken] (wrapping the jwt/v5 cause, such as
// jwt.ErrTokenExpired), [ErrRevoked], or a store error (wrapped) when the
// revocation cannot be read (the token is then not accepted).
func (m *Manager) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > maxTokenLen {
		return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	set := m.current()
	sum := sha256.Sum256([]byte(raw))
	c, ok := m.cache.get(sum, m.now())
	if !ok {
		// A cached token passed this check when it was cached.
		if !wellFormed(raw) {
			return nil, fmt.Errorf("%w: malformed", ErrInvalidToken)
		}
		c = &Claims{}
		tok, err := set.parser.ParseWithClaims(raw, c, set.keyfunc)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
		if tok.Method.Alg() == "ES256" && !lowS(tok.Signature) {
			// (r, n-s) verifies as well as (r, s): accepting both would
			// give one token two strings (and two cache entries).
			return nil, fmt.Errorf("%w: ECDSA signature with high S", ErrInvalidToken)
		}
		if c.Subject == "" || c.SessionID == "" {
			return nil, fmt.Errorf("%w: sub or sid missing", ErrInvalidToken)
		}
		m.cache.put(sum, c, m.now())
	}
	_, err := m.st.Records.Get(ctx, revokedPrefix+c.SessionID)
	switch {
	case err == nil:
		return nil, ErrRevoked
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("session: verify: read revocation: %w", err)
	}
	out := *c
	return &out, nil
}

// p256HalfOrder is n/2 for P-256's group order n: an ES256 signature's S
// must not exceed it (the low-S form, as in BIP 62 and RFC 6979 signers).
var p256HalfOrder = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// lowS reports whether sig, an ES256 signature (R || S, 32 bytes each), has
// S <= n/2. Signatures of another length are left to the verifier (which
// refuses them).
func lowS(sig []byte) bool {
	if len(sig) != 64 {
		return true
	}
	return new(big.Int).SetBytes(sig[32:]).Cmp(p256HalfOrder) <= 0
}

// normalizeLowS rewrites the signature of a compact ES256 JWS to its low-S
// form (S replaced by n-S when S > n/2; both verify), which Verify
// requires. crypto/ecdsa signs with either S.
func normalizeLowS(raw string) string {
	dot := strings.LastIndexByte(raw, '.')
	sig, err := base64.RawURLEncoding.DecodeString(raw[dot+1:])
	if err != nil || len(sig) != 64 || lowS(sig) {
		return raw
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:]))
	s.FillBytes(sig[32:])
	return raw[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// wellFormed reports whether raw has the shape of a compact JWS: at most
// maxTokenLen bytes, three non-empty base64url segments.
func wellFormed(raw string) bool {
	if len(raw) > maxTokenLen {
		return false
	}
	dots, seg := 0, 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '.':
			if seg == 0 {
				return false
			}
			dots, seg = dots+1, 0
		case isB64URL(c):
			seg++
		default:
			return false
		}
	}
	return dots == 2 && seg > 0
}

// keyfunc returns the public key of the token's kid, after checking that
// the token's alg is that key's alg and that the header carries no crit
// extension and no typ other than JWT.
func (s *keySet) keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if !validKid(kid) {
		return nil, errors.New("missing or malformed kid")
	}
	k := s.byID[kid]
	if k == nil {
		return nil, errors.New("unknown kid")
	}
	if t.Method.Alg() != k.alg {
		return nil, errors.New("alg does not match the key")
	}
	if typ, ok := t.Header["typ"]; ok {
		if s, _ := typ.(string); !strings.EqualFold(s, "JWT") {
			return nil, errors.New("typ is not JWT")
		}
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("crit header not supported")
	}
	return k.pub, nil
}

// tokenCache remembers verified tokens by the SHA-256 of their compact form
// until they expire. It is bounded: when full, expired entries go first,
// then arbitrary ones.
type tokenCache struct {
	mu  sync.RWMutex
	max int
	m   map[[sha256.Size]byte]*Claims
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[[sha256.Size]byte]*Claims)}
}

// get returns the claims cached under sum if they are unexpired at now.
// (Manager.reload clears the cache when a key leaves the set.)
func (c *tokenCache) get(sum [sha256.Size]byte, now time.Time) (*Claims, bool) {
	c.mu.RLock()
	cl, ok := c.m[sum]
	c.mu.RUnlock()
	if !ok || !now.Before(cl.ExpiresAt.Add(leeway)) {
		return nil, false
	}
	return cl, true
}

func (c *tokenCache) put(sum [sha256.Size]byte, cl *Claims, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if !now.Before(v.ExpiresAt.Add(leeway)) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[sum] = cl
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
