package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"

	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store/memory"
)

// TestAPI verifies a token issued by wxauth's session manager through the
// JWKS it publishes, the way a downstream service does.
func TestAPI(t *testing.T) {
	ctx := context.Background()
	mem := memory.New(time.Now)
	defer mem.Close()
	box, _ := secret.NewBox(make([]byte, 32))
	m, err := session.NewManager(ctx, session.Config{Issuer: "https://auth.example.com", Audience: "wxauth", Box: box},
		session.Stores{Keys: mem, RefreshTokens: mem, Records: mem, Users: mem})
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(m.JWKS()) }))
	defer jwks.Close()
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{jwks.URL})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Issue(ctx, session.Subject{UserID: "u_test", OpenID: "oWXEMU_alice", AppID: "wx0123456789abcdef", Scope: "snsapi_base"})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		api    http.Handler
		token  string
		status int
	}{
		"Valid":         {newAPI(kf.Keyfunc, "https://auth.example.com", "wxauth"), tok.AccessToken, http.StatusOK},
		"WrongIssuer":   {newAPI(kf.Keyfunc, "https://other.example.com", "wxauth"), tok.AccessToken, http.StatusUnauthorized},
		"WrongAudience": {newAPI(kf.Keyfunc, "https://auth.example.com", "other"), tok.AccessToken, http.StatusUnauthorized},
		"Tampered":      {newAPI(kf.Keyfunc, "https://auth.example.com", "wxauth"), tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA", http.StatusUnauthorized},
		"NoToken":       {newAPI(kf.Keyfunc, "https://auth.example.com", "wxauth"), "", http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/hello", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			tc.api.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("%d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
		})
	}
}
