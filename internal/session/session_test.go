package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/internal/store"
)

func TestNewManager(t *testing.T) {
	ctx := context.Background()
	base := newEnv(t, "")
	bad := []struct {
		name string
		mod  func(*Config, *Stores)
		want string
	}{
		{"NoIssuer", func(c *Config, _ *Stores) { c.Issuer = "" }, "Issuer"},
		{"NoBox", func(c *Config, _ *Stores) { c.Box = nil }, "Box"},
		{"BadAlg", func(c *Config, _ *Stores) { c.Alg = "HS256" }, "Alg"},
		{"AlgNone", func(c *Config, _ *Stores) { c.Alg = "none" }, "Alg"},
		{"NoKeysStore", func(_ *Config, s *Stores) { s.Keys = nil }, "Stores"},
		{"NoRecords", func(_ *Config, s *Stores) { s.Records = nil }, "Stores"},
		{"NegativeRotation", func(c *Config, _ *Stores) { c.KeyRotation = -time.Hour }, "negative"},
		{"RefreshShorterThanAccess", func(c *Config, _ *Stores) { c.RefreshTTL = time.Minute; c.AccessTTL = time.Hour }, "RefreshTTL"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			cfg, st := base.cfg, base.stores()
			tc.mod(&cfg, &st)
			_, err := NewManager(ctx, cfg, st)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewManager = %v, want an error naming %s", err, tc.want)
			}
		})
	}

	t.Run("FirstKeyCreated", func(t *testing.T) {
		e := newEnv(t, "")
		if len(e.keys.keys) != 1 {
			t.Fatalf("%d keys stored, want 1", len(e.keys.keys))
		}
		k := e.keys.keys[0]
		now := e.clock.Now()
		if k.Alg != "ES256" || len(k.ID) != kidLen || !validKid(k.ID) {
			t.Fatalf("first key %s %q", k.Alg, k.ID)
		}
		if !k.CreatedAt.Equal(now) || !k.SignFrom.Equal(now) || !k.RetiredAt.IsZero() || !k.RemoveAt.IsZero() {
			t.Fatalf("first key times %+v", timesOf(k))
		}
		if e.m.current().signer == nil || e.m.current().signer.id != k.ID {
			t.Fatal("first key does not sign at once")
		}
	})

	t.Run("SecondInstanceReusesKey", func(t *testing.T) {
		e := newEnv(t, "RS256")
		m2 := e.newManager(t)
		if len(e.keys.keys) != 1 {
			t.Fatalf("%d keys after second start, want 1", len(e.keys.keys))
		}
		tok := e.issue(t)
		if _, err := m2.Verify(ctx, tok.AccessToken); err != nil {
			t.Fatalf("other instance rejects: %v", err)
		}
	})

	t.Run("ConcurrentStartCreatesOneKey", func(t *testing.T) {
		e := newEnv(t, "EdDSA")
		e.keys.keys = nil
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := NewManager(ctx, e.cfg, e.stores()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(e.keys.keys) != 1 {
			t.Fatalf("%d keys after concurrent start, want 1", len(e.keys.keys))
		}
	})

	t.Run("AlgChanged", func(t *testing.T) {
		e := newEnv(t, "ES256")
		old := e.issue(t)
		cfg := e.cfg
		cfg.Alg = "EdDSA"
		m2, err := NewManager(ctx, cfg, e.stores())
		if err != nil {
			t.Fatal(err)
		}
		if len(e.keys.keys) != 2 {
			t.Fatalf("%d keys, want 2", len(e.keys.keys))
		}
		if got := m2.current().signer.alg; got != "EdDSA" {
			t.Fatalf("signs with %s, want EdDSA", got)
		}
		if _, err := m2.Verify(ctx, old.AccessToken); err != nil {
			t.Fatalf("ES256 token of the retired key rejected: %v", err)
		}
		tok, err := m2.Issue(ctx, testSubject())
		if err != nil {
			t.Fatal(err)
		}
		if h := header(t, tok.AccessToken); h["alg"] != "EdDSA" {
			t.Fatalf("alg %v", h["alg"])
		}
		// An ES256 header on the EdDSA key's kid is refused though ES256 is
		// still an accepted alg.
		es := e.m.current().signer
		forged := signWith(t, es.method, es.priv, map[string]any{"kid": m2.current().signer.id}, validMap(e))
		if _, err := m2.Verify(ctx, forged); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("alg/kid mismatch = %v", err)
		}
	})

	t.Run("WrongSecretKey", func(t *testing.T) {
		e := newEnv(t, "ES256")
		cfg := e.cfg
		cfg.Box = newBox(t, 9)
		_, err := NewManager(ctx, cfg, e.stores())
		if err == nil || !strings.Contains(err.Error(), "WXAUTH_SECRET_KEY") {
			t.Fatalf("NewManager with another secret key = %v", err)
		}
	})

	t.Run("StoreDown", func(t *testing.T) {
		e := newEnv(t, "ES256")
		e.keys.err = store.ErrUnavailable
		if _, err := NewManager(ctx, e.cfg, e.stores()); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("NewManager = %v, want wrapped ErrUnavailable", err)
		}
	})
}

