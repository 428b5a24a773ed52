package test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/test/e2e"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so each hop of the login flow can be checked.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// get fetches u with headers (name, value pairs) and returns the response
// with its body read.
func (b *browser) get(u string, headers ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func (b *browser) post(u, contentType, body string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(out)
}

// authorize runs /login and the emulator's authorize page for user with the
// scripted-consent headers; it returns the /oauth/callback URL WeChat sends
// the browser to (or the emulator's response when it does not redirect).
func (b *browser) authorize(svc, h5, scope, user, consent string) (string, *http.Response) {
	b.t.Helper()
	resp, body := b.get(svc + "/login?redirect=" + url.QueryEscape(h5+"/") + "&scope=" + scope)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("/login: %d %s", resp.StatusCode, body)
	}
	authURL := resp.Header.Get("Location")
	resp, _ = b.get(authURL, "X-Wxemu-User", user, "X-Wxemu-Consent", consent)
	if resp.StatusCode != http.StatusFound {
		return "", resp
	}
	return resp.Header.Get("Location"), resp
}

// sessionJWT returns an access JWT of the browser's cookie login: POST
// /session/refresh with the refresh cookie answers it in the JSON body
// (the way a same-site page gets one without a token in any URL).
func (b *browser) sessionJWT(svc string) string {
	b.t.Helper()
	resp, body := b.post(svc+"/session/refresh", "", "")
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal([]byte(body), &out); resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		b.t.Fatalf("/session/refresh: %d %s", resp.StatusCode, body)
	}
	return out.AccessToken
}

var authorizeURLRE = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/connect/oauth2/authorize\?appid=wx[0-9a-z]+&redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Foauth%2Fcallback&response_type=code&scope=snsapi_(base|userinfo)&state=[A-Za-z0-9]{22}&connect_redirect=1#wechat_redirect$`)

