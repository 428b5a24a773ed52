package httpapi_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/login"
	"github.com/wxauth/wxauth/internal/wechat"
)

const (
	ptVerifier = "page-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
)

// authorizeURL is an authorization request of client for scope with PKCE
// (ptVerifier) and extra parameters.
func (h *harness) authorizeURL(client, scope string, extra url.Values) string {
	sum := sha256.Sum256([]byte(ptVerifier))
	q := url.Values{"client_id": {client}, "redirect_uri": {testClientRedirect}, "response_type": {"code"}, "scope": {scope},
		"state": {"st"}, "nonce": {"nn"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return h.svc.URL + "/login?" + q.Encode()
}

// toClient follows redirects from u in c (user agent ua), answering
// WeChat's authorize page as user, until the browser is sent to the
// client's redirect_uri; it returns that URL's query.
func (h *harness) toClient(c *client, u, ua, user string) url.Values {
	c.t.Helper()
	for range 6 {
		resp, body := c.do("GET", u, "", "User-Agent", ua, "X-Wxemu-User", user, "X-Wxemu-Consent", "allow")
		if resp.StatusCode != http.StatusFound {
			c.t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
		}
		u = resp.Header.Get("Location")
		if strings.HasPrefix(u, testClientRedirect) {
			lu, _ := url.Parse(u)
			return lu.Query()
		}
	}
	c.t.Fatalf("never back at the client: %s", u)
	return nil
}

// redeem posts the token request form and decodes the JSON answer.
func (h *harness) redeem(c *client, form url.Values, user, pass string) (int, map[string]any) {
	c.t.Helper()
	headers := []string{"Content-Type", "application/x-www-form-urlencoded"}
	if user != "" {
		headers = append(headers, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	}
	resp, body := c.do("POST", h.svc.URL+"/oauth/token", form.Encode(), headers...)
	var out map[string]any
	json.Unmarshal([]byte(body), &out)
	return resp.StatusCode, out
}

// offlineTokens logs Alice in for the public client "page" with
// offline_access through the code flow and returns the token response,
// which has a refresh token.
func (h *harness) offlineTokens(c *client) map[string]any {
	c.t.Helper()
	q := h.toClient(c, h.authorizeURL("page", "openid offline_access", nil), wechatAgent, "oWXEMU_alice")
	st, tok := h.redeem(c, codeForm(q.Get("code"), "page"), "", "")
	if rt, _ := tok["refresh_token"].(string); st != http.StatusOK || rt == "" {
		c.t.Fatalf("code exchange: %d %v", st, tok)
	}
	return tok
}

func codeForm(code, client string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testClientRedirect},
		"client_id": {client}, "code_verifier": {ptVerifier}}
}

// TestAuthorize_PromptNone: prompt=none is answered without a page where
// a silent snsapi_base suffices (inside WeChat, or this browser's wxauth
// login), else with login_required on the redirect_uri.
func TestAuthorize_PromptNone(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	none := url.Values{"prompt": {"none"}}
	// A desktop browser without a wxauth login: login_required.
	resp, _ := c.do("GET", h.authorizeURL("page", "openid", none), "", "User-Agent", desktopAgent)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != "st" {
		t.Fatalf("desktop prompt=none: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Inside WeChat the profile needs a consent page: login_required.
	resp, _ = c.do("GET", h.authorizeURL("page", "openid profile", none), "", "User-Agent", wechatAgent)
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "login_required" {
		t.Fatalf("profile with prompt=none: %s", resp.Header.Get("Location"))
	}
	// Inside WeChat snsapi_base is silent: straight to WeChat.
	resp, _ = c.do("GET", h.authorizeURL("page", "openid", none), "", "User-Agent", wechatAgent)
	if !strings.HasPrefix(resp.Header.Get("Location"), h.emu.URL+"/connect/oauth2/authorize?") || !strings.Contains(resp.Header.Get("Location"), "scope=snsapi_base") {
		t.Fatalf("WeChat prompt=none: %s", resp.Header.Get("Location"))
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("authorize redirect Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	// After a login, this browser's wxauth login answers prompt=none with a
	// code, even on the desktop.
	q := h.toClient(c, h.authorizeURL("page", "openid profile", nil), wechatAgent, "oWXEMU_alice")
	if st, _ := h.redeem(c, codeForm(q.Get("code"), "page"), "", ""); st != http.StatusOK {
		t.Fatalf("first code: %d", st)
	}
	resp, _ = c.do("GET", h.authorizeURL("page", "openid profile", none), "", "User-Agent", desktopAgent)
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), testClientRedirect) || loc.Query().Get("code") == "" {
		t.Fatalf("prompt=none with a browser login: %s", resp.Header.Get("Location"))
	}
	st, tok := h.redeem(c, codeForm(loc.Query().Get("code"), "page"), "", "")
	if st != http.StatusOK || tok["id_token"] == nil {
		t.Fatalf("silent code: %d %v", st, tok)
	}
	// prompt=login forces WeChat again.
	resp, _ = c.do("GET", h.authorizeURL("page", "openid", url.Values{"prompt": {"login"}}), "", "User-Agent", wechatAgent)
	if !strings.HasPrefix(resp.Header.Get("Location"), h.emu.URL) {
		t.Errorf("prompt=login: %s", resp.Header.Get("Location"))
	}
}

// TestAuthorize_Snapshot: a snapshot-page user comes back to the client as
// access_denied with login.SnapshotDescription.
func TestAuthorize_Snapshot(t *testing.T) {
	h := newHarness(t)
	q := h.toClient(newClient(t), h.authorizeURL("page", "openid profile", nil), wechatAgent, "oWXEMU_snap")
	if q.Get("error") != "access_denied" || q.Get("error_description") != login.SnapshotDescription || q.Get("code") != "" {
		t.Fatalf("snapshot user: %v", q)
	}
}

// TestToken_Code: a code lives 60 s and belongs to its client; a client's
// ID token is signed with its id_token_signed_response_alg.
func TestToken_Code(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	q := h.toClient(c, h.authorizeURL("rsa", "openid", nil), wechatAgent, "oWXEMU_bob")
	// Another client cannot redeem it.
	if st, out := h.redeem(c, codeForm(q.Get("code"), "page"), "", ""); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("code of rsa redeemed by page: %d %v", st, out)
	}
	// Without the secret: invalid_client.
	if st, out := h.redeem(c, codeForm(q.Get("code"), "rsa"), "rsa", "wrong-secret-0123456789"); st != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", st, out)
	}
	st, out := h.redeem(c, codeForm(q.Get("code"), "rsa"), "rsa", testClientSecret)
	if st != http.StatusOK {
		t.Fatalf("rsa: %d %v", st, out)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(out["id_token"].(string), ".")[0])
	if !strings.Contains(string(hdr), `"alg":"RS256"`) {
		t.Errorf("rsa's ID token header %s", hdr)
	}
	if out["refresh_token"] != nil {
		t.Errorf("a refresh token without offline_access")
	}
	// Expired after 60 s.
	q = h.toClient(c, h.authorizeURL("page", "openid", url.Values{"prompt": {"login"}}), wechatAgent, "oWXEMU_bob")
	h.clock.Advance(61 * time.Second)
	if st, out := h.redeem(c, codeForm(q.Get("code"), "page"), "", ""); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("code after 61 s: %d %v", st, out)
	}
}

