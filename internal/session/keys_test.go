package session

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/internal/store"
)

type jwksDoc struct {
	Keys []map[string]string `json:"keys"`
}

func jwksOf(tb testing.TB, m *Manager) jwksDoc {
	tb.Helper()
	var d jwksDoc
	if err := json.Unmarshal(m.JWKS(), &d); err != nil {
		tb.Fatalf("JWKS is not JSON: %v", err)
	}
	return d
}

func kids(d jwksDoc) []string {
	var out []string
	for _, k := range d.Keys {
		out = append(out, k["kid"])
	}
	return out
}

func TestManager_JWKS(t *testing.T) {
	want := map[string]map[string]int{ // alg -> field -> decoded length (0: any)
		"ES256": {"kty": 0, "crv": 0, "x": 32, "y": 32},
		"RS256": {"kty": 0, "n": 256, "e": 3},
		"EdDSA": {"kty": 0, "crv": 0, "x": 32},
	}
	kty := map[string]string{"ES256": "EC", "RS256": "RSA", "EdDSA": "OKP"}
	crv := map[string]string{"ES256": "P-256", "EdDSA": "Ed25519"}
	for alg, fields := range want {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			d := jwksOf(t, e.m)
			if len(d.Keys) != 1 {
				t.Fatalf("%d keys", len(d.Keys))
			}
			k := d.Keys[0]
			if k["kid"] != e.keys.keys[0].ID || k["alg"] != alg || k["use"] != "sig" || k["kty"] != kty[alg] || k["crv"] != crv[alg] {
				t.Fatalf("jwk %v", k)
			}
			for f, n := range fields {
				v, ok := k[f]
				if !ok {
					t.Fatalf("jwk lacks %s", f)
				}
				if n > 0 {
					b, err := b64dec(v)
					if err != nil || len(b) != n {
						t.Fatalf("jwk %s: %d bytes, %v; want %d", f, len(b), err, n)
					}
				}
			}
			for _, f := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := k[f]; ok {
					t.Fatalf("private member %q published", f)
				}
			}

			// An independent JWKS consumer (keyfunc/v3) verifies our tokens.
			kf, err := keyfunc.NewJWKSetJSON(e.m.JWKS())
			if err != nil {
				t.Fatalf("keyfunc rejects our JWKS: %v", err)
			}
			tok := e.issue(t)
			parsed, err := jwt.Parse(tok.AccessToken, kf.Keyfunc,
				jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(e.clock.Now),
				jwt.WithIssuer(e.cfg.Issuer), jwt.WithAudience("wxauth"), jwt.WithExpirationRequired())
			if err != nil || !parsed.Valid {
				t.Fatalf("independent verification: %v", err)
			}
		})
	}
}

func TestManager_SealedAtRest(t *testing.T) {
	e := newEnv(t, "ES256")
	k := e.keys.keys[0]
	if _, err := x509.ParsePKCS8PrivateKey(k.Private); err == nil {
		t.Fatal("private key stored in the clear")
	}
	if _, err := e.box.Open(k.Private, []byte("signing-key:other")); err == nil {
		t.Fatal("sealed key opens under another kid's aad")
	}
	der, err := e.box.Open(k.Private, []byte("signing-key:"+k.ID))
	if err != nil {
		t.Fatalf("sealed key does not open with aad signing-key:<kid>: %v", err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
		t.Fatalf("not PKCS#8: %v", err)
	}
	if _, err := x509.ParsePKIXPublicKey(k.Public); err != nil {
		t.Fatalf("public not PKIX: %v", err)
	}
}

func TestManager_RotateKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256") // KeyRotation 720h: publication delay 10 min
	oldKid := e.keys.keys[0].ID
	oldTok := e.issue(t)
	other := e.newManager(t) // another instance, reloading on its own

	kid, err := e.m.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kid == oldKid || !validKid(kid) {
		t.Fatalf("new kid %q", kid)
	}
	// Published at once, not yet signing.
	if got := kids(jwksOf(t, e.m)); len(got) != 2 || got[0] != oldKid || got[1] != kid {
		t.Fatalf("JWKS kids %v", got)
	}
	if h := header(t, e.issue(t).AccessToken); h["kid"] != oldKid {
		t.Fatalf("new key signs before its publication delay: %v", h["kid"])
	}
	infos, err := e.m.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if len(infos) != 2 || !infos[0].Active || infos[1].Active {
		t.Fatalf("Keys %+v", infos)
	}
	if !infos[1].SignFrom.Equal(now.Add(10*time.Minute)) || !infos[0].RetiredAt.Equal(infos[1].SignFrom) ||
		!infos[0].RemoveAt.Equal(infos[0].RetiredAt.Add(15*time.Minute+removeMargin)) {
		t.Fatalf("rotation times %+v", infos)
	}
	if err := other.tick(ctx); err != nil { // reload in the other instance
		t.Fatal(err)
	}

	// After the delay the new key signs, in both instances, without a reload.
	e.clock.Advance(10 * time.Minute)
	for _, m := range []*Manager{e.m, other} {
		tok, err := m.Issue(ctx, testSubject())
		if err != nil {
			t.Fatal(err)
		}
		if h := header(t, tok.AccessToken); h["kid"] != kid {
			t.Fatalf("signs with %v after the delay, want %s", h["kid"], kid)
		}
		if _, err := e.m.Verify(ctx, tok.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	// A token of the retired key stays valid until it expires.
	long := validMap(e)
	long["exp"] = e.clock.Now().Add(2 * time.Hour).Unix()
	lastOld := signWith(t, jwt.SigningMethodES256, e.m.current().byID[oldKid].priv, map[string]any{"kid": oldKid}, long)
	if _, err := other.Verify(ctx, lastOld); err != nil {
		t.Fatalf("retired key's token rejected: %v", err)
	}
	if _, err := other.Verify(ctx, oldTok.AccessToken); err != nil {
		t.Fatalf("retired key's first token rejected before exp: %v", err)
	}
	infos, _ = e.m.Keys(ctx)
	if infos[0].Active || !infos[1].Active {
		t.Fatalf("Active after the delay %+v", infos)
	}

	// The retired key leaves the JWKS at RemoveAt, and the store at the next tick.
	e.clock.Advance(15*time.Minute + removeMargin)
	if got := kids(jwksOf(t, e.m)); len(got) != 1 || got[0] != kid {
		t.Fatalf("JWKS kids after RemoveAt %v", got)
	}
	if _, err := other.Verify(ctx, lastOld); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a removed key = %v", err)
	}
	if err := e.m.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.keys.keys) != 1 || e.keys.keys[0].ID != kid {
		t.Fatalf("store keeps %d keys after RemoveAt", len(e.keys.keys))
	}
}

