package session

import (
	"context"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// validMap returns claims that Verify accepts when signed by the signing key.
func validMap(e *env) jwt.MapClaims {
	now := e.clock.Now()
	return jwt.MapClaims{
		"iss":    e.cfg.Issuer,
		"aud":    []string{DefaultAudience},
		"sub":    testUser.ID,
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"exp":    now.Add(5 * time.Minute).Unix(),
		"jti":    "jti1",
		"openid": testUser.OpenID,
		"appid":  testUser.AppID,
		"scope":  "snsapi_base",
		"sid":    "sid1",
	}
}

// signWith signs claims with method and key, setting header fields.
func signWith(tb testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.Claims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
			continue
		}
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	if method == jwt.SigningMethodES256 {
		s = normalizeLowS(s)
	}
	return s
}

// TestManager_Verify_HighS: an ES256 token whose S is replaced by n-S
// verifies under plain ECDSA, so it is a second string for one token;
// Verify refuses it, and every token the Manager issues is in low-S form.
func TestManager_Verify_HighS(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	n := elliptic.P256().Params().N
	const tokens = 40
	refused, issuedHigh := 0, 0
	for range tokens {
		tok := e.issue(t)
		dot := strings.LastIndexByte(tok.AccessToken, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok.AccessToken[dot+1:])
		if err != nil || len(sig) != 64 {
			t.Fatalf("signature: %v, %d bytes", err, len(sig))
		}
		if !lowS(sig) {
			issuedHigh++
		}
		if _, err := e.m.Verify(ctx, tok.AccessToken); err != nil {
			t.Fatalf("Verify(issued) = %v", err)
		}
		high := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:]))
		high.FillBytes(sig[32:])
		flipped := tok.AccessToken[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
		if _, err := e.m.Verify(ctx, flipped); errors.Is(err, ErrInvalidToken) {
			refused++
		}
	}
	t.Logf("%d issued ES256 tokens: %d with high S; %d of %d with S replaced by n-S refused", tokens, issuedHigh, refused, tokens)
	if issuedHigh != 0 || refused != tokens {
		t.Fatalf("issued %d high-S tokens (want 0); refused %d of %d flipped (want all)", issuedHigh, refused, tokens)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rawToken assembles a compact token from JSON header and payload and a
// signature.
func rawToken(header, payload string, sig []byte) string {
	return b64([]byte(header)) + "." + b64([]byte(payload)) + "." + b64(sig)
}

func TestManager_Verify(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			k := e.m.current().signer
			kidHdr := map[string]any{"kid": k.id}
			good := signWith(t, k.method, k.priv, kidHdr, validMap(e))
			if _, err := e.m.Verify(ctx, good); err != nil {
				t.Fatalf("control token rejected: %v", err)
			}
			issued := e.issue(t).AccessToken
			parts := strings.Split(issued, ".")

			pubDER, err := x509.MarshalPKIXPublicKey(k.pub)
			if err != nil {
				t.Fatal(err)
			}
			pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

			with := func(f func(jwt.MapClaims)) jwt.MapClaims {
				c := validMap(e)
				f(c)
				return c
			}
			flipSig := func() string {
				sig, err := base64.RawURLEncoding.DecodeString(parts[2])
				if err != nil {
					t.Fatal(err)
				}
				sig[len(sig)/2] ^= 0x01
				return parts[0] + "." + parts[1] + "." + b64(sig)
			}
			tamperClaims := func() string {
				p, err := base64.RawURLEncoding.DecodeString(parts[1])
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(p, &m); err != nil {
					t.Fatal(err)
				}
				m["sub"] = "u_admin"
				p, _ = json.Marshal(m)
				return parts[0] + "." + b64(p) + "." + parts[2]
			}
			_, otherEd, _ := ed25519.GenerateKey(rand.Reader)
			noneTok := signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kidHdr, validMap(e))

			cases := []struct {
				name string
				raw  string
			}{
				{"Empty", ""},
				{"NotAJWT", "thisisnotreallyajwt"},
				{"BearerPrefix", "bearer " + issued},
				{"BearerPrefixCapital", "Bearer " + issued},
				{"TrailingDot", issued + "."},
				{"FourthSegment", issued + ".AAAA"},
				{"ExtraDots", parts[0] + ".." + parts[1] + "." + parts[2]},
				{"EmptySignature", parts[0] + "." + parts[1] + "."},
				{"EmptyHeader", "." + parts[1] + "." + parts[2]},
				{"Whitespace", issued + " "},
				{"Oversized", parts[0] + "." + strings.Repeat("A", maxTokenLen) + "." + parts[2]},
				{"AlgNone", noneTok},
				{"AlgNoneWithSignature", noneTok + "AAAA"},
				{"AlgNoneHandmade", rawToken(`{"alg":"none","typ":"JWT","kid":"`+k.id+`"}`, `{"sub":"u_1"}`, []byte("x"))},
				{"HS256WithPublicKeyPEM", signWith(t, jwt.SigningMethodHS256, pubPEM, kidHdr, validMap(e))},
				{"HS256WithPublicKeyDER", signWith(t, jwt.SigningMethodHS256, pubDER, kidHdr, validMap(e))},
				{"HS256WithPublicJWK", signWith(t, jwt.SigningMethodHS256, k.jwk, kidHdr, validMap(e))},
				{"HS256WithJWKS", signWith(t, jwt.SigningMethodHS256, e.m.JWKS(), kidHdr, validMap(e))},
				{"FlippedSignatureByte", flipSig()},
				{"TamperedClaims", tamperClaims()},
				{"UnknownKid", signWith(t, k.method, k.priv, map[string]any{"kid": "AAAAAAAAAAAAAAAA"}, validMap(e))},
				{"PathInKid", signWith(t, k.method, k.priv, map[string]any{"kid": "../../dev/null"}, validMap(e))},
				{"URLInKid", signWith(t, k.method, k.priv, map[string]any{"kid": "https://evil.example/jwks.json"}, validMap(e))},
				{"NoKid", signWith(t, k.method, k.priv, nil, validMap(e))},
				{"KidNotString", signWith(t, k.method, k.priv, map[string]any{"kid": 7}, validMap(e))},
				{"OtherKeySameKid", signWith(t, jwt.SigningMethodEdDSA, otherEd, kidHdr, validMap(e))},
				{"TypNotJWT", signWith(t, k.method, k.priv, map[string]any{"kid": k.id, "typ": "at+jwt+evil"}, validMap(e))},
				{"CritHeader", signWith(t, k.method, k.priv, map[string]any{"kid": k.id, "crit": []string{"exp"}}, validMap(e))},
				{"AudNumber", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { c["aud"] = 123 }))},
				{"AudOther", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { c["aud"] = "other" }))},
				{"AudMissing", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { delete(c, "aud") }))},
				{"IssOther", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
				{"ExpMissing", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
				{"ExpString", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }))},
				{"Expired", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { c["exp"] = e.clock.Now().Add(-time.Minute).Unix() }))},
				{"NotYetValid", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { c["nbf"] = e.clock.Now().Add(5 * time.Minute).Unix() }))},
				{"SidMissing", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { delete(c, "sid") }))},
				{"SubMissing", signWith(t, k.method, k.priv, kidHdr, with(func(c jwt.MapClaims) { delete(c, "sub") }))},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c, err := e.m.Verify(ctx, tc.raw)
					if !errors.Is(err, ErrInvalidToken) {
						t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", c, err)
					}
					if c != nil {
						t.Fatalf("claims returned with error")
					}
					if tc.raw != "" && strings.Contains(err.Error(), tc.raw) {
						t.Fatalf("error quotes the token: %v", err)
					}
				})
			}
		})
	}
}