// TestMetadata: discovery and RFC 8414 metadata are the same truthful
// document.
func TestMetadata(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	_, a := c.do("GET", h.svc.URL+"/.well-known/openid-configuration", "")
	_, b := c.do("GET", h.svc.URL+"/.well-known/oauth-authorization-server", "")
	var doc map[string]any
	if a != b || json.Unmarshal([]byte(a), &doc) != nil {
		t.Fatalf("documents differ or are not JSON:\n%s\n%s", a, b)
	}
	for k, want := range map[string]string{"issuer": h.svc.URL, "authorization_endpoint": h.svc.URL + "/login",
		"token_endpoint": h.svc.URL + "/oauth/token", "userinfo_endpoint": h.svc.URL + "/userinfo",
		"revocation_endpoint": h.svc.URL + "/oauth/revoke", "introspection_endpoint": h.svc.URL + "/oauth/introspect",
		"end_session_endpoint": h.svc.URL + "/logout", "jwks_uri": h.svc.URL + "/.well-known/jwks.json"} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %s", k, doc[k], want)
		}
	}
	for k, want := range map[string]string{"response_types_supported": `["code"]`, "code_challenge_methods_supported": `["S256"]`,
		"id_token_signing_alg_values_supported": `["ES256","RS256"]`} {
		if b, _ := json.Marshal(doc[k]); string(b) != want {
			t.Errorf("%s = %s, want %s", k, b, want)
		}
	}
}