func TestDev_ScriptedLogin(t *testing.T) {
	t.Parallel()
	p := startDev(t)
	svc, emu, h5 := p.URL("service"), p.URL("emulator"), p.URL("h5")
	e2e.WaitReady(t, svc)

	for _, tc := range []struct {
		scope, user, nickname string
		unionid               bool
	}{
		{"snsapi_userinfo", "oWXEMU_alice", "Alice 爱丽丝", true},
		{"snsapi_base", "oWXEMU_bob", "", false},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			b := newBrowser(t)
			resp, _ := b.get(svc + "/login?redirect=" + url.QueryEscape(h5+"/") + "&scope=" + tc.scope)
			if !authorizeURLRE.MatchString(resp.Header.Get("Location")) {
				t.Fatalf("authorize URL %q is not in WeChat's order", resp.Header.Get("Location"))
			}
			cb, resp := b.authorize(svc, h5, tc.scope, tc.user, "allow")
			if cb == "" {
				t.Fatalf("emulator did not redirect: %d", resp.StatusCode)
			}
			resp, body := b.get(cb)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("callback: %d %s", resp.StatusCode, body)
			}
			// Back to the page with nothing in the URL: the session is in
			// the HttpOnly wxauth_session cookie.
			if loc := resp.Header.Get("Location"); loc != h5+"/" {
				t.Fatalf("callback redirected to %s", loc)
			}
			if resp, _ := b.get(svc + "/verify"); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-Request-Openid") != tc.user {
				t.Fatalf("/verify with the session cookie: %d", resp.StatusCode)
			}
			jwtRaw := b.sessionJWT(svc)

			// The JWT verifies against the JWKS with ES256 and carries iss, aud, exp, kid.
			_, jwks := b.get(svc + "/.well-known/jwks.json")
			kf, err := keyfunc.NewJWKSetJSON(json.RawMessage(jwks))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Parse(jwtRaw, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(svc),
				jwt.WithAudience("wxauth"), jwt.WithExpirationRequired())
			if err != nil {
				t.Fatalf("JWT does not verify against the JWKS: %v", err)
			}
			if kid, _ := tok.Header["kid"].(string); kid == "" {
				t.Error("JWT header has no kid")
			}
			claims := tok.Claims.(jwt.MapClaims)
			if claims["openid"] != tc.user || claims["scope"] != tc.scope {
				t.Errorf("claims %v", claims)
			}

			resp, body = b.get(svc+"/me", "Authorization", "Bearer "+jwtRaw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/me: %d %s", resp.StatusCode, body)
			}
			var me map[string]any
			json.Unmarshal([]byte(body), &me)
			if me["nickname"] != tc.nickname || me["openid"] != tc.user || me["sub"] != claims["sub"] {
				t.Errorf("/me = %s", body)
			}
			if _, ok := me["unionid"]; ok != tc.unionid {
				t.Errorf("/me unionid presence = %v, want %v: %s", ok, tc.unionid, body)
			}

			// Refresh with the cookie, then logout: the JWT stops verifying.
			resp, body = b.post(svc+"/session/refresh", "", "")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"access_token"`) {
				t.Fatalf("/session/refresh: %d %s", resp.StatusCode, body)
			}
			resp, _ = b.post(svc+"/session/logout", "", "")
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("/session/logout: %d", resp.StatusCode)
			}
			if resp, _ := b.get(svc+"/verify", "Authorization", "Bearer "+jwtRaw); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("/verify after logout: %d, want 401", resp.StatusCode)
			}
		})
	}

	t.Run("CodeReused", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := b.authorize(svc, h5, "snsapi_base", "oWXEMU_bob", "allow")
		if resp, _ := b.get(cb); resp.StatusCode != http.StatusFound {
			t.Fatalf("first callback: %d", resp.StatusCode)
		}
		// A second login whose callback carries the used code: 40163 ->
		// the authorization restarts once, transparently.
		cb2, _ := b.authorize(svc, h5, "snsapi_base", "oWXEMU_bob", "allow")
		u1, _ := url.Parse(cb)
		u2, _ := url.Parse(cb2)
		q := u2.Query()
		q.Set("code", u1.Query().Get("code"))
		u2.RawQuery = q.Encode()
		resp, body := b.get(u2.String())
		if resp.StatusCode != http.StatusFound || !authorizeURLRE.MatchString(resp.Header.Get("Location")) {
			t.Fatalf("reused code: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})

	t.Run("DuplicateCallback", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := b.authorize(svc, h5, "snsapi_base", "oWXEMU_alice", "allow")
		r1, _ := b.get(cb)
		r2, _ := b.get(cb)
		if r1.StatusCode != http.StatusFound || r2.StatusCode != http.StatusFound || r1.Header.Get("Location") != r2.Header.Get("Location") {
			t.Fatalf("duplicate callback: %d %q / %d %q", r1.StatusCode, r1.Header.Get("Location"), r2.StatusCode, r2.Header.Get("Location"))
		}
	})

	t.Run("CodeExpired", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := b.authorize(svc, h5, "snsapi_base", "oWXEMU_bob", "allow")
		if resp, body := b.post(emu+"/emu/clock", "application/json", `{"advance_seconds": 301}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("/emu/clock: %d %s", resp.StatusCode, body)
		}
		// 40029 -> the authorization restarts once, transparently.
		resp, body := b.get(cb)
		if resp.StatusCode != http.StatusFound || !authorizeURLRE.MatchString(resp.Header.Get("Location")) {
			t.Fatalf("expired code: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})

	t.Run("SnapshotUser", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := b.authorize(svc, h5, "snsapi_userinfo", "oWXEMU_snap", "allow")
		resp, _ := b.get(cb)
		if resp.StatusCode != http.StatusFound || !strings.HasSuffix(resp.Header.Get("Location"), "#error=snapshot_user") {
			t.Fatalf("snapshot user: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("WrongParameterOrder", func(t *testing.T) {
		b := newBrowser(t)
		resp, _ := b.get(svc + "/login?redirect=" + url.QueryEscape(h5+"/") + "&scope=snsapi_base")
		u, _ := url.Parse(resp.Header.Get("Location"))
		q := u.Query()
		swapped := emu + "/connect/oauth2/authorize?redirect_uri=" + url.QueryEscape(q.Get("redirect_uri")) + "&appid=" + q.Get("appid") +
			"&response_type=code&scope=snsapi_base&state=" + q.Get("state")
		resp, body := b.get(swapped, "X-Wxemu-User", "oWXEMU_bob", "X-Wxemu-Consent", "allow")
		if resp.StatusCode == http.StatusFound || !strings.Contains(body, "该链接无法访问") {
			t.Fatalf("wrong order: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("UnlistedRedirect", func(t *testing.T) {
		b := newBrowser(t)
		resp, body := b.get(svc + "/login?redirect=" + url.QueryEscape("https://evil.example/"))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "不在本服务允许返回的范围内") ||
			strings.Contains(body, "WXAUTH_") || strings.Contains(body, "evil.example") {
			t.Fatalf("unlisted redirect: %d %s", resp.StatusCode, body)
		}
	})
}

func TestServe_MissingConfiguration(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "serve")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "WXAUTH_SECRET_KEY=short"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve started without configuration:\n%s", out)
	}
	for _, want := range []string{"WXAUTH_APPID: required", "WXAUTH_APPSECRET: required", "WXAUTH_PUBLIC_URL: required",
		"WXAUTH_ALLOWED_REDIRECTS: required", "WXAUTH_SECRET_KEY: must be base64"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "panic") || strings.Contains(string(out), "goroutine") {
		t.Errorf("output has a stack trace:\n%s", out)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"serve", "dev", "emulate", "version"} {
		if !strings.Contains(string(out), "  "+cmd+" ") {
			t.Errorf("--help does not list %s:\n%s", cmd, out)
		}
	}
}
