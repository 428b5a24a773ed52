package session

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/internal/store"
)

// algs maps each supported JWS alg to its jwt/v5 method.
var algs = map[string]jwt.SigningMethod{
	"ES256": jwt.SigningMethodES256,
	"RS256": jwt.SigningMethodRS256,
	"EdDSA": jwt.SigningMethodEdDSA,
}

// rsaBits is the modulus size of generated RS256 keys.
const rsaBits = 2048

// kidLen is the length of a generated kid (base62).
const kidLen = 16

// KeyInfo describes a signing key, without key material.
type KeyInfo struct {
	ID        string    // kid
	Alg       string    // ES256, RS256 or EdDSA
	CreatedAt time.Time // published in the JWKS from this time
	SignFrom  time.Time // signs from this time
	RetiredAt time.Time // stops signing at this time; zero while current
	RemoveAt  time.Time // leaves the JWKS at this time; zero while current
	Active    bool      // signs new tokens now
}

// key is a signing key parsed once per process.
type key struct {
	id     string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer    // nil when the sealed private key cannot be opened
	pub    crypto.PublicKey // *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey
	jwk    []byte           // JSON object of the public key
	sealed []byte           // sealed private key as stored, to notice a rewrite
	public []byte           // PKIX DER as stored
	meta   keyTimes
}

// keyTimes are the times of a stored key (see [store.SigningKey]).
type keyTimes struct {
	CreatedAt, SignFrom, RetiredAt, RemoveAt time.Time
}

func timesOf(sk store.SigningKey) keyTimes {
	return keyTimes{sk.CreatedAt, sk.SignFrom, sk.RetiredAt, sk.RemoveAt}
}

func (a keyTimes) equal(b keyTimes) bool {
	return a.CreatedAt.Equal(b.CreatedAt) && a.SignFrom.Equal(b.SignFrom) &&
		a.RetiredAt.Equal(b.RetiredAt) && a.RemoveAt.Equal(b.RemoveAt)
}

// keySet is an immutable view of the keys at a time; it is rebuilt when the
// store changes or when a time boundary (a key starts or stops signing, or
// leaves the JWKS) passes.
type keySet struct {
	all    []*key          // every stored key, oldest first
	byID   map[string]*key // keys in the JWKS: verify tokens
	signer *key            // signs access tokens now (Config.Alg); nil when none can
	// signers holds the newest key of each algorithm that signs now: the
	// ID-token algorithms of Config.ExtraAlgs besides Config.Alg.
	signers map[string]*key
	jwks    []byte      // {"keys":[...]}
	parser  *jwt.Parser // pinned to the algs of byID
	until   time.Time   // rebuild at or after this time; zero = never
}

// build computes the view of keys at now.
func (m *Manager) build(keys []*key, now time.Time) *keySet {
	s := &keySet{all: keys, byID: make(map[string]*key, len(keys)), signers: map[string]*key{}}
	bound := func(t time.Time) {
		if t.After(now) && (s.until.IsZero() || t.Before(s.until)) {
			s.until = t
		}
	}
	var methods []string
	var buf bytes.Buffer
	buf.WriteString(`{"keys":[`)
	for _, k := range keys {
		bound(k.meta.SignFrom)
		bound(k.meta.RetiredAt)
		bound(k.meta.RemoveAt)
		if !k.meta.RemoveAt.IsZero() && !now.Before(k.meta.RemoveAt) {
			continue
		}
		if len(s.byID) > 0 {
			buf.WriteByte(',')
		}
		buf.Write(k.jwk)
		s.byID[k.id] = k
		if !slices.Contains(methods, k.alg) {
			methods = append(methods, k.alg)
		}
		if cur := s.signers[k.alg]; k.priv != nil && k.signs(now) && (cur == nil || !k.meta.SignFrom.Before(cur.meta.SignFrom)) {
			s.signers[k.alg] = k
		}
	}
	buf.WriteString("]}")
	s.signer = s.signers[m.cfg.Alg]
	s.jwks = buf.Bytes()
	s.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(m.cfg.Issuer),
		jwt.WithAudience(m.cfg.Audience),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(m.now),
		jwt.WithStrictDecoding(),
	)
	return s
}

// signs reports whether k is the signing key's candidate at now.
func (k *key) signs(now time.Time) bool {
	return !now.Before(k.meta.SignFrom) && (k.meta.RetiredAt.IsZero() || now.Before(k.meta.RetiredAt))
}