// header returns the decoded JOSE header of the JWT raw.
func header(tb testing.TB, raw string) map[string]any {
	tb.Helper()
	return segment(tb, raw, 0)
}

// payload returns the decoded claims of the JWT raw.
func payload(tb testing.TB, raw string) map[string]any {
	tb.Helper()
	return segment(tb, raw, 1)
}

// segment decodes part i (0 header, 1 claims) of the JWT raw as JSON.
func segment(tb testing.TB, raw string, i int) map[string]any {
	tb.Helper()
	seg, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[i])
	if err != nil {
		tb.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(seg, &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestManager_Issue(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			now := e.clock.Now()
			s := testSubject()
			s.UnionID = "oUNION1"
			tok, err := e.m.Issue(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			h := header(t, tok.AccessToken)
			if h["alg"] != alg || h["typ"] != "JWT" || h["kid"] != e.keys.keys[0].ID || len(h) != 3 {
				t.Fatalf("header %v", h)
			}
			p := payload(t, tok.AccessToken)
			want := map[string]any{
				"iss": e.cfg.Issuer, "sub": "u_1", "openid": "oOPENID1", "unionid": "oUNION1",
				"appid": testUser.AppID, "scope": "snsapi_base", "sid": tok.SessionID,
				"iat": float64(now.Unix()), "nbf": float64(now.Unix()), "exp": float64(now.Add(15 * time.Minute).Unix()),
			}
			for k, v := range want {
				if p[k] != v {
					t.Errorf("claim %s = %v, want %v", k, p[k], v)
				}
			}
			if aud, _ := p["aud"].([]any); len(aud) != 1 || aud[0] != "wxauth" {
				t.Errorf("aud = %v", p["aud"])
			}
			if jti, _ := p["jti"].(string); len(jti) < 16 {
				t.Errorf("jti = %v", p["jti"])
			}
			if tok.ExpiresIn != 900 {
				t.Errorf("ExpiresIn = %d, want 900", tok.ExpiresIn)
			}
			if len(tok.RefreshToken) != 43 {
				t.Errorf("refresh token has %d chars, want 43", len(tok.RefreshToken))
			}
			if !tok.RefreshExpires.Equal(now.Add(720 * time.Hour)) {
				t.Errorf("RefreshExpires = %v", tok.RefreshExpires)
			}
			c, err := e.m.Verify(ctx, tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if c.SessionID != tok.SessionID || c.UnionID != "oUNION1" || c.Subject != "u_1" || c.ID != tok.Claims.ID {
				t.Errorf("verified claims %+v", c)
			}
			// The refresh token is stored hashed only.
			hash, _ := hashRefreshToken(tok.RefreshToken)
			rt, err := e.refresh.GetRefreshToken(ctx, hash)
			if err != nil {
				t.Fatalf("refresh token not stored under its hash: %v", err)
			}
			if rt.FamilyID != tok.SessionID || rt.UserID != "u_1" || !rt.ExpiresAt.Equal(tok.RefreshExpires) {
				t.Errorf("stored refresh token %+v", rt)
			}
			if _, err := e.refresh.GetRefreshToken(ctx, tok.RefreshToken); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("opaque refresh token stored as a key: %v", err)
			}
		})
	}

	t.Run("UnionIDOmittedWhenUnknown", func(t *testing.T) {
		e := newEnv(t, "ES256")
		if _, ok := payload(t, e.issue(t).AccessToken)["unionid"]; ok {
			t.Fatal("empty unionid present")
		}
	})

	t.Run("UniqueIDs", func(t *testing.T) {
		e := newEnv(t, "ES256")
		a, b := e.issue(t), e.issue(t)
		if a.SessionID == b.SessionID || a.Claims.ID == b.Claims.ID || a.RefreshToken == b.RefreshToken {
			t.Fatal("ids repeat across logins")
		}
	})

	t.Run("ErrInvalidSubject", func(t *testing.T) {
		e := newEnv(t, "ES256")
		for _, s := range []Subject{{}, {UserID: "u_1", AppID: "wx1"}, {UserID: "u_1", OpenID: "o"}, {OpenID: "o", AppID: "wx1"}} {
			if _, err := e.m.Issue(ctx, s); !errors.Is(err, ErrInvalidSubject) {
				t.Errorf("Issue(%+v) = %v", s, err)
			}
		}
	})
}

