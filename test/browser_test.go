package test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxauth/wxauth/examples/h5"
	"github.com/wxauth/wxauth/test/e2e"
)

// wechatUA is the user agent of WeChat's in-app browser on iOS.
const wechatUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN"

// newChromium starts a headless Debian Chromium with userAgent, or skips
// the test when none is installed (CI installs it and sets
// WXAUTH_TEST_REQUIRE_CHROMIUM=1, which turns the skip into a failure).
func newChromium(t *testing.T, userAgent string) context.Context {
	t.Helper()
	path := ""
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p2, err := exec.LookPath(p); err == nil {
			path = p2
			break
		}
	}
	if path == "" {
		if os.Getenv("WXAUTH_TEST_REQUIRE_CHROMIUM") != "" {
			t.Fatal("no Chromium installed (apt-get install chromium)")
		}
		t.Skip("no Chromium installed: apt-get install chromium to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserAgent(userAgent),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// TestBrowser_Login drives the example H5 page (which includes wxauth.js)
// in Chromium with WeChat's user agent through the emulator's pages: the
// silent snsapi_base login when the page opens (the emulator asks which
// user; WeChat would not), the page's API call with the access token, a
// refresh, the JS-SDK signature, logout, an snsapi_userinfo login with
// consent, a reload answered silently (prompt=none), and a silent attempt
// after logout that finds no login. After each login no token, code or
// state is left in the address bar, localStorage or sessionStorage.
func TestBrowser_Login(t *testing.T) {
	p := startDev(t)
	svc, h5 := p.URL("service"), p.URL("h5")
	e2e.WaitReady(t, svc)

	t.Run("BothScopes", func(t *testing.T) {
		ctx := newChromium(t, wechatUA)
		err := chromedp.Do(ctx,
			chromedp.Navigate(h5+"/"),
			chromedp.WaitVisible(chromedp.ID("user-oWXEMU_alice")),
			clickThrough("user-oWXEMU_alice", "signed-in"),
		)
		if err != nil {
			t.Fatal(err)
		}
		apiOK(t, ctx)
		if openid, nickname := text(t, ctx, "openid"), text(t, ctx, "nickname"); openid != "oWXEMU_alice" || !strings.Contains(nickname, "no profile") {
			t.Errorf("silent login: page shows openid %q nickname %q", openid, nickname)
		}
		if scope := text(t, ctx, "scope"); strings.Contains(scope, "profile") || strings.Contains(scope, "userinfo") {
			t.Errorf("silent login: scope %q", scope)
		}
		first := noTokensLeft(t, ctx)

		// Refresh: a new access token from the rotating refresh token, and
		// the API accepts it.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("refresh"))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("refresh").dataset.count === "1"`,
			chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			t.Fatalf("refresh: %v (page says %q %q)", err, text(t, ctx, "status"), text(t, ctx, "error"))
		}
		second := accessToken(t, ctx)
		if second == "" || second == first {
			t.Errorf("refresh kept the access token")
		}
		apiOK(t, ctx)

		// JS-SDK: the page gets a wx.config signature the emulator accepts.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("jssdk")), chromedp.WaitVisible(chromedp.ID("jssdk-result"))); err != nil {
			t.Fatal(err)
		}
		valid, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById("jssdk-result").dataset.valid`,
			chromedp.WithPollingTimeout(10*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		if valid != "true" {
			t.Errorf("wx.config signature valid = %q: %s", valid, text(t, ctx, "jssdk-result"))
		}

		// Logout: the signed-out view, and the login is over at wxauth too.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("signed-out"))); err != nil {
			t.Fatal(err)
		}
		if status := userinfoStatus(t, ctx, svc, second); status != http.StatusUnauthorized {
			t.Errorf("userinfo with the access token after logout: %d, want 401", status)
		}

		// The profile: snsapi_userinfo, with WeChat's consent page.
		err = chromedp.Do(ctx,
			clickThrough("login-userinfo", "user-oWXEMU_alice", "allow", "signed-in"),
		)
		if err != nil {
			t.Fatal(err)
		}
		if nickname := text(t, ctx, "nickname"); nickname != "Alice 爱丽丝" {
			t.Errorf("snsapi_userinfo: page shows nickname %q", nickname)
		}
		apiOK(t, ctx)
		if scope := text(t, ctx, "scope"); !strings.Contains(scope, "profile") && !strings.Contains(scope, "snsapi_userinfo") {
			t.Errorf("snsapi_userinfo: scope %q", scope)
		}
		noTokensLeft(t, ctx)

		// A reload loses the tokens with the page; wxauth.js asks again with
		// prompt=none, which wxauth answers from its browser-login cookie
		// without any WeChat page.
		marked := `window.__before = true`
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](marked)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		if status := settled(t, ctx); status != "Signed in. 已登录。" || text(t, ctx, "nickname") != "Alice 爱丽丝" {
			t.Fatalf("after a reload the page says %q, nickname %q", status, text(t, ctx, "nickname"))
		}
		apiOK(t, ctx)
		noTokensLeft(t, ctx)

		// After logout the same silent request finds no login at wxauth:
		// the logout cleared its browser-login cookie too.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("signed-out"))); err != nil {
			t.Fatal(err)
		}
		silent := marked + `, wxauth.login({scope: "snsapi_userinfo", prompt: "none"}), true`
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](silent)); err != nil {
			t.Fatal(err)
		}
		if status := settled(t, ctx); status != "Not signed in. 未登录。" {
			t.Errorf("a silent login after logout: the page says %q (%s)", status, text(t, ctx, "error"))
		}
		noTokensLeft(t, ctx)
	})

	// A code and state this tab did not ask for (a login CSRF attempt, or a
	// stale link) are never exchanged: the page reports invalid_state and
	// cleans the address bar.
	t.Run("ForeignCallback", func(t *testing.T) {
		ctx := newChromium(t, wechatUA)
		err := chromedp.Do(ctx, chromedp.Navigate(h5+"/?code=stolen-code&state=forged-state"), chromedp.WaitVisible(chromedp.ID("error")))
		if err != nil {
			t.Fatal(err)
		}
		if msg := text(t, ctx, "error"); !strings.Contains(msg, "invalid_state") {
			t.Errorf("foreign callback: page says %q", msg)
		}
		if tok := noTokensLeft(t, ctx); tok != "" {
			t.Errorf("foreign callback: the page holds an access token")
		}
	})

	t.Run("SnapshotUser", func(t *testing.T) {
		ctx := newChromium(t, wechatUA)
		// Snapshot mode exists for snsapi_userinfo only: the page's silent
		// snsapi_base login goes through, and the profile login meets the
		// snapshot page.
		err := chromedp.Do(ctx,
			chromedp.Navigate(h5+"/"),
			chromedp.WaitVisible(chromedp.ID("user-oWXEMU_snap")),
			clickThrough("user-oWXEMU_snap", "logout", "login-userinfo", "user-oWXEMU_snap", "allow", "error"),
		)
		if err != nil {
			t.Fatal(err)
		}
		if msg := text(t, ctx, "error"); !strings.Contains(msg, "使用完整服务") {
			t.Errorf("snapshot user: page says %q", msg)
		}
		noTokensLeft(t, ctx)
	})
}

// TestBrowser_Renewal runs the example page against `authsvc serve` (its
// own client registry, one-minute access tokens) behind an API that refuses
// the first access token it sees: wxauth.fetch meets the 401, rotates the
// refresh token at the token endpoint, retries with the new access token,
// and the page shows the API's answer. Then the tab comes back to the
// foreground and wxauth.js renews the token ahead of its expiry.
func TestBrowser_Renewal(t *testing.T) {
	var (
		page http.Handler
		mu   sync.Mutex
		seen []string // Authorization headers of /api/hello, in order
	)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		next, first := page, false
		if r.URL.Path == "/api/hello" {
			seen = append(seen, r.Header.Get("Authorization"))
			first = len(seen) == 1
		}
		mu.Unlock()
		if first {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(site.Close)
	clientsFile := filepath.Join(t.TempDir(), "clients.yaml")
	writeFile(t, clientsFile, "clients:\n  - client_id: h5-demo\n    public: true\n    redirect_uris: [\""+site.URL+"/\"]\n")
	// Access tokens of one minute: always within the minute before expiry
	// in which wxauth.js renews them.
	svc, emu := startPair(t, "plain", map[string]string{"WXAUTH_CLIENTS": clientsFile, "WXAUTH_ACCESS_TOKEN_TTL": "1m"})
	mu.Lock()
	page = h5.Handler(svc, emu)
	mu.Unlock()

	ctx := newChromium(t, wechatUA)
	err := chromedp.Do(ctx,
		chromedp.Navigate(site.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("user-oWXEMU_bob")),
		clickThrough("user-oWXEMU_bob", "signed-in"),
	)
	if err != nil {
		t.Fatal(err)
	}
	apiOK(t, ctx)
	mu.Lock()
	auths := append([]string(nil), seen...)
	mu.Unlock()
	if len(auths) != 2 || auths[0] == auths[1] || auths[1] != "Bearer "+accessToken(t, ctx) {
		t.Fatalf("the API saw %d requests; the retry did not carry the page's new access token", len(auths))
	}
	if openid := text(t, ctx, "openid"); openid != "oWXEMU_bob" {
		t.Errorf("page shows openid %q", openid)
	}

	// A tab coming back to the foreground renews a token that expires
	// within the minute, before any request fails.
	before := auths[1]
	renewed := `document.dispatchEvent(new Event("visibilitychange")), true`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](renewed)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`"Bearer " + wxauth.accessToken() !== `+strconv.Quote(before),
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the access token was not renewed ahead of its expiry: %v", err)
	}
}

// settled waits until a page loaded after window.__before was set has
// finished wxauth.ready() (its status line says signed in or not) and
// returns the status line.
func settled(t *testing.T, ctx context.Context) string {
	t.Helper()
	const done = `!window.__before && /已登录|未登录/.test(document.getElementById("status").textContent)`
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Evaluating fails while the page navigates (it leaves for /login
		// and comes back): try again until the new page has settled.
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](done))
		if err == nil && ok {
			return text(t, ctx, "status")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not settle (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// apiOK waits for the page's call of its API (/api/hello, the access token
// verified against wxauth's JWKS) to succeed.
func apiOK(t *testing.T, ctx context.Context) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("api-result").dataset.status === "200"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatalf("the page's API call: %v: %s", err, text(t, ctx, "api-result"))
	}
}

// accessToken is the access token wxauth.js holds in memory.
func accessToken(t *testing.T, ctx context.Context) string {
	t.Helper()
	tok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`wxauth.accessToken() || ""`))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// noTokensLeft checks that the page's address bar, localStorage and
// sessionStorage hold no code, state, verifier or token, and returns the
// access token wxauth.js holds in memory.
func noTokensLeft(t *testing.T, ctx context.Context) string {
	t.Helper()
	tok := accessToken(t, ctx)
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage)})`))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"code=", "state=", "access_token", "id_token", "eyJ"} {
		if strings.Contains(location, bad) {
			t.Errorf("address bar holds %q: %s", bad, location)
		}
	}
	for _, bad := range []string{"eyJ", "verifier", "pending", "refresh"} {
		if strings.Contains(stored, bad) {
			t.Errorf("storage holds %q: %s", bad, stored)
		}
	}
	if tok != "" && strings.Contains(stored, tok) {
		t.Errorf("storage holds the access token: %s", stored)
	}
	return tok
}

// userinfoStatus is the status of wxauth's /userinfo for token, asked from
// outside the browser.
func userinfoStatus(t *testing.T, ctx context.Context, svc, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// text returns the visible text of the element with id.
func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return s
}

// clickThrough clicks the element of each id in turn, waiting after each
// click until the element of the next id is visible; the last id is only
// waited for.
func clickThrough(ids ...string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for i, id := range ids[:len(ids)-1] {
		steps = append(steps, chromedp.Click(chromedp.ID(id)), chromedp.WaitVisible(chromedp.ID(ids[i+1])))
	}
	return chromedp.Steps(steps...)
}
