package login

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/wechat"
)

type nopPages struct{}

func (nopPages) Problem(http.ResponseWriter, *http.Request, Problem)    {}
func (nopPages) FromError(context.Context, string, error) Problem       { return Problem{} }
func (nopPages) RedirectRefused(context.Context, string, error) Problem { return Problem{} }

// TestNew refuses a client_id equal to the access tokens' audience and an
// ID-token algorithm the key manager keeps no key of.
func TestNew(t *testing.T) {
	key := make([]byte, 32)
	box, _ := secret.NewBox(key)
	mem := memory.New(nil)
	t.Cleanup(func() { mem.Close() })
	sessions, err := session.NewManager(context.Background(), session.Config{Issuer: "https://auth.example.com", Box: box},
		session.Stores{Keys: mem, RefreshTokens: mem, Records: mem, Users: mem})
	if err != nil {
		t.Fatal(err)
	}
	cookies, _ := session.NewCookies(session.CookieConfig{Keys: [][]byte{key}})
	wx, err := wechat.NewClient(wechat.Config{AppID: "wx0123456789abcdef", AppSecret: "s", Endpoint: wechat.EmulatorEndpoint("http://127.0.0.1:1"),
		HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(cs ...*clients.Client) Config {
		reg, err := clients.New(cs...)
		if err != nil {
			t.Fatal(err)
		}
		return Config{PublicURL: "https://auth.example.com", Issuer: "https://auth.example.com", AppID: "wx0123456789abcdef",
			Audience: "wxauth", Clients: reg, WeChat: wx, Sessions: sessions, Cookies: cookies, Box: box, Users: mem, Records: mem,
			Pages: nopPages{}}
	}
	page := func(id, alg string) *clients.Client {
		return &clients.Client{ID: id, Public: true, RedirectURIs: []string{"https://h5.example.com/"}, IDTokenAlg: alg}
	}
	if _, err := New(cfg(page("page", ""))); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	for name, tc := range map[string]struct {
		c    *clients.Client
		want string
	}{
		"AudienceAsClientID": {page("wxauth", ""), "audience"},
		"AlgWithoutKey":      {page("page", "RS256"), "RS256"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg(tc.c)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
	bad := cfg()
	bad.CodeTTL = 2 * DefaultCodeTTL
	if _, err := New(bad); err == nil {
		t.Error("a code TTL over 60 s accepted")
	}
}
