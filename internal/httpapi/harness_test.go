package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/httpapi"
	"github.com/wxauth/wxauth/internal/qrlogin"
	"github.com/wxauth/wxauth/internal/redirect"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/wechat"
	"github.com/wxauth/wxauth/internal/wxemu"
)

const (
	testAppID     = "wx0123456789abcdef"
	testAppSecret = "test-appsecret-0123456789abcdef"
	testPage      = "https://h5.example.com/app/"
	// testClientRedirect is the redirect_uri of the registered clients
	// "page" (public) and "rsa" (confidential, RS256 ID tokens).
	testClientRedirect = "https://h5.example.com/app/cb"
	testClientSecret   = "rsa-client-secret-0123456789"
	// testKeyByte is the first byte of the harness's 32-byte cookie and
	// box key (the rest are zero).
	testKeyByte = 1

	qrCallbackToken = "qrlogintoken0123"
	qrOtherReply    = "ordinary rules answered"
	// wechatAgent is the User-Agent of WeChat's in-app browser: /login
	// sends other browsers to the QR login page when QR login is on.
	wechatAgent  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50"
	desktopAgent = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36"
)

// harness is the service (httptest) wired to the emulator (httptest) over
// one in-memory store. With [withQR] a second instance b shares the store,
// both serve /wx and the QR login, and the emulator pushes its messages to
// b's /wx.
type harness struct {
	svc, b, emu *httptest.Server
	handler     http.Handler // svc's handler, for requests from many client addresses
	emulator    *wxemu.Emulator
	sessions    *session.Manager
	mem         *memory.Store
	clock       *clocktest.Clock // the service's clock (sessions, records); the emulator keeps its own
}

// harnessConfig is what the options of [newHarness] change.
type harnessConfig struct {
	denyRedirect bool // the emulator refuses redirect URIs outside its OAuth domains
	qr           bool
	limits       httpapi.Limits
}

// option changes the world [newHarness] builds.
type option func(*harnessConfig)

// denyRedirect makes the emulator refuse redirect URIs outside its OAuth
// domains, as WeChat does.
func denyRedirect(c *harnessConfig) { c.denyRedirect = true }

// withQR adds instance b and the message callback with the QR login on
// both instances, with the production rate limits.
func withQR(c *harnessConfig) { c.qr, c.limits = true, httpapi.Limits{} }