func TestManager_Run_ScheduledRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "EdDSA", func(c *Config) { c.KeyRotation = time.Hour })
	m2 := e.newManager(t)
	if err := e.m.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.keys.keys) != 1 {
		t.Fatalf("rotated early: %d keys", len(e.keys.keys))
	}
	e.clock.Advance(time.Hour)
	// Both instances tick: one rotation only.
	for _, m := range []*Manager{e.m, m2} {
		if err := m.tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.keys.keys) != 2 {
		t.Fatalf("%d keys after scheduled rotation by two instances, want 2", len(e.keys.keys))
	}
	nk := e.keys.keys[1]
	if d := nk.SignFrom.Sub(nk.CreatedAt); d != 6*time.Minute {
		t.Fatalf("publication delay %v, want KeyRotation/10", d)
	}
	if got := kids(jwksOf(t, m2)); len(got) != 2 {
		t.Fatalf("other instance's JWKS %v", got)
	}
}

func TestManager_Run_NoRotationWhenZero(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256", func(c *Config) { c.KeyRotation = 0 })
	e.clock.Advance(1000 * time.Hour)
	if err := e.m.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.keys.keys) != 1 {
		t.Fatalf("KeyRotation 0 rotated: %d keys", len(e.keys.keys))
	}
	// Manual rotation still uses a 10 min publication delay.
	if _, err := e.m.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if d := e.keys.keys[1].SignFrom.Sub(e.keys.keys[1].CreatedAt); d != maxPublishDelay {
		t.Fatalf("delay %v", d)
	}
}

func TestManager_Run_StopsWithContext(t *testing.T) {
	e := newEnv(t, "ES256", func(c *Config) { c.ReloadInterval = time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	cancel()
	<-done
}

func TestManager_RemoveKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	tok := e.issue(t)
	if _, err := e.m.Verify(ctx, tok.AccessToken); err != nil { // now cached
		t.Fatal(err)
	}
	other := e.newManager(t)
	if _, err := other.Verify(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := e.m.RemoveKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RemoveKey(unknown) = %v", err)
	}
	old := e.keys.keys[0].ID
	if err := e.m.RemoveKey(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Verify(ctx, tok.AccessToken); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token of a removed key = %v", err)
	}
	if err := other.tick(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(ctx, tok.AccessToken); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("other instance after reload = %v", err)
	}
	fresh := e.issue(t)
	if h := header(t, fresh.AccessToken); h["kid"] == old {
		t.Fatal("removed key still signs")
	}
	if _, err := other.Verify(ctx, fresh.AccessToken); err != nil {
		t.Fatal(err)
	}
}

func TestManager_HostileStoredKeys(t *testing.T) {
	e := newEnv(t, "ES256")
	good := e.keys.keys[0]
	bad := []store.SigningKey{
		{ID: "../etc/passwd", Alg: "ES256", Public: good.Public, Private: good.Private},
		{ID: "aaaaaaaaaaaaaaa1", Alg: "RS256", Public: good.Public, Private: good.Private}, // alg/key mismatch
		{ID: "aaaaaaaaaaaaaaa2", Alg: "HS256", Public: good.Public},
		{ID: "aaaaaaaaaaaaaaa3", Alg: "ES256", Public: []byte("garbage")},
	}
	e.keys.keys = append(e.keys.keys, bad...)
	m := e.newManager(t)
	if got := kids(jwksOf(t, m)); len(got) != 1 || got[0] != good.ID {
		t.Fatalf("JWKS publishes bad keys: %v", got)
	}
}

func b64dec(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}
