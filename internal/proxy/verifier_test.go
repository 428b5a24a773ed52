package proxy

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store/memory"
)

// TestSessionVerifier: a user's session JWT is not a client's credential,
// and a token that does not verify is refused with the session's error.
// (Tokens of the client_credentials grant are issued by the token endpoint,
// which carries client_id == sub.)
func TestSessionVerifier(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	t.Cleanup(func() { st.Close() })
	box, err := secret.NewBox(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(ctx, session.Config{Issuer: "https://auth.example.com", Box: box},
		session.Stores{Keys: st, RefreshTokens: st, Records: st, Users: st})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := m.Issue(ctx, session.Subject{UserID: "u_1", OpenID: "o_1", AppID: testAppID, Scope: "snsapi_base"})
	if err != nil {
		t.Fatal(err)
	}
	v := SessionVerifier(m)
	if id, err := v.VerifyClientToken(ctx, toks.AccessToken); !errors.Is(err, ErrNotClientToken) || id != "" {
		t.Fatalf("a user's session JWT: %q %v, want ErrNotClientToken", id, err)
	}
	if _, err := v.VerifyClientToken(ctx, toks.AccessToken[:len(toks.AccessToken)-2]+"xx"); !errors.Is(err, session.ErrInvalidToken) {
		t.Fatalf("a tampered JWT: %v, want session.ErrInvalidToken", err)
	}
}