// newHarness builds the world: by default one instance, rate limits off
// (the corpus tests send hundreds of requests from one IP).
func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	cfg := harnessConfig{limits: httpapi.Limits{Rate: -1}}
	for _, o := range opts {
		o(&cfg)
	}
	h := &harness{clock: clocktest.New(time.Now())}
	// The services' URLs must be known before the emulator's domain list.
	muxes := []*http.ServeMux{http.NewServeMux()}
	h.svc = httptest.NewServer(muxes[0])
	t.Cleanup(h.svc.Close)
	srvs := []*httptest.Server{h.svc}
	ecfg := wxemu.Config{AppID: testAppID, AppSecret: testAppSecret, DenyRedirect: cfg.denyRedirect}
	if cfg.qr {
		muxes = append(muxes, http.NewServeMux())
		h.b = httptest.NewServer(muxes[1])
		t.Cleanup(h.b.Close)
		srvs = append(srvs, h.b)
		ecfg.CallbackURL, ecfg.CallbackToken, ecfg.Mode = h.b.URL+"/wx", qrCallbackToken, "plain"
	}
	for _, s := range srvs {
		ecfg.OAuthDomains = append(ecfg.OAuthDomains, strings.TrimPrefix(s.URL, "http://"))
	}
	emu, err := wxemu.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	h.emulator = emu
	h.emu = httptest.NewServer(emu)
	t.Cleanup(h.emu.Close)
	emu.SetPublicURL(h.emu.URL)

	key := testKey()
	box, _ := secret.NewBox(key)
	h.mem = memory.New(h.clock.Now)
	t.Cleanup(func() { h.mem.Close() })
	stores := store.Set{Users: h.mem, RefreshTokens: h.mem, Keys: h.mem, Records: h.mem, Locker: h.mem, TokenCache: h.mem, Broker: h.mem,
		Ping: h.mem.Ping, Close: h.mem.Close}
	h.sessions, err = session.NewManager(context.Background(), session.Config{Issuer: h.svc.URL, Audience: "wxauth", Box: box, Now: h.clock.Now,
		ExtraAlgs: []string{"RS256"}},
		session.Stores{Keys: h.mem, RefreshTokens: h.mem, Records: h.mem, Users: h.mem})
	if err != nil {
		t.Fatal(err)
	}
	cookies, err := session.NewCookies(session.CookieConfig{Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	allow, _ := redirect.Parse([]string{"https://h5.example.com"})
	reg, err := clients.New(
		&clients.Client{ID: "page", Public: true, RedirectURIs: []string{testClientRedirect}, PostLogoutRedirectURIs: []string{testPage}},
		&clients.Client{ID: "rsa", Secret: testClientSecret, RedirectURIs: []string{testClientRedirect}, IDTokenAlg: "RS256",
			GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	for i, srv := range srvs {
		client := &http.Client{Timeout: 5 * time.Second}
		wx, err := wechat.NewClient(wechat.Config{AppID: testAppID, AppSecret: testAppSecret, Endpoint: wechat.EmulatorEndpoint(h.emu.URL), HTTPClient: client})
		if err != nil {
			t.Fatal(err)
		}
		tokens, err := wechat.NewTokenManager(wx, wechat.TokenConfig{Cache: h.mem, Locker: h.mem, Box: box})
		if err != nil {
			t.Fatal(err)
		}
		o := httpapi.Options{
			PublicURL: srv.URL, AppID: testAppID, Issuer: h.svc.URL, JWTAlg: "ES256", Allow: allow, WeChat: wx, Tokens: tokens,
			Sessions: h.sessions, Cookies: cookies, Box: box, Stores: stores, Clients: reg, AdminToken: "admin-token-0123456789", Now: h.clock.Now,
			Limits: cfg.limits,
		}
		if cfg.qr {
			o.QR, o.Callback = h.qrCallback(t, wechat.NewAPI(wx, tokens))
		}
		handler, err := httpapi.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		muxes[i].Handle("/", handler)
		if i == 0 {
			h.handler = handler
		}
	}
	return h
}

// qrCallback returns an instance's QR login and its /wx handler, which
// gives every message the QR login does not take a text reply
// ([qrOtherReply]).
func (h *harness) qrCallback(t testing.TB, api *wechat.API) (*qrlogin.Service, http.Handler) {
	t.Helper()
	qr, err := qrlogin.New(qrlogin.Config{AppID: testAppID, WeChat: api, Users: h.mem, Records: h.mem, Broker: h.mem, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ordinary := callback.HandlerFunc(func(ctx context.Context, m *callback.Message) (callback.Reply, error) {
		return callback.TextReply{Content: qrOtherReply}, nil
	})
	cb, err := callback.NewServer(callback.Config{Token: qrCallbackToken, AppID: testAppID, Mode: "plain", Records: h.mem},
		callback.First(qr, ordinary))
	if err != nil {
		t.Fatal(err)
	}
	return qr, cb
}

// testKey returns the harness's cookie and box key.
func testKey() []byte {
	key := make([]byte, 32)
	key[0] = testKeyByte
	return key
}

// client is a browser with a cookie jar that does not follow redirects.
type client struct {
	t     testing.TB
	c     *http.Client
	agent string // the User-Agent of every request; "" for Go's
}

// newClient returns a client with Go's User-Agent.
func newClient(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// newDesktopClient returns a client with a desktop browser's User-Agent.
func newDesktopClient(t testing.TB) *client {
	c := newClient(t)
	c.agent = desktopAgent
	return c
}

// do sends a request with body (JSON unless headers say otherwise) and the
// header name-value pairs, and returns the response with its body read.
func (c *client) do(method, u, body string, headers ...string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}
