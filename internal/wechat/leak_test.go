package wechat

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/logtest"
)

// TestNoSecretInLogsOrErrors runs every kind of call, successful, refused,
// retried and timed out, with a debug logger, and checks that neither the
// log nor any error string holds the appsecret, a code or a token.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	const code = "CODE_LEAKCHECK_0001"
	var logs logtest.Buffer
	ts := &tokenServer{ticketErr: "TOKEN-1"}
	routes := ts.routes(t)
	routes["/sns/oauth2/access_token"] = sequence(errBody(-1, "system error"), jsonBody(exchangeOK), errBody(CodeCodeUsed, "code been used"))
	routes["/sns/oauth2/refresh_token"] = errBody(CodeRefreshTokenExpired, "refresh_token expired")
	routes["/sns/userinfo"] = errBody(CodeUnauthorized, "api unauthorized")
	routes["/cgi-bin/menu/delete"] = errBody(CodeInvalidCredential, "invalid credential")
	routes["/slow/sns/oauth2/access_token"] = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	f := newFake(t, routes)
	c := newTestClient(t, f)
	c.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := NewTokenManager(c, TokenConfig{Cache: newFakeCache(), Locker: newFakeLocker(), Box: newTestBox(t)})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAPI(c, m)
	ctx := context.Background()
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	tok, err := c.Exchange(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Exchange(ctx, code)
	keep(err)
	_, err = c.Refresh(ctx, tok.RefreshToken)
	keep(err)
	_, err = c.UserInfo(ctx, tok.AccessToken, OpenID(tok), "en")
	keep(err)
	keep(c.CheckToken(ctx, tok.AccessToken, OpenID(tok)))
	_, err = m.JSAPITicket(ctx)
	keep(err)
	keep(a.DeleteMenu(ctx))
	slow := newTestClient(t, f)
	slow.log = c.log
	u := *slow.api
	u.Path = "/slow"
	slow.api = &u
	slow.hc = &http.Client{Timeout: 20 * time.Millisecond}
	_, err = slow.Exchange(ctx, code)
	keep(err)
	if len(errs) < 6 {
		t.Fatalf("only %d errors: %v", len(errs), errs)
	}
	secrets := []string{code, tok.AccessToken, tok.RefreshToken, "TOKEN-1", "TOKEN-2", "TICKET-1"}
	for _, err := range errs {
		assertNoSecret(t, err.Error(), secrets...)
	}
	if logs.String() == "" {
		t.Fatal("nothing logged at debug level")
	}
	assertNoSecret(t, logs.String(), secrets...)
}
