package session

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
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

// generate creates a key of alg, sealed for the store. The times are left
// to the caller.
func (m *Manager) generate(alg string) (store.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("unsupported alg %q", alg)
	}
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("session: generate %s key: %w", alg, err)
	}
	kid, err := randomBase62(kidLen)
	if err != nil {
		return store.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("session: marshal private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("session: marshal public key: %w", err)
	}
	return store.SigningKey{
		ID:      kid,
		Alg:     alg,
		Private: m.cfg.Box.Seal(der, []byte("signing-key:"+kid)),
		Public:  pub,
	}, nil
}

// errUnchanged aborts an UpdateKeys whose updater found nothing to do.
var errUnchanged = errors.New("unchanged")

// updateKeys runs update under store.Keys.UpdateKeys; update returns
// errUnchanged to write nothing.
func (m *Manager) updateKeys(ctx context.Context, update func(old []store.SigningKey) ([]store.SigningKey, error)) (changed bool, err error) {
	err = m.st.Keys.UpdateKeys(ctx, update)
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session: update keys: %w", err)
	}
	return true, nil
}

// usable reports whether keys hold a key of alg that signs now or will.
func usable(keys []store.SigningKey, alg string, now time.Time) bool {
	for _, k := range keys {
		if k.Alg == alg && (k.RetiredAt.IsZero() || now.Before(k.RetiredAt)) {
			return true
		}
	}
	return false
}

// bootstrap creates a key of cfg.Alg signing at once when none is active or
// pending (first start, or a changed WXAUTH_JWT_ALG); keys of another alg
// retire at once and stay published for AccessTTL + 60 s.
func (m *Manager) bootstrap(ctx context.Context) error {
	for _, alg := range m.algs() {
		if err := m.bootstrapAlg(ctx, alg); err != nil {
			return err
		}
	}
	return nil
}

// bootstrapAlg creates a key of alg signing at once when none is active or
// pending.
func (m *Manager) bootstrapAlg(ctx context.Context, alg string) error {
	stored, err := m.st.Keys.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("session: list keys: %w", err)
	}
	if usable(stored, alg, m.now()) {
		return nil
	}
	nk, err := m.generate(alg)
	if err != nil {
		return err
	}
	changed, err := m.updateKeys(ctx, func(old []store.SigningKey) ([]store.SigningKey, error) {
		now := m.now()
		if usable(old, alg, now) {
			return nil, errUnchanged // another instance was first
		}
		return m.addKey(old, nk, now, now), nil
	})
	if changed {
		m.log.InfoContext(ctx, "signing key created", "kid", nk.ID, "alg", nk.Alg)
	}
	return err
}

