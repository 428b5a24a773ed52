package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/wechat"
)

// login runs /login -> emulator (scripted consent) -> /oauth/callback and
// returns the callback's response.
func (h *harness) login(c *client, scope, user, consent string) (*http.Response, string) {
	c.t.Helper()
	resp, body := c.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(testPage)+"&scope="+scope, "")
	if resp.StatusCode != http.StatusFound {
		c.t.Fatalf("/login: %d %s", resp.StatusCode, body)
	}
	// WeChat's authorize page opens inside WeChat only: the emulator, like
	// WeChat, refuses a User-Agent without MicroMessenger.
	resp, body = c.do("GET", resp.Header.Get("Location"), "", "User-Agent", wechatAgent, "X-Wxemu-User", user, "X-Wxemu-Consent", consent)
	if resp.StatusCode != http.StatusFound {
		return resp, body
	}
	return c.do("GET", resp.Header.Get("Location"), "")
}

// fragment returns what a cookie login delivered: the page's URL must be
// exactly testPage (no token in it, no fragment), and the access JWT is
// read from the HttpOnly wxauth_session cookie (opened with the test
// keys), with token_type and expires_in (the cookie's Max-Age, to 10 s)
// beside it.
func fragment(t testing.TB, resp *http.Response) url.Values {
	t.Helper()
	if loc := resp.Header.Get("Location"); loc != testPage {
		t.Fatalf("redirected to %q, want %s", loc, testPage)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name != session.SessionCookie || ck.Value == "" {
			continue
		}
		if !ck.HttpOnly || ck.Path != "/" {
			t.Errorf("session cookie attributes: %+v", ck)
		}
		c, _ := session.NewCookies(session.CookieConfig{Keys: [][]byte{testKey()}})
		r := &http.Request{Header: http.Header{"Cookie": {ck.Name + "=" + ck.Value}}}
		if jwt, ok := c.Session(r); ok {
			// Max-Age counts whole seconds left: 899 or 900 for a 15-minute JWT.
			return url.Values{"access_token": {jwt}, "token_type": {"Bearer"}, "expires_in": {strconv.Itoa((ck.MaxAge + 5) / 10 * 10)}}
		}
	}
	t.Fatalf("no wxauth_session cookie in %v", resp.Header)
	return nil
}

// fragmentError returns the error a cookie login put in the page's
// fragment (#error=access_denied, #error=snapshot_user).
func fragmentError(t testing.TB, resp *http.Response) url.Values {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), testPage+"#") {
		t.Fatalf("redirected to %q, want %s#error=...", resp.Header.Get("Location"), testPage)
	}
	v, _ := url.ParseQuery(loc.Fragment)
	return v
}

