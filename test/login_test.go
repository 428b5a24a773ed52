package test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/test/e2e"
)

// browser is WeChat's in-app browser: cookies kept, redirects not
// followed.
type browser struct{ *e2e.Browser }

func newBrowser(t *testing.T) *browser {
	return &browser{e2e.NewBrowser(t, e2e.WeChatUA)}
}

var authorizeURLRE = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/connect/oauth2/authorize\?appid=wx[0-9a-z]+&redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Foauth%2Fcallback&response_type=code&scope=snsapi_(base|userinfo)&state=[A-Za-z0-9]{22}&connect_redirect=1#wechat_redirect$`)

// reauthorized fails t unless the callback cb sends b back to WeChat's
// authorize page: the authorization restarts once, transparently.
func reauthorized(t *testing.T, what string, b *browser, cb string) {
	t.Helper()
	resp, body := b.Get(cb)
	if resp.StatusCode != http.StatusFound || !authorizeURLRE.MatchString(resp.Header.Get("Location")) {
		t.Fatalf("%s: %d %s %s", what, resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

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
			resp, _ := b.Get(svc + "/login?redirect=" + url.QueryEscape(h5+"/") + "&scope=" + tc.scope)
			if !authorizeURLRE.MatchString(resp.Header.Get("Location")) {
				t.Fatalf("authorize URL %q is not in WeChat's order", resp.Header.Get("Location"))
			}
			cb, resp := b.Authorize(svc, h5+"/", tc.scope, tc.user, "allow")
			if cb == "" {
				t.Fatalf("emulator did not redirect: %d", resp.StatusCode)
			}
			resp, body := b.Get(cb)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("callback: %d %s", resp.StatusCode, body)
			}
			// Back to the page with nothing in the URL: the session is in
			// the HttpOnly wxauth_session cookie.
			if loc := resp.Header.Get("Location"); loc != h5+"/" {
				t.Fatalf("callback redirected to %s", loc)
			}
			if resp, _ := b.Get(svc + "/verify"); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-Request-Openid") != tc.user {
				t.Fatalf("/verify with the session cookie: %d", resp.StatusCode)
			}
			jwtRaw := b.SessionJWT(svc)

			// The JWT verifies against the JWKS with ES256 and carries iss, aud, exp, kid.
			_, jwks := b.Get(svc + "/.well-known/jwks.json")
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

			resp, body = b.Get(svc+"/me", "Authorization", "Bearer "+jwtRaw)
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
			resp, body = b.Post(svc+"/session/refresh", "", "")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"access_token"`) {
				t.Fatalf("/session/refresh: %d %s", resp.StatusCode, body)
			}
			resp, _ = b.Post(svc+"/session/logout", "", "")
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("/session/logout: %d", resp.StatusCode)
			}
			if resp, _ := b.Get(svc+"/verify", "Authorization", "Bearer "+jwtRaw); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("/verify after logout: %d, want 401", resp.StatusCode)
			}
		})
	}

	t.Run("CodeReused", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_bob", "allow")
		if resp, _ := b.Get(cb); resp.StatusCode != http.StatusFound {
			t.Fatalf("first callback: %d", resp.StatusCode)
		}
		// A second login whose callback carries the used code: 40163 ->
		// the authorization restarts once, transparently.
		cb2, _ := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_bob", "allow")
		u1, _ := url.Parse(cb)
		u2, _ := url.Parse(cb2)
		q := u2.Query()
		q.Set("code", u1.Query().Get("code"))
		u2.RawQuery = q.Encode()
		reauthorized(t, "reused code", b, u2.String())
	})

	t.Run("DuplicateCallback", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_alice", "allow")
		r1, _ := b.Get(cb)
		r2, _ := b.Get(cb)
		if r1.StatusCode != http.StatusFound || r2.StatusCode != http.StatusFound || r1.Header.Get("Location") != r2.Header.Get("Location") {
			t.Fatalf("duplicate callback: %d %q / %d %q", r1.StatusCode, r1.Header.Get("Location"), r2.StatusCode, r2.Header.Get("Location"))
		}
	})

	t.Run("CodeExpired", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_bob", "allow")
		if resp, body := b.Post(emu+"/emu/clock", "application/json", `{"advance_seconds": 301}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("/emu/clock: %d %s", resp.StatusCode, body)
		}
		// 40029 -> the authorization restarts once, transparently.
		reauthorized(t, "expired code", b, cb)
	})

	t.Run("SnapshotUser", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := b.Authorize(svc, h5+"/", "snsapi_userinfo", "oWXEMU_snap", "allow")
		resp, _ := b.Get(cb)
		if resp.StatusCode != http.StatusFound || !strings.HasSuffix(resp.Header.Get("Location"), "#error=snapshot_user") {
			t.Fatalf("snapshot user: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("WrongParameterOrder", func(t *testing.T) {
		b := newBrowser(t)
		resp, _ := b.Get(svc + "/login?redirect=" + url.QueryEscape(h5+"/") + "&scope=snsapi_base")
		u, _ := url.Parse(resp.Header.Get("Location"))
		q := u.Query()
		swapped := emu + "/connect/oauth2/authorize?redirect_uri=" + url.QueryEscape(q.Get("redirect_uri")) + "&appid=" + q.Get("appid") +
			"&response_type=code&scope=snsapi_base&state=" + q.Get("state")
		resp, body := b.Get(swapped, "X-Wxemu-User", "oWXEMU_bob", "X-Wxemu-Consent", "allow")
		if resp.StatusCode == http.StatusFound || !strings.Contains(body, "该链接无法访问") {
			t.Fatalf("wrong order: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("UnlistedRedirect", func(t *testing.T) {
		b := newBrowser(t)
		resp, body := b.Get(svc + "/login?redirect=" + url.QueryEscape("https://evil.example/"))
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
