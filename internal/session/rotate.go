package session

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

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
	kid := store.RandomBase62(kidLen)
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
// learn it at their next reload (Config.ReloadInterval). The keys of
// Config.ExtraAlgs rotate with it, each in its own store transaction (a
// failure part-way leaves the algorithms before it rotated); kid is the new
// key of Config.Alg.
//
// Errors: a store error (wrapped).
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
	if err := m.tickAlg(ctx, m.cfg.Alg); err != nil {
		return err
	}
	return m.reload(ctx) // once for every algorithm
}

// tickAlg rotates the key of alg when due and drops removed keys.
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
	return nil
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