// algs returns Config.Alg followed by the other algorithms of
// Config.ExtraAlgs, without duplicates: the algorithms this manager keeps
// a signing key of.
func (m *Manager) algs() []string {
	out := []string{m.cfg.Alg}
	for _, a := range m.cfg.ExtraAlgs {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// addKey returns old plus nk published at now and signing from signFrom;
// every key of nk's algorithm (or of an algorithm this manager no longer
// keeps) still signing at signFrom retires then and leaves the JWKS
// AccessTTL + 60 s later; keys whose RemoveAt has passed are dropped. Keys
// of the other kept algorithms (Config.ExtraAlgs) stay.
func (m *Manager) addKey(old []store.SigningKey, nk store.SigningKey, now, signFrom time.Time) []store.SigningKey {
	kept := m.algs()
	out := make([]store.SigningKey, 0, len(old)+1)
	for _, k := range old {
		if !k.RemoveAt.IsZero() && !now.Before(k.RemoveAt) {
			continue
		}
		if k.Alg != nk.Alg && slices.Contains(kept, k.Alg) {
			out = append(out, k)
			continue
		}
		if k.RetiredAt.IsZero() || signFrom.Before(k.RetiredAt) {
			k.RetiredAt = signFrom
			k.RemoveAt = signFrom.Add(m.cfg.AccessTTL + removeMargin)
		}
		out = append(out, k)
	}
	nk.CreatedAt, nk.SignFrom, nk.RetiredAt, nk.RemoveAt = now, signFrom, time.Time{}, time.Time{}
	return append(out, nk)
}

// RotateKeys publishes a new key of Config.Alg in the JWKS now; it signs
// after the publication delay, min(KeyRotation/10, 10 min) (10 min when
// KeyRotation is 0), when the current key retires. The delay is never 0,
// even from the CLI: a downstream service caching the JWKS for up to that
// long must know a key before it meets a token signed by it. (To stop
// trusting a compromised key at once, use [Manager.RemoveKey].) The key set
// is reloaded, so this instance signs with the new key on time; the others
// learn it at their next reload (Config.ReloadInterval).
//
// Errors: a store error (wrapped).
//
// The keys of Config.ExtraAlgs rotate with it; kid is the new key of
// Config.Alg.
func (m *Manager) RotateKeys(ctx context.Context) (kid string, err error) {
	for i, alg := range m.algs() {
		nk, err := m.generate(alg)
		if err != nil {
			return "", err
		}
		_, err = m.updateKeys(ctx, func(old []store.SigningKey) ([]store.SigningKey, error) {
			now := m.now()
			return m.addKey(old, nk, now, now.Add(m.delay)), nil
		})
		if err != nil {
			return "", err
		}
		m.log.InfoContext(ctx, "signing key rotated", "kid", nk.ID, "alg", nk.Alg, "sign_from", m.now().Add(m.delay))
		if i == 0 {
			kid = nk.ID
		}
	}
	return kid, m.reload(ctx)
}

// RemoveKey deletes key kid from the store and the JWKS at once: every
// token it signed fails Verify from the next reload on (at once in this
// instance). When kid was signing, a new key of Config.Alg signs at once.
// Meant for a compromised key.
//
// Errors: [store.ErrNotFound] (wrapped) for an unknown kid; a store error
// (wrapped).
func (m *Manager) RemoveKey(ctx context.Context, kid string) error {
	stored, err := m.st.Keys.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("session: list keys: %w", err)
	}
	alg := m.cfg.Alg
	if i := slices.IndexFunc(stored, func(k store.SigningKey) bool { return k.ID == kid }); i >= 0 && slices.Contains(m.algs(), stored[i].Alg) {
		alg = stored[i].Alg
	}
	nk, err := m.generate(alg)
	if err != nil {
		return err
	}
	_, err = m.updateKeys(ctx, func(old []store.SigningKey) ([]store.SigningKey, error) {
		i := slices.IndexFunc(old, func(k store.SigningKey) bool { return k.ID == kid })
		if i < 0 {
			return nil, store.ErrNotFound
		}
		out := slices.Delete(slices.Clone(old), i, i+1)
		now := m.now()
		if !usable(out, alg, now) {
			out = m.addKey(out, nk, now, now)
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	m.log.WarnContext(ctx, "signing key removed", "kid", kid)
	return m.reload(ctx)
}

// Keys lists the stored signing keys, oldest first, without key material;
// Active marks the key that signs now in this instance's view.
//
// Errors: a store error (wrapped).
func (m *Manager) Keys(ctx context.Context) ([]KeyInfo, error) {
	stored, err := m.st.Keys.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("session: list keys: %w", err)
	}
	s := m.current()
	out := make([]KeyInfo, 0, len(stored))
	for _, k := range stored {
		out = append(out, KeyInfo{
			ID:        k.ID,
			Alg:       k.Alg,
			CreatedAt: k.CreatedAt,
			SignFrom:  k.SignFrom,
			RetiredAt: k.RetiredAt,
			RemoveAt:  k.RemoveAt,
			Active:    s.signers[k.Alg] != nil && s.signers[k.Alg].id == k.ID,
		})
	}
	return out, nil
}

// Alg returns the algorithm new tokens are signed with (Config.Alg after
// defaults), for id_token_signing_alg_values_supported in
// /.well-known/openid-configuration.
func (m *Manager) Alg() string {
	return m.cfg.Alg
}

// Algs returns every algorithm this manager signs with: Config.Alg first,
// then Config.ExtraAlgs (id_token_signing_alg_values_supported).
func (m *Manager) Algs() []string {
	return m.algs()
}

// JWKS returns the JSON Web Key Set to serve at /.well-known/jwks.json:
// {"keys":[{"kty","kid","use":"sig","alg", "crv","x","y" (EC P-256) | "n","e"
// (RSA) | "crv":"Ed25519","x" (OKP)}, ...]}, every key published and not yet
// removed, oldest first. The slice is shared: do not modify it.
func (m *Manager) JWKS() []byte {
	return m.current().jwks
}

// Run rotates the signing key when it is older than Config.KeyRotation
// (once across all instances: the check runs inside store.Keys.UpdateKeys),
// deletes keys past their RemoveAt, and reloads the key set every
// Config.ReloadInterval, until ctx ends. Errors are logged and retried at
// the next tick.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.tick(ctx); err != nil && ctx.Err() == nil {
				m.log.ErrorContext(ctx, "signing key maintenance failed", "err", err)
			}
		}
	}
}

// tick is one round of Run.
func (m *Manager) tick(ctx context.Context) error {
	for _, alg := range m.algs()[1:] {
		if err := m.tickAlg(ctx, alg); err != nil {
			return err
		}
	}
	return m.tickAlg(ctx, m.cfg.Alg)
}

// tickAlg rotates the key of alg when due, drops removed keys and reloads.
func (m *Manager) tickAlg(ctx context.Context, alg string) error {
	var nk store.SigningKey
	if m.cfg.KeyRotation > 0 {
		stored, err := m.st.Keys.ListKeys(ctx)
		if err != nil {
			return fmt.Errorf("session: list keys: %w", err)
		}
		if m.rotationDue(stored, alg, m.now()) {
			if nk, err = m.generate(alg); err != nil {
				return err
			}
		}
	}
	changed, err := m.updateKeys(ctx, func(old []store.SigningKey) ([]store.SigningKey, error) {
		now := m.now()
		if nk.ID != "" && m.rotationDue(old, alg, now) {
			return m.addKey(old, nk, now, now.Add(m.delay)), nil
		}
		out := slices.DeleteFunc(slices.Clone(old), func(k store.SigningKey) bool {
			return !k.RemoveAt.IsZero() && !now.Before(k.RemoveAt)
		})
		if len(out) == len(old) {
			return nil, errUnchanged
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	if changed && nk.ID != "" {
		m.log.InfoContext(ctx, "signing key rotated on schedule", "kid", nk.ID, "alg", nk.Alg)
	}
	return m.reload(ctx)
}

// rotationDue reports whether the newest key of alg in keys was published
// KeyRotation ago or more (or there is none).
func (m *Manager) rotationDue(keys []store.SigningKey, alg string, now time.Time) bool {
	var newest time.Time
	for _, k := range keys {
		if k.Alg == alg && k.CreatedAt.After(newest) {
			newest = k.CreatedAt
		}
	}
	return !now.Before(newest.Add(m.cfg.KeyRotation))
}
