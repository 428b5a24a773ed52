package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// postForm serves one POST of form to target through handler, with HTTP
// Basic credentials when user is set, and fails unless the status is want.
func postForm(b *testing.B, handler http.Handler, target, form, user, pass string, want int) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("POST %s: %d, want %d: %s", target, rec.Code, want, rec.Body)
	}
	return rec
}

// jsonString returns the string value of field in the flat JSON object
// body (no escapes inside, as in token responses), or "".
func jsonString(body, field string) string {
	_, rest, ok := strings.Cut(body, `"`+field+`":"`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// BenchmarkAuthorize is the OpenID Provider's authorization endpoint (GET
// /login with client_id, PKCE S256, inside WeChat): client and exact
// redirect_uri checks, the request's state record, the state cookie and
// the 302 to WeChat's authorize URL.
func BenchmarkAuthorize(b *testing.B) {
	h, handler := benchHandler(b)
	benchToWeChat(b, handler, strings.TrimPrefix(h.authorizeURL("page", "openid", nil), h.svc.URL))
}

// BenchmarkToken_RefreshGrant is POST /oauth/token with
// grant_type=refresh_token for a public client (in-memory stores): the
// client's family record, the rotation of the refresh token, a new access
// JWT and ID token (ES256). Each iteration redeems the refresh token the
// previous one received, as a page renewing its tokens does.
func BenchmarkToken_RefreshGrant(b *testing.B) {
	h, handler := benchHandler(b)
	c := newClient(b)
	rt := h.offlineTokens(c)["refresh_token"].(string)
	form := func(rt string) string {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"page"}}.Encode()
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := postForm(b, handler, "/oauth/token", form(rt), "", "", http.StatusOK)
		body := rec.Body.String()
		if rt = jsonString(body, "refresh_token"); rt == "" || jsonString(body, "id_token") == "" {
			b.Fatalf("refresh grant answered %s", body)
		}
	}
}

// BenchmarkToken_ClientCredentials is POST /oauth/token with
// grant_type=client_credentials and client_secret_basic: the client's
// secret checked, an access JWT (ES256) for the client itself.
func BenchmarkToken_ClientCredentials(b *testing.B) {
	_, handler := benchHandler(b)
	const form = "grant_type=client_credentials"
	rec := postForm(b, handler, "/oauth/token", form, "rsa", testClientSecret, http.StatusOK)
	if jsonString(rec.Body.String(), "access_token") == "" {
		b.Fatalf("client_credentials answered %s", rec.Body)
	}
	postForm(b, handler, "/oauth/token", form, "rsa", testClientSecret+"x", http.StatusUnauthorized)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("rsa", testClientSecret)
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("client_credentials: %d %s", rec.Code, rec.Body)
				return
			}
		}
	})
}
