package h5

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// TestNewAPI verifies access tokens through a JWKS the way a downstream
// service does, and refuses every token that is wrong in one way: issuer,
// audience, expiry, signature, or an algorithm outside the pinned list
// (among them "none" and HS256 keyed with the public key, the classic
// algorithm confusion).
func TestNewAPI(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	b64 := base64.RawURLEncoding.EncodeToString
	ecPub, _ := ecKey.PublicKey.Bytes() // 0x04 || X || Y
	pub, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(ecPub[1:33]), "y": b64(ecPub[33:])},
		{"kty": "RSA", "kid": "rsa", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
	}})
	kf, err := keyfunc.NewJWKSetJSON(pub)
	if err != nil {
		t.Fatal(err)
	}
	const iss, aud = "https://auth.example.com", "wxauth"
	api := NewAPI(kf.Keyfunc, iss, aud, "ES256")

	now := time.Now()
	claims := func(edit func(*Claims)) *Claims {
		c := &Claims{
			RegisteredClaims: jwt.RegisteredClaims{Issuer: iss, Audience: jwt.ClaimStrings{aud}, Subject: "u_test",
				IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(15 * time.Minute))},
			OpenID: "oWXEMU_alice", Scope: "openid", ClientID: "h5-demo",
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(method jwt.SigningMethod, kid string, key any, c *Claims) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := sign(jwt.SigningMethodES256, "ec", ecKey, claims(nil))
	spki, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)

	for name, tc := range map[string]struct {
		token  string
		status int
	}{
		"Valid":         {valid, http.StatusOK},
		"WrongIssuer":   {sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c *Claims) { c.Issuer = "https://other.example.com" })), http.StatusUnauthorized},
		"WrongAudience": {sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"h5-demo"} })), http.StatusUnauthorized},
		"Expired":       {sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })), http.StatusUnauthorized},
		"NoExpiry":      {sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c *Claims) { c.ExpiresAt = nil })), http.StatusUnauthorized},
		"NotYetValid":   {sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) })), http.StatusUnauthorized},
		"Tampered":      {valid[:len(valid)-4] + "AAAA", http.StatusUnauthorized},
		"UnpinnedRS256": {sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(nil)), http.StatusUnauthorized},
		"AlgNone":       {sign(jwt.SigningMethodNone, "ec", jwt.UnsafeAllowNoneSignatureType, claims(nil)), http.StatusUnauthorized},
		"HS256Confused": {sign(jwt.SigningMethodHS256, "ec", spki, claims(nil)), http.StatusUnauthorized},
		"UnknownKid":    {sign(jwt.SigningMethodES256, "other", ecKey, claims(nil)), http.StatusUnauthorized},
		"NoToken":       {"", http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api/hello", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("%d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == http.StatusOK && !strings.Contains(rec.Body.String(), `"hello":"oWXEMU_alice"`) {
				t.Errorf("body %s", rec.Body)
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
		})
	}
}

// TestHandler checks that the page includes wxauth.js from wxauth with the
// example's client_id, escaped.
func TestHandler(t *testing.T) {
	h := Handler(`http://127.0.0.1:1"><x`, "")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `<script src="http://127.0.0.1:1&#34;&gt;&lt;x/wxauth.js" data-client-id="h5-demo"`) {
		t.Errorf("%d %s", rec.Code, body)
	}
}