func TestManager_Verify_Expiry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	tok := e.issue(t)
	if _, err := e.m.Verify(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	// Within leeway after exp: still accepted (cached and cold alike).
	e.clock.Advance(e.m.cfg.AccessTTL + leeway - time.Second)
	if _, err := e.m.Verify(ctx, tok.AccessToken); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	e.clock.Advance(2 * time.Second)
	_, err := e.m.Verify(ctx, tok.AccessToken)
	if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("expired (cached) = %v, want ErrInvalidToken wrapping jwt.ErrTokenExpired", err)
	}
	// Cold path: a second instance never saw the token.
	_, err = e.newManager(t).Verify(ctx, tok.AccessToken)
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("expired (cold) = %v", err)
	}
}

func TestManager_Verify_NotBeforeLeeway(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	k := e.m.current().signer
	c := validMap(e)
	c["nbf"] = e.clock.Now().Add(leeway - time.Second).Unix()
	if _, err := e.m.Verify(ctx, signWith(t, k.method, k.priv, map[string]any{"kid": k.id}, c)); err != nil {
		t.Fatalf("nbf within leeway rejected: %v", err)
	}
	c["nbf"] = e.clock.Now().Add(leeway + time.Second).Unix()
	if _, err := e.m.Verify(ctx, signWith(t, k.method, k.priv, map[string]any{"kid": k.id}, c)); !errors.Is(err, jwt.ErrTokenNotValidYet) {
		t.Fatalf("nbf past leeway = %v", err)
	}
}