// current returns the key set for now, rebuilding it (without store access)
// when a time boundary has passed.
func (m *Manager) current() *keySet {
	s := m.set.Load()
	if s.until.IsZero() {
		return s
	}
	now := m.now()
	if now.Before(s.until) {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s = m.set.Load()
	if !s.until.IsZero() && !now.Before(s.until) {
		s = m.build(s.all, now)
		m.install(s)
	}
	return s
}

// install makes s the current key set; m.mu must be held. When a key left
// the set, the verified-token cache is cleared, so that no token of that
// key is served from it.
func (m *Manager) install(s *keySet) {
	if old := m.set.Load(); old != nil {
		for id := range old.byID {
			if _, ok := s.byID[id]; !ok {
				m.cache.clear()
				break
			}
		}
	}
	m.set.Store(s)
}

// reload reads every key from the store, parses the new ones, and installs
// the resulting key set. Keys gone from the store leave the set, and the
// verified-token cache forgets their tokens.
func (m *Manager) reload(ctx context.Context) error {
	stored, err := m.st.Keys.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("session: list keys: %w", err)
	}
	keys := make([]*key, 0, len(stored))
	m.parsed.Range(func(id, _ any) bool {
		if !slices.ContainsFunc(stored, func(sk store.SigningKey) bool { return sk.ID == id }) {
			m.parsed.Delete(id)
		}
		return true
	})
	for _, sk := range stored {
		k, err := m.parse(sk)
		if err != nil {
			m.log.ErrorContext(ctx, "unusable signing key skipped", "kid", sk.ID, "err", err)
			continue
		}
		keys = append(keys, k)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.install(m.build(keys, m.now()))
	return nil
}

// parse returns the parsed form of sk, from the process cache when sk is
// unchanged. Errors name the kid, never key material.
func (m *Manager) parse(sk store.SigningKey) (*key, error) {
	meta := timesOf(sk)
	if v, ok := m.parsed.Load(sk.ID); ok {
		k := v.(*key)
		if k.alg == sk.Alg && bytes.Equal(k.sealed, sk.Private) && bytes.Equal(k.public, sk.Public) {
			if k.meta.equal(meta) {
				return k, nil
			}
			c := *k
			c.meta = meta
			m.parsed.Store(sk.ID, &c)
			return &c, nil
		}
	}
	if !validKid(sk.ID) {
		return nil, errors.New("malformed kid")
	}
	method, ok := algs[sk.Alg]
	if !ok {
		return nil, fmt.Errorf("unsupported alg %q", sk.Alg)
	}
	pub, err := x509.ParsePKIXPublicKey(sk.Public)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if !pubMatchesAlg(pub, sk.Alg) {
		return nil, fmt.Errorf("public key type does not match alg %s", sk.Alg)
	}
	k := &key{id: sk.ID, alg: sk.Alg, method: method, pub: pub, sealed: sk.Private, public: sk.Public, meta: meta}
	if k.jwk, err = encodeJWK(sk.ID, sk.Alg, pub); err != nil {
		return nil, err
	}
	if der, err := m.cfg.Box.Open(sk.Private, []byte("signing-key:"+sk.ID)); err == nil {
		if p, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			if signer, ok := p.(crypto.Signer); ok && publicEqual(signer.Public(), pub) {
				k.priv = signer
			}
		}
	}
	if k.priv == nil {
		m.log.Warn("signing key cannot be opened; it verifies only", "kid", sk.ID)
	}
	m.parsed.Store(sk.ID, k)
	return k, nil
}

func pubMatchesAlg(pub crypto.PublicKey, alg string) bool {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return alg == "ES256" && p.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == "RS256" && p.N.BitLen() >= rsaBits
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// validKid reports whether kid matches ^[A-Za-z0-9_-]{1,64}$.
func validKid(kid string) bool {
	if len(kid) == 0 || len(kid) > 64 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		if !isB64URL(kid[i]) {
			return false
		}
	}
	return true
}

// jwk is the JSON shape of one public key in the JWKS (RFC 7517, 7518, 8037).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func encodeJWK(kid, alg string, pub crypto.PublicKey) ([]byte, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	j := jwk{Kid: kid, Use: "sig", Alg: alg}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		e, err := p.ECDH()
		if err != nil {
			return nil, fmt.Errorf("ec public key: %w", err)
		}
		pt := e.Bytes() // 0x04 || X || Y, 32 bytes each
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(pt[1:33]), b64(pt[33:65])
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(p)
	default:
		return nil, fmt.Errorf("unsupported public key %T", pub)
	}
	return json.Marshal(j)
}
