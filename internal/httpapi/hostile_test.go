package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/wechat"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// segments splits a compact JWT and decodes its header and claims.
func segments(t *testing.T, jwt string) (header, claims map[string]any, sig string) {
	t.Helper()
	p := strings.Split(jwt, ".")
	if len(p) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(p[0])
	cb, _ := base64.RawURLEncoding.DecodeString(p[1])
	json.Unmarshal(hb, &header)
	json.Unmarshal(cb, &claims)
	return header, claims, p[2]
}

func encodeSeg(v any) string {
	b, _ := json.Marshal(v)
	return b64(b)
}

func hs256(key []byte, signingInput string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signingInput))
	return b64(m.Sum(nil))
}

// TestHostileTokens: every token of the sessions issue's list gets 401 from
// both /me and /verify.
func TestHostileTokens(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	resp, _ := h.login(c, wechat.ScopeBase, "oWXEMU_bob", "allow")
	good := fragment(t, resp).Get("access_token")
	header, claims, sig := segments(t, good)
	parts := strings.Split(good, ".")

	// The public key in the forms an attacker could feed to HS256.
	_, jwks := c.do("GET", h.svc.URL+"/.well-known/jwks.json", "")
	var set struct{ Keys []map[string]any }
	json.Unmarshal([]byte(jwks), &set)
	var jwk map[string]any
	for _, k := range set.Keys {
		if k["kid"] == header["kid"] {
			jwk = k
		}
	}
	if jwk == nil {
		t.Fatalf("kid %v not in JWKS %s", header["kid"], jwks)
	}
	xb, _ := base64.RawURLEncoding.DecodeString(jwk["x"].(string))
	yb, _ := base64.RawURLEncoding.DecodeString(jwk["y"].(string))
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xb...), yb...))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkBytes, _ := json.Marshal(jwk)

	with := func(hdr map[string]any, cl map[string]any) string {
		return encodeSeg(hdr) + "." + encodeSeg(cl)
	}
	copyMap := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range m {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	hsHeader := copyMap(header, "alg", "HS256")
	flipped := []byte(sig)
	if flipped[5] == 'A' {
		flipped[5] = 'B'
	} else {
		flipped[5] = 'A'
	}

	cases := map[string]string{
		"AlgNone":            with(copyMap(header, "alg", "none"), claims) + ".",
		"AlgNoneSigned":      with(copyMap(header, "alg", "none"), claims) + "." + sig,
		"HS256PublicPEM":     with(hsHeader, claims) + "." + hs256(pemKey, with(hsHeader, claims)),
		"HS256PublicDER":     with(hsHeader, claims) + "." + hs256(der, with(hsHeader, claims)),
		"HS256PublicJWK":     with(hsHeader, claims) + "." + hs256(jwkBytes, with(hsHeader, claims)),
		"FlippedSignature":   parts[0] + "." + parts[1] + "." + string(flipped),
		"TamperedSub":        parts[0] + "." + encodeSeg(copyMap(claims, "sub", "u_someoneelse000000000")) + "." + sig,
		"TamperedExp":        parts[0] + "." + encodeSeg(copyMap(claims, "exp", time.Now().Add(240*time.Hour).Unix())) + "." + sig,
		"UnknownKid":         encodeSeg(copyMap(header, "kid", "nosuchkid0000000")) + "." + parts[1] + "." + sig,
		"PathKid":            encodeSeg(copyMap(header, "kid", "../../../../dev/null")) + "." + parts[1] + "." + sig,
		"NoKid":              encodeSeg(copyMap(header, "kid", nil)) + "." + parts[1] + "." + sig,
		"NotAJWT":            "thisisnotreallyajwt",
		"BearerInToken":      "bearer " + good,
		"ExtraDots":          good + "..",
		"FourthSegment":      good + "." + sig,
		"EmptySignature":     parts[0] + "." + parts[1] + ".",
		"AudNumber":          parts[0] + "." + encodeSeg(copyMap(claims, "aud", 12345)) + "." + sig,
		"Empty":              "",
		"LeadingSpace":       " " + good,
		"HugeToken":          strings.Repeat("a", 20000) + "." + parts[1] + "." + sig,
		"NonBase64Signature": parts[0] + "." + parts[1] + ".!!!!",
	}
	check := func(t *testing.T, name, tok string) {
		t.Helper()
		for _, path := range []string{"/me", "/verify"} {
			req, _ := http.NewRequest("GET", h.svc.URL+path, nil)
			req.Header["Authorization"] = []string{"Bearer " + tok}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s on %s: %d, want 401", name, path, resp.StatusCode)
			}
			if resp.Header.Get("X-Auth-Request-User") != "" {
				t.Errorf("%s on %s leaked a user header", name, path)
			}
		}
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) { check(t, name, tok) })
	}
	// The good token still passes (the cases above did not poison a cache).
	if resp, _ := c.do("GET", h.svc.URL+"/verify", "", "Authorization", "Bearer "+good); resp.StatusCode != http.StatusOK {
		t.Fatalf("good token: %d", resp.StatusCode)
	}

	t.Run("Expired", func(t *testing.T) {
		h.clock.Advance(15*time.Minute + 61*time.Second)
		defer h.clock.Advance(-(15*time.Minute + 61*time.Second))
		check(t, "Expired", good)
	})
	t.Run("NotYetValid", func(t *testing.T) {
		h.clock.Advance(time.Hour)
		c2 := newClient(t)
		resp, _ := h.login(c2, wechat.ScopeBase, "oWXEMU_bob", "allow")
		future := fragment(t, resp).Get("access_token")
		h.clock.Advance(-time.Hour)
		check(t, "NotYetValid", future)
	})
}