// TestIntrospect: RFC 7662 for a confidential client: live access and
// refresh tokens are active, revoked and unknown ones are not; a public
// client may not introspect.
func TestIntrospect(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	tok := h.offlineTokens(c)
	introspect := func(token, user, pass string) (int, map[string]any) {
		headers := []string{"Content-Type", "application/x-www-form-urlencoded"}
		if user != "" {
			headers = append(headers, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
		}
		resp, body := c.do("POST", h.svc.URL+"/oauth/introspect", url.Values{"token": {token}}.Encode(), headers...)
		var out map[string]any
		json.Unmarshal([]byte(body), &out)
		return resp.StatusCode, out
	}
	if st, out := introspect(tok["access_token"].(string), "rsa", testClientSecret); st != http.StatusOK || out["active"] != true ||
		out["client_id"] != "page" || out["token_type"] != "Bearer" || out["sub"] == nil {
		t.Errorf("access token: %d %v", st, out)
	}
	if st, out := introspect(tok["refresh_token"].(string), "rsa", testClientSecret); st != http.StatusOK || out["active"] != true || out["client_id"] != "page" {
		t.Errorf("refresh token: %d %v", st, out)
	}
	if _, out := introspect("nonsense", "rsa", testClientSecret); out["active"] != false {
		t.Errorf("unknown token: %v", out)
	}
	if st, _ := introspect(tok["access_token"].(string), "page", ""); st != http.StatusUnauthorized && st != http.StatusBadRequest {
		t.Errorf("public client introspecting: %d", st)
	}
	// Revoked (by its own client): inactive.
	resp, _ := c.do("POST", h.svc.URL+"/oauth/revoke", url.Values{"token": {tok["access_token"].(string)}, "client_id": {"page"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if _, out := introspect(tok["access_token"].(string), "rsa", testClientSecret); out["active"] != false {
		t.Errorf("revoked access token: %v", out)
	}
	if _, out := introspect(tok["refresh_token"].(string), "rsa", testClientSecret); out["active"] != false {
		t.Errorf("refresh token of a revoked login: %v", out)
	}
}

// TestToken_CORS: a registered client's page may call the token endpoint
// from its origin; another origin gets no CORS headers.
func TestToken_CORS(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	for origin, ok := range map[string]bool{"https://h5.example.com": true, "https://evil.example": false} {
		resp, _ := c.do("OPTIONS", h.svc.URL+"/oauth/token", "", "Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "content-type")
		if got := resp.Header.Get("Access-Control-Allow-Origin") == origin; got != ok {
			t.Errorf("preflight from %s: %d allow-origin %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

// TestCallback_Stale: a bound callback whose first run ended long ago
// (its outcome gone) gets the expired page, not "in progress".
func TestCallback_Stale(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	cb := h.wechatRedirect(c, h.startLogin(c), "oWXEMU_alice")
	c.do("GET", cb, "")
	h.clock.Advance(2 * time.Minute)
	resp, body := c.do("GET", cb, "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "登录链接已失效") {
		t.Fatalf("stale callback: %d %.200s", resp.StatusCode, body)
	}
}

// TestProvider_BadInput: junk at every provider endpoint gets a 4xx with
// JSON {"error","error_description"} (an H5 page on the browser
// endpoints), never a 5xx or a panic.
func TestProvider_BadInput(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	form := "application/x-www-form-urlencoded"
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		page                     bool
	}{
		{"TokenNoGrant", "POST", "/oauth/token", "code=x", []string{"Content-Type", form}, false},
		{"TokenUnknownGrant", "POST", "/oauth/token", "grant_type=password&username=a&password=b&client_id=page", []string{"Content-Type", form}, false},
		{"TokenNoClient", "POST", "/oauth/token", "grant_type=authorization_code&code=x&redirect_uri=" + url.QueryEscape(testClientRedirect), []string{"Content-Type", form}, false},
		{"TokenUnknownClient", "POST", "/oauth/token", "grant_type=authorization_code&code=x&client_id=nobody&redirect_uri=x", []string{"Content-Type", form}, false},
		{"TokenBadBasic", "POST", "/oauth/token", "grant_type=client_credentials", []string{"Content-Type", form, "Authorization", "Basic !!!"}, false},
		{"TokenPublicWithSecret", "POST", "/oauth/token", "grant_type=authorization_code&code=x&redirect_uri=x", []string{"Content-Type", form, "Authorization", basic("page", "guess")}, false},
		{"TokenJunkCode", "POST", "/oauth/token", "grant_type=authorization_code&client_id=page&code=%00%ff&redirect_uri=" + url.QueryEscape(testClientRedirect) + "&code_verifier=x", []string{"Content-Type", form}, false},
		{"TokenJunkRefresh", "POST", "/oauth/token", "grant_type=refresh_token&client_id=page&refresh_token=" + strings.Repeat("A", 5000), []string{"Content-Type", form}, false},
		{"TokenJSON", "POST", "/oauth/token", `{"grant_type":"client_credentials"}`, []string{"Content-Type", "application/json"}, false},
		{"TokenCCPublic", "POST", "/oauth/token", "grant_type=client_credentials&client_id=page", []string{"Content-Type", form}, false},
		{"TokenCCBadScope", "POST", "/oauth/token", "grant_type=client_credentials&scope=admin", []string{"Content-Type", form, "Authorization", basic("rsa", testClientSecret)}, false},
		{"UserinfoNoToken", "GET", "/userinfo", "", nil, false},
		{"UserinfoJunk", "GET", "/userinfo", "", []string{"Authorization", "Bearer a.b.c"}, false},
		{"MeJunk", "GET", "/me", "", []string{"Authorization", "Bearer junk"}, false},
		{"RevokeNoClient", "POST", "/oauth/revoke", "token=x", []string{"Content-Type", form}, false},
		{"IntrospectNoAuth", "POST", "/oauth/introspect", "token=x", []string{"Content-Type", form}, false},
		{"IntrospectWrongSecret", "POST", "/oauth/introspect", "token=x", []string{"Content-Type", form, "Authorization", basic("rsa", "wrong-secret-0123456789")}, false},
		{"AuthorizeUnknownClient", "GET", "/login?client_id=nobody&response_type=code&scope=openid&redirect_uri=" + url.QueryEscape(testClientRedirect), "", nil, true},
		{"AuthorizeNoRedirect", "GET", "/login?client_id=page&response_type=code&scope=openid", "", nil, true},
		{"AuthorizeRequestObject", "GET", "/login?client_id=page&request=eyJ.eyJ.x", "", nil, true},
		{"LogoutJunkHint", "GET", "/logout?id_token_hint=a.b.c", "", nil, true},
		{"LogoutUnregistered", "GET", "/logout?client_id=page&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F", "", nil, true},
		{"LoginQRUnknownFlow", "GET", "/login/qr?flow=nope", "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.do(tc.method, h.svc.URL+tc.path, tc.body, tc.headers...)
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tc.page {
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Errorf("not a page: %s %.200s", resp.Header.Get("Content-Type"), body)
				}
				return
			}
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Errorf("not a JSON error: %d %.200s", resp.StatusCode, body)
			}
		})
	}
}

// TestSessionRefresh_RefusesClientTokens: the first-party /session/refresh
// does not redeem the refresh token of an OpenID client's login (it would
// mint an access JWT without the client's client_id, outside the client's
// family); the token stays good at the token endpoint, for its client.
func TestSessionRefresh_RefusesClientTokens(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	rt := h.offlineTokens(c)["refresh_token"].(string)
	resp, body := c.do("POST", h.svc.URL+"/session/refresh", `{"refresh_token":"`+rt+`"}`, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "invalid_grant") {
		t.Errorf("/session/refresh with a client's refresh token: %d %s", resp.StatusCode, body)
	}
	st, out := h.redeem(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"page"}}, "", "")
	if st != http.StatusOK || out["access_token"] == nil {
		t.Errorf("the client's own refresh after the refused one: %d %v", st, out)
	}
}

// TestLogout_AsksWithoutIDTokenHint: RP-Initiated Logout without an
// id_token_hint asks the user first (a link or a form of another site
// cannot log the user out); the answer is a POST from the service's own
// page, carrying client_id, post_logout_redirect_uri and state.
func TestLogout_AsksWithoutIDTokenHint(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	h.login(c, wechat.ScopeBase, "oWXEMU_alice", "allow")
	loggedIn := func() bool {
		t.Helper()
		resp, _ := c.do("GET", h.svc.URL+"/verify", "")
		return resp.StatusCode == http.StatusOK
	}
	if !loggedIn() {
		t.Fatal("/verify with the session cookie before any logout: not logged in")
	}
	q := url.Values{"client_id": {"page"}, "post_logout_redirect_uri": {testPage}, "state": {"s1"}}
	resp, body := c.do("GET", h.svc.URL+"/logout?"+q.Encode(), "")
	for _, want := range []string{`action="` + h.svc.URL + `/logout"`, `name="confirm" value="1"`, `name="state" value="s1"`,
		`name="post_logout_redirect_uri" value="` + testPage + `"`, "退出登录"} {
		if !strings.Contains(body, want) {
			t.Errorf("the question page lacks %s: %d %s", want, resp.StatusCode, body)
		}
	}
	if resp.StatusCode != http.StatusOK || !loggedIn() {
		t.Fatalf("GET /logout without id_token_hint: %d, logged in afterwards: %v", resp.StatusCode, loggedIn())
	}
	answer := url.Values{"confirm": {"1"}, "client_id": {"page"}, "post_logout_redirect_uri": {testPage}, "state": {"s1"}}.Encode()
	form := "application/x-www-form-urlencoded"
	for _, origin := range []string{"https://evil.example", "null"} {
		resp, _ = c.do("POST", h.svc.URL+"/logout", answer, "Content-Type", form, "Origin", origin)
		if resp.StatusCode != http.StatusOK || !loggedIn() {
			t.Errorf("a confirmation posted from Origin %s: %d, logged in afterwards: %v", origin, resp.StatusCode, loggedIn())
		}
	}
	resp, _ = c.do("POST", h.svc.URL+"/logout", answer, "Content-Type", form, "Origin", h.svc.URL)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != testPage+"?state=s1" {
		t.Errorf("the confirmation from the service's page: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loggedIn() {
		t.Error("still logged in after the confirmed logout")
	}
}

// TestUserInfo_InvalidToken: /userinfo answers a bad access token with
// RFC 6750's invalid_token and 401.
func TestUserInfo_InvalidToken(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	resp, body := c.do("GET", h.svc.URL+"/userinfo", "", "Authorization", "Bearer a.b.c")
	var out map[string]any
	if json.Unmarshal([]byte(body), &out) != nil || resp.StatusCode != http.StatusUnauthorized || out["error"] != "invalid_token" {
		t.Errorf("/userinfo with a junk token: %d %s", resp.StatusCode, body)
	}
}
