package session

import (
	"context"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestManager_ExtraAlgs: a key per algorithm; SignJWT signs with the asked
// one; rotating the access-token key keeps the ID-token key of another
// algorithm, and rotation rotates both.
func TestManager_ExtraAlgs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256", func(c *Config) { c.ExtraAlgs = []string{"RS256", "ES256"} })
	if got := e.m.Algs(); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("Algs %v", got)
	}
	algsOf := func() []string {
		var out []string
		for _, k := range jwksOf(t, e.m).Keys {
			out = append(out, k["alg"])
		}
		slices.Sort(out)
		return out
	}
	if got := algsOf(); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("JWKS algs %v", got)
	}
	for _, alg := range []string{"", "ES256", "RS256"} {
		raw, err := e.m.SignJWT(alg, jwt.RegisteredClaims{Subject: "x"})
		if err != nil {
			t.Fatalf("SignJWT(%q): %v", alg, err)
		}
		var c jwt.RegisteredClaims
		if err := e.m.ParseJWT(raw, &c); err != nil || c.Subject != "x" {
			t.Fatalf("ParseJWT of %q: %v", alg, err)
		}
		want := alg
		if want == "" {
			want = "ES256"
		}
		tok, _, _ := jwt.NewParser().ParseUnverified(raw, &jwt.RegisteredClaims{})
		if tok.Method.Alg() != want {
			t.Errorf("SignJWT(%q) signed with %s", alg, tok.Method.Alg())
		}
	}
	if _, err := e.m.SignJWT("EdDSA", jwt.RegisteredClaims{}); err == nil {
		t.Error("SignJWT with an algorithm without a key")
	}
	// Access tokens stay on Config.Alg.
	tk, err := e.m.Issue(ctx, Subject{UserID: testUser.ID, OpenID: testUser.OpenID, AppID: testUser.AppID, ClientID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if tok, _, _ := jwt.NewParser().ParseUnverified(tk.AccessToken, &Claims{}); tok.Method.Alg() != "ES256" || tk.Claims.ClientID != "c1" {
		t.Errorf("access token alg %s client %q", tok.Method.Alg(), tk.Claims.ClientID)
	}
	if _, err := e.m.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if got := algsOf(); !slices.Equal(got, []string{"ES256", "ES256", "RS256", "RS256"}) {
		t.Errorf("JWKS after rotation %v, want two keys of each", got)
	}
	// The current RS256 key keeps signing until the new one takes over.
	if _, err := e.m.SignJWT("RS256", jwt.RegisteredClaims{}); err != nil {
		t.Errorf("RS256 after rotation: %v", err)
	}
}

// TestManager_IssueClient: a client_credentials token names the client,
// no openid, and verifies.
func TestManager_IssueClient(t *testing.T) {
	e := newEnv(t, "ES256")
	tk, err := e.m.IssueClient(context.Background(), "backend", "wxappid", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.m.Verify(context.Background(), tk.AccessToken)
	if err != nil || c.Subject != "backend" || c.ClientID != "backend" || c.OpenID != "" || tk.RefreshToken != "" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := e.m.IssueClient(context.Background(), "", "", ""); err == nil {
		t.Error("empty client id accepted")
	}
}

// TestManager_IssueAccess: an access JWT without a stored refresh token,
// revocable by its sid.
func TestManager_IssueAccess(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "ES256")
	tk, err := e.m.IssueAccess(ctx, Subject{UserID: testUser.ID, OpenID: testUser.OpenID, AppID: testUser.AppID, ClientID: "c1"})
	if err != nil || tk.RefreshToken != "" {
		t.Fatalf("%+v %v", tk, err)
	}
	if c, err := e.m.Verify(ctx, tk.AccessToken); err != nil || c.ClientID != "c1" || c.SessionID != tk.SessionID {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if err := e.m.RevokeSession(ctx, tk.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Verify(ctx, tk.AccessToken); err == nil {
		t.Error("revoked token verifies")
	}
	if _, err := e.m.IssueAccess(ctx, Subject{UserID: "u"}); err == nil {
		t.Error("incomplete subject accepted")
	}
}