func TestManager_Refresh(t *testing.T) {
	ctx := context.Background()

	t.Run("Rotates", func(t *testing.T) {
		e := newEnv(t, "ES256")
		first := e.issue(t)
		e.clock.Advance(10 * time.Minute)
		// The user gained a unionid since login.
		u := testUser
		u.UnionID, u.OpenID = "oUNION9", "oOPENID9"
		e.users.set(u)
		next, err := e.m.Refresh(ctx, first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if next.RefreshToken == first.RefreshToken || next.SessionID != first.SessionID {
			t.Fatalf("rotation: same token or new family")
		}
		if !next.RefreshExpires.Equal(first.RefreshExpires) {
			t.Fatalf("rotation moved the family end: %v -> %v", first.RefreshExpires, next.RefreshExpires)
		}
		c, err := e.m.Verify(ctx, next.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if c.UnionID != "oUNION9" || c.OpenID != "oOPENID9" || c.SessionID != first.SessionID || c.Scope != "snsapi_base" {
			t.Fatalf("refreshed claims %+v", c)
		}
		if _, err := e.m.Refresh(ctx, next.RefreshToken); err != nil {
			t.Fatalf("second rotation: %v", err)
		}
	})

	t.Run("ReuseRevokesFamily", func(t *testing.T) {
		e := newEnv(t, "ES256")
		first := e.issue(t)
		other := e.issue(t)
		next, err := e.m.Refresh(ctx, first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		if _, err := e.m.Refresh(ctx, first.RefreshToken); !errors.Is(err, ErrRefreshTokenReused) {
			t.Fatalf("reuse = %v, want ErrRefreshTokenReused", err)
		}
		for _, raw := range []string{first.AccessToken, next.AccessToken} {
			if _, err := e.m.Verify(ctx, raw); !errors.Is(err, ErrRevoked) {
				t.Fatalf("JWT of the reused family = %v, want ErrRevoked", err)
			}
		}
		if _, err := e.m.Refresh(ctx, next.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
			t.Fatalf("newest token of the revoked family = %v, want ErrInvalidRefreshToken", err)
		}
		if _, err := e.m.Verify(ctx, other.AccessToken); err != nil {
			t.Fatalf("other family affected: %v", err)
		}
	})

	t.Run("GraceSameChain", func(t *testing.T) {
		e := newEnv(t, "ES256", func(c *Config) { c.RefreshGrace = 10 * time.Second })
		first := e.issue(t)
		a, err := e.m.Refresh(ctx, first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(5 * time.Second)
		b, err := e.m.Refresh(ctx, first.RefreshToken)
		if err != nil {
			t.Fatalf("reuse within grace = %v", err)
		}
		if a.RefreshToken != b.RefreshToken {
			t.Fatal("two refreshes within grace got two successors: the family forked")
		}
		if _, err := e.m.Refresh(ctx, b.RefreshToken); err != nil {
			t.Fatalf("the one successor = %v", err)
		}
		e.clock.Advance(10 * time.Second)
		if _, err := e.m.Refresh(ctx, first.RefreshToken); !errors.Is(err, ErrRefreshTokenReused) {
			t.Fatalf("reuse after grace = %v", err)
		}
	})

	t.Run("FamilyEnds", func(t *testing.T) {
		e := newEnv(t, "ES256")
		tok := e.issue(t)
		e.clock.Advance(720*time.Hour - 5*time.Minute)
		next, err := e.m.Refresh(ctx, tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if next.ExpiresIn != 300 {
			t.Fatalf("last JWT lives %d s, want 300 (capped at the family end)", next.ExpiresIn)
		}
		e.clock.Advance(5 * time.Minute)
		if _, err := e.m.Refresh(ctx, next.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
			t.Fatalf("after the family end = %v", err)
		}
	})

	t.Run("UserDeleted", func(t *testing.T) {
		e := newEnv(t, "ES256")
		tok := e.issue(t)
		e.users.delete(testUser.ID)
		if _, err := e.m.Refresh(ctx, tok.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
			t.Fatalf("deleted user = %v", err)
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		e := newEnv(t, "ES256")
		tok := e.issue(t)
		for _, raw := range []string{
			"", "x", tok.RefreshToken + "A", tok.RefreshToken[:42], strings.Repeat("A", 43),
			tok.RefreshToken[:42] + "=", tok.RefreshToken[:42] + "/", " " + tok.RefreshToken[1:],
			tok.AccessToken,
		} {
			if _, err := e.m.Refresh(ctx, raw); !errors.Is(err, ErrInvalidRefreshToken) {
				t.Errorf("Refresh(%.10q) = %v", raw, err)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		e := newEnv(t, "ES256")
		tok := e.issue(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, reused := 0, 0
		for range 8 {
			wg.Go(func() {
				_, err := e.m.Refresh(ctx, tok.RefreshToken)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrRefreshTokenReused), errors.Is(err, ErrInvalidRefreshToken):
					reused++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// The test clock does not move: every later caller is within grace
		// 0 of the first use, so each rotates or is refused, never both.
		if ok < 1 || ok+reused != 8 {
			t.Fatalf("ok=%d refused=%d", ok, reused)
		}
	})
}

func TestManager_Logout(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	tok := e.issue(t)
	if err := e.m.Logout(ctx, "not-a-token"); !errors.Is(err, ErrInvalidRefreshToken) {
		t.Fatalf("Logout(malformed) = %v", err)
	}
	unknown, _, _ := newRefreshToken()
	if err := e.m.Logout(ctx, unknown); !errors.Is(err, ErrInvalidRefreshToken) {
		t.Fatalf("Logout(unknown) = %v", err)
	}
	if err := e.m.Logout(ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Refresh(ctx, tok.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
		t.Fatalf("Refresh after logout = %v", err)
	}
	if _, err := e.m.Verify(ctx, tok.AccessToken); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify after logout = %v", err)
	}
	// A second logout finds the family ended (every store's GetRefreshToken
	// answers ErrNotFound for a revoked family): harmless, the JWT stays revoked.
	if err := e.m.Logout(ctx, tok.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
		t.Fatalf("second logout = %v, want ErrInvalidRefreshToken", err)
	}
	if _, err := e.m.Verify(ctx, tok.AccessToken); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify after a second logout = %v", err)
	}
	// The revocation outlives every JWT of the family, then goes.
	e.clock.Advance(e.m.cfg.AccessTTL + leeway)
	if _, err := e.m.Verify(ctx, tok.AccessToken); !errors.Is(err, ErrRevoked) && !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("Verify at exp+leeway = %v", err)
	}
}

func TestManager_RevokeSession(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	tok := e.issue(t)
	if err := e.m.RevokeSession(ctx, ""); err == nil {
		t.Fatal("empty sid accepted")
	}
	if err := e.m.RevokeSession(ctx, "unknown-sid"); err != nil {
		t.Fatalf("unknown sid = %v", err)
	}
	if err := e.m.RevokeSession(ctx, tok.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Verify(ctx, tok.AccessToken); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify = %v", err)
	}
	if _, err := e.m.Refresh(ctx, tok.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
		t.Fatalf("Refresh = %v", err)
	}
	e.records.putFn = func(string) error { return store.ErrUnavailable }
	if err := e.m.RevokeSession(ctx, e.issue(t).SessionID); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("store down = %v", err)
	}
}

func TestRandomBase62(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := store.RandomBase62(kidLen)
		if len(s) != kidLen || !validKid(s) || strings.ContainsAny(s, "-_") || seen[s] {
			t.Fatalf("store.RandomBase62 = %q, not a kid", s)
		}
		seen[s] = true
	}
}