func TestManager_Verify_Revocation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	a, b := e.issue(t), e.issue(t)
	for range 2 { // cold, then warm (cache)
		if _, err := e.m.Verify(ctx, a.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	before := e.records.getCount()
	if _, err := e.m.Verify(ctx, a.AccessToken); err != nil {
		t.Fatal(err)
	}
	if n := e.records.getCount() - before; n != 1 {
		t.Fatalf("warm Verify read the store %d times, want exactly 1 (revocation)", n)
	}

	if err := e.m.Logout(ctx, a.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Verify(ctx, a.AccessToken); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after logout (cached token) = %v, want ErrRevoked", err)
	}
	if _, err := e.newManager(t).Verify(ctx, a.AccessToken); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after logout, other instance = %v, want ErrRevoked", err)
	}
	if _, err := e.m.Verify(ctx, b.AccessToken); err != nil {
		t.Fatalf("other session affected: %v", err)
	}
	if ttl := e.records.puts[revokedPrefix+a.SessionID]; ttl < e.m.cfg.AccessTTL {
		t.Fatalf("revocation kept %v, shorter than AccessTTL", ttl)
	}

	// Store down: fail closed.
	e.records.err = errors.New("redis: connection refused")
	if _, err := e.m.Verify(ctx, b.AccessToken); err == nil || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("store error = %v, want a non-nil store error", err)
	}
}

func TestManager_Verify_ClaimsAreCopies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	tok := e.issue(t)
	c1, err := e.m.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	c1.Subject = "u_admin"
	c2, err := e.m.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Subject != testUser.ID {
		t.Fatalf("cached claims changed by a caller: sub %q", c2.Subject)
	}
}

func TestTokenCache_Bounded(t *testing.T) {
	c := newTokenCache(64)
	now := time.Unix(1000, 0)
	live := &Claims{RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	for i := range 1000 {
		var sum [32]byte
		sum[0], sum[1] = byte(i), byte(i>>8)
		c.put(sum, live, now)
		if c.len() > 64 {
			t.Fatalf("cache holds %d entries, max 64", c.len())
		}
	}
	var last [32]byte
	last[0], last[1] = 999&0xff, 999>>8
	if _, ok := c.get(last, now); !ok {
		t.Fatal("latest entry missing")
	}
	if _, ok := c.get(last, now.Add(2*time.Hour)); ok {
		t.Fatal("expired entry served")
	}
}

func TestWellFormed(t *testing.T) {
	for raw, want := range map[string]bool{
		"a.b.c":         true,
		"a.b.":          false,
		".b.c":          false,
		"a..c":          false,
		"a.b.c.d":       false,
		"a.b":           false,
		"a b.c.d":       false,
		"a.b.c=":        false,
		"a+b.c.d":       false,
		"a.b.c\n":       false,
		"abc":           false,
		"a.b.c\x00":     false,
		"a/b.c.d":       false,
		"A-z_0.9-_.x-Y": true,
	} {
		if got := wellFormed(raw); got != want {
			t.Errorf("wellFormed(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestValidKid(t *testing.T) {
	for kid, want := range map[string]bool{
		"abcDEF012_-":           true,
		"":                      false,
		strings.Repeat("a", 64): true,
		strings.Repeat("a", 65): false,
		"../../dev/null":        false,
		"a b":                   false,
		"kid%2F":                false,
		"é":                     false,
	} {
		if got := validKid(kid); got != want {
			t.Errorf("validKid(%q) = %v, want %v", kid, got, want)
		}
	}
}

// FuzzManager_Verify checks that Verify never panics and accepts nothing
// but the tokens the Manager issued.
func FuzzManager_Verify(f *testing.F) {
	e := newEnv(f, "ES256")
	tok := e.issue(f)
	f.Add(tok.AccessToken)
	f.Add("thisisnotreallyajwt")
	f.Add("bearer " + tok.AccessToken)
	f.Add(tok.AccessToken + ".AAAA")
	f.Add(rawToken(`{"alg":"none","kid":"x"}`, `{"sub":"u_1","sid":"s"}`, nil))
	f.Add(rawToken(`{"alg":"ES256","kid":"../../dev/null"}`, `{"aud":1}`, []byte("sig")))
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := e.m.Verify(context.Background(), raw)
		if err != nil {
			if c != nil {
				t.Fatal("claims with an error")
			}
			return
		}
		if c.ID != tok.Claims.ID || c.Subject != tok.Claims.Subject || c.SessionID != tok.SessionID {
			t.Fatalf("accepted a token never issued: %q", raw)
		}
	})
}

// TestManager_SignJWT_LowS: ID tokens (SignJWT) carry a low S too, like the
// access JWTs: one string per token.
func TestManager_SignJWT_LowS(t *testing.T) {
	e := newEnv(t, "ES256")
	for i := range 40 {
		raw, err := e.m.SignJWT("ES256", jwt.MapClaims{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		sig, err := base64.RawURLEncoding.DecodeString(raw[strings.LastIndexByte(raw, '.')+1:])
		if err != nil || len(sig) != 64 || !lowS(sig) {
			t.Fatalf("ID token %d: a high-S or malformed signature (%v, %d bytes)", i, err, len(sig))
		}
	}
}