func TestLogin_Flow(t *testing.T) {
	h := newHarness(t, denyRedirect)
	c := newClient(t)
	resp, _ := h.login(c, wechat.ScopeUserInfo, "oWXEMU_alice", "allow")
	frag := fragment(t, resp)
	jwt := frag.Get("access_token")
	if jwt == "" || frag.Get("token_type") != "Bearer" || frag.Get("expires_in") != "900" {
		t.Fatalf("fragment %v", frag)
	}
	resp, body := c.do("GET", h.svc.URL+"/me", "", "Authorization", "Bearer "+jwt)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/me: %d %s", resp.StatusCode, body)
	}
	var me map[string]any
	json.Unmarshal([]byte(body), &me)
	if me["nickname"] != "Alice 爱丽丝" || me["unionid"] != "uWXEMU_alice" || me["scope"] != "snsapi_userinfo" {
		t.Errorf("/me = %s", body)
	}
	for _, f := range []string{"sub", "openid", "headimgurl", "sex", "province", "city", "country", "privilege", "updated_at"} {
		if _, ok := me[f]; !ok {
			t.Errorf("/me lacks %q: %s", f, body)
		}
	}

	// /verify for nginx: headers from the JWT; the session cookie also works.
	resp, _ = c.do("GET", h.svc.URL+"/verify", "", "Authorization", "Bearer "+jwt)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-Request-Openid") != "oWXEMU_alice" ||
		resp.Header.Get("X-Auth-Request-User") != me["sub"] || resp.Header.Get("X-Auth-Request-Unionid") != "uWXEMU_alice" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("/verify: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := c.do("GET", h.svc.URL+"/verify", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/verify with the session cookie: %d", resp.StatusCode)
	}

	// The same person logging in again keeps the same sub.
	c2 := newClient(t)
	resp, _ = h.login(c2, wechat.ScopeBase, "oWXEMU_alice", "allow")
	jwt2 := fragment(t, resp).Get("access_token")
	c2.t = t
	_, body = c2.do("GET", h.svc.URL+"/me", "", "Authorization", "Bearer "+jwt2)
	var me2 map[string]any
	json.Unmarshal([]byte(body), &me2)
	if me2["sub"] != me["sub"] {
		t.Errorf("second login sub %v, first %v", me2["sub"], me["sub"])
	}

	// Refresh rotates; reusing the old refresh token revokes the family.
	resp, body = c.do("POST", h.svc.URL+"/session/refresh", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"token_type":"Bearer"`) || strings.Contains(body, "refresh_token") {
		t.Fatalf("/session/refresh: %d %s", resp.StatusCode, body)
	}

	// Logout: 204, the JWTs of the login stop passing /verify and /me.
	resp, _ = c.do("POST", h.svc.URL+"/session/logout", "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", h.svc.URL+"/verify", "", "Authorization", "Bearer "+jwt); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/verify after logout: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", h.svc.URL+"/me", "", "Authorization", "Bearer "+jwt); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/me after logout: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", h.svc.URL+"/session/refresh", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("refresh after logout: %d", resp.StatusCode)
	}
}

func TestLogin_RefreshBodyAndReuse(t *testing.T) {
	h := newHarness(t, denyRedirect)
	c := newClient(t)
	resp, _ := h.login(c, wechat.ScopeBase, "oWXEMU_bob", "allow")
	jwt := fragment(t, resp).Get("access_token")
	var refresh string
	for _, ck := range resp.Cookies() {
		if ck.Name == "wxauth_refresh" {
			if !ck.HttpOnly || ck.Path != "/session" || ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("refresh cookie attributes: %+v", ck)
			}
		}
	}
	// A non-browser client: issue through the manager to get the raw token.
	claims, err := h.sessions.Verify(context.Background(), jwt)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := h.sessions.Issue(context.Background(), session.Subject{UserID: claims.Subject, OpenID: claims.OpenID, AppID: testAppID, Scope: "snsapi_base"})
	if err != nil {
		t.Fatal(err)
	}
	refresh = tk.RefreshToken
	api := newClient(t)
	resp, body := api.do("POST", h.svc.URL+"/session/refresh", `{"refresh_token":"`+refresh+`"}`, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"refresh_token"`) {
		t.Fatalf("body refresh: %d %s", resp.StatusCode, body)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(body), &out)
	// Reuse of the first refresh token: 401 and the family's JWTs are revoked.
	resp, body = api.do("POST", h.svc.URL+"/session/refresh", `{"refresh_token":"`+refresh+`"}`, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"invalid_grant"`) {
		t.Fatalf("reuse: %d %s", resp.StatusCode, body)
	}
	if resp, _ := api.do("GET", h.svc.URL+"/verify", "", "Authorization", "Bearer "+out.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/verify of a JWT from a reused family: %d", resp.StatusCode)
	}
	for _, bad := range []string{`{"refresh_token":1}`, `{"x":`, `{"refresh_token":"nope"}`} {
		resp, body := api.do("POST", h.svc.URL+"/session/refresh", bad, "Content-Type", "application/json")
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("refresh %s: %d %s", bad, resp.StatusCode, body)
		}
	}
}

func TestLogin_Deny(t *testing.T) {
	h := newHarness(t, denyRedirect)
	resp, _ := h.login(newClient(t), wechat.ScopeUserInfo, "oWXEMU_alice", "deny")
	if got := fragmentError(t, resp); got.Get("error") != "access_denied" {
		t.Errorf("deny: %v", got)
	}
}

func TestLogin_Snapshot(t *testing.T) {
	h := newHarness(t)
	resp, _ := h.login(newClient(t), wechat.ScopeUserInfo, "oWXEMU_snap", "allow")
	if got := fragmentError(t, resp); got.Get("error") != "snapshot_user" || got.Get("access_token") != "" {
		t.Errorf("snapshot: %v", got)
	}
}

func TestLogin_StateErrors(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	for name, tc := range map[string]struct {
		path   string
		status int
	}{
		"NoState":       {"/oauth/callback?code=x", http.StatusBadRequest},
		"BadState":      {"/oauth/callback?code=x&state=a-b", http.StatusBadRequest},
		"UnknownState":  {"/oauth/callback?code=x&state=abcdefghijklmnopqrstuv", http.StatusBadRequest},
		"BadScope":      {"/login?redirect=" + url.QueryEscape(testPage) + "&scope=snsapi_login", http.StatusBadRequest},
		"NoRedirect":    {"/login", http.StatusBadRequest},
		"NotFound":      {"/nothing-here", http.StatusNotFound},
		"LoginByPUT":    {"/login", http.StatusMethodNotAllowed},
		"MeNoToken":     {"/me", http.StatusUnauthorized},
		"VerifyNoToken": {"/verify", http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			method := "GET"
			if name == "LoginByPUT" {
				method = "PUT"
			}
			resp, body := c.do(method, h.svc.URL+tc.path, "")
			if resp.StatusCode != tc.status {
				t.Errorf("%s: %d, want %d: %s", tc.path, resp.StatusCode, tc.status, body)
			}
		})
	}
}

// TestLogin_CookieBinding: a callback whose state cookie names another
// login (login CSRF) never logs the browser in as the attacker: it is sent
// through a fresh authorization bound to it, which brings back its own
// identity; a second unbound callback of that chain gets the page.
func TestLogin_CookieBinding(t *testing.T) {
	h := newHarness(t)
	victim, attacker := newClient(t), newClient(t)
	victim.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(testPage)+"&scope=snsapi_base", "")
	resp, _ := attacker.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(testPage)+"&scope=snsapi_base", "")
	resp, _ = attacker.do("GET", resp.Header.Get("Location"), "", "User-Agent", wechatAgent, "X-Wxemu-User", "oWXEMU_bob", "X-Wxemu-Consent", "allow")
	resp, body := victim.do("GET", resp.Header.Get("Location"), "")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), h.emu.URL) {
		t.Fatalf("foreign state: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == session.SessionCookie || ck.Name == session.RefreshCookie {
			t.Fatalf("foreign state set %s", ck.Name)
		}
	}
	// The restart logs the victim in as herself.
	resp, _ = victim.do("GET", resp.Header.Get("Location"), "", "User-Agent", wechatAgent, "X-Wxemu-User", "oWXEMU_alice", "X-Wxemu-Consent", "allow")
	resp, _ = victim.do("GET", resp.Header.Get("Location"), "")
	jwt := fragment(t, resp).Get("access_token")
	c, err := h.sessions.Verify(context.Background(), jwt)
	if err != nil || c.OpenID != "oWXEMU_alice" {
		t.Fatalf("after the restart: %v %+v", err, c)
	}
}

// TestLogin_OpenRedirects sends every line of oauth2-proxy's corpus to /login
// as the redirect: each gets a 400 page, never a 302.
func TestLogin_OpenRedirects(t *testing.T) {
	f, err := os.Open("../redirect/testdata/openredirects.txt")
	if err != nil {
		t.Fatalf("open-redirect corpus: %v", err)
	}
	defer f.Close()
	h := newHarness(t)
	c := newClient(t)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		raw, err := url.QueryUnescape(sc.Text())
		if err != nil {
			raw = sc.Text()
		}
		resp, _ := c.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(raw), "")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("line %d %q: %d %s", n, raw, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	resp, body := c.do("GET", h.svc.URL+"/.well-known/jwks.json", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=600" || !strings.Contains(body, `"kid"`) {
		t.Errorf("jwks: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = c.do("GET", h.svc.URL+"/.well-known/openid-configuration", "")
	var doc map[string]any
	if json.Unmarshal([]byte(body), &doc); doc["issuer"] != h.svc.URL || doc["jwks_uri"] != h.svc.URL+"/.well-known/jwks.json" {
		t.Errorf("discovery: %d %s", resp.StatusCode, body)
	}
}

// TestLogin_ReturningUserScope: /login without a scope is silent
// (snsapi_base) for a browser whose session names a user with a fresh
// profile, and snsapi_userinfo otherwise.
func TestLogin_ReturningUserScope(t *testing.T) {
	h := newHarness(t)
	// noScope runs /login without a scope as user in a fresh browser (no
	// session cookie: after a logout, on another phone) and returns where
	// the callback of its silent snsapi_base leg sends the browser.
	noScope := func(user string) (authScope string, after *url.URL) {
		c := newClient(t)
		resp, body := c.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(testPage), "")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("/login: %d %s", resp.StatusCode, body)
		}
		u, _ := url.Parse(resp.Header.Get("Location"))
		resp, _ = c.do("GET", h.wechatRedirect(c, resp.Header.Get("Location"), user), "")
		after, _ = url.Parse(resp.Header.Get("Location"))
		return u.Query().Get("scope"), after
	}
	// Alice without a profile yet: the silent leg, then snsapi_userinfo.
	scope, after := noScope("oWXEMU_alice")
	if scope != wechat.ScopeBase || after.Query().Get("scope") != wechat.ScopeUserInfo {
		t.Errorf("first visit: %s, then %s, want snsapi_base then snsapi_userinfo", scope, after)
	}
	h.login(newClient(t), wechat.ScopeUserInfo, "oWXEMU_alice", "allow")
	// With a fresh profile, the silent leg is the whole login, whatever the
	// browser's cookies.
	if scope, after = noScope("oWXEMU_alice"); scope != wechat.ScopeBase || after.String() != testPage {
		t.Errorf("returning user with a fresh profile: %s, then %s, want snsapi_base then the page", scope, after)
	}
	// Bob logged in with snsapi_base only: no profile, so it is asked for.
	h.login(newClient(t), wechat.ScopeBase, "oWXEMU_bob", "allow")
	if _, after = noScope("oWXEMU_bob"); after.Query().Get("scope") != wechat.ScopeUserInfo {
		t.Errorf("returning user without a profile: then %s, want snsapi_userinfo", after)
	}
}
