package test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxauth/wxauth/test/e2e"
)

// Phone viewport of the pages test: an iPhone 14's CSS pixels.
const phoneWidth, phoneHeight = 390, 844

// artifactsDir returns where the browser tests keep their screenshots: the
// directory named by WXAUTH_TEST_ARTIFACTS (CI uploads it), else a new
// directory under the system's temp dir, which outlives the test so that
// its screenshots can be opened afterwards. The path is logged.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WXAUTH_TEST_ARTIFACTS")
	if dir == "" {
		d, err := os.MkdirTemp("", "wxauth-artifacts-")
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(d, "artifacts")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// pageCheck asserts what a newcomer must see on the page in ctx: every
// string of want in its visible text, none of the strings of never (the
// operator's detail), and no horizontal overflow at the phone viewport. It
// then saves a full-page screenshot as dir/name.png.
func pageCheck(t *testing.T, ctx context.Context, dir, name string, want, never []string) {
	t.Helper()
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatalf("%s: read text: %v", name, err)
	}
	for _, s := range want {
		if !strings.Contains(body, s) {
			t.Errorf("%s: page lacks %q:\n%s", name, s, body)
		}
	}
	for _, s := range never {
		if strings.Contains(body, s) {
			t.Errorf("%s: page shows %q:\n%s", name, s, body)
		}
	}
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if err != nil {
		t.Fatalf("%s: measure: %v", name, err)
	}
	if len(overflow) != 2 || overflow[0] > overflow[1] {
		t.Errorf("%s: horizontal overflow: scrollWidth %v > innerWidth", name, overflow)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser_Pages opens, at a phone's viewport with WeChat's user agent,
// every page a newcomer meets in `authsvc dev`: the service's landing page,
// its error pages, the emulator's user picker, consent page, declined page
// and both ways on from it, the chat page, the test users and the result of
// "scan as ..." on the QR scan page. Each must show its key text, offer the
// next action and fit the phone's width; the screenshots are kept (see
// artifactsDir).
func TestBrowser_Pages(t *testing.T) {
	p := startDev(t)
	svc, emu, h5 := p.URL("service"), p.URL("emulator"), p.URL("h5")
	e2e.WaitReady(t, svc)
	dir := artifactsDir(t)
	ctx := newChromium(t, wechatUA)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateScale(2))); err != nil {
		t.Fatal(err)
	}
	// What the operator's log may say and an end user must never read.
	never := []string{"WXAUTH_", "redirect not allowed", "<nil>", "%!"}

	t.Run("Home", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(svc+"/"), chromedp.WaitVisible(chromedp.ID("home"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "01-home", []string{"微信登录服务", "WeChat login service", "/.well-known/openid-configuration", "/healthz"}, never)
	})

	t.Run("LogoutQuestion", func(t *testing.T) {
		// RP-Initiated Logout without id_token_hint asks first; the answer
		// posts from the service's own page (Origin checked) and signs out.
		if err := chromedp.Do(ctx, chromedp.Navigate(svc+"/logout"), chromedp.WaitVisible(chromedp.ID("confirm"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "01b-logout-question", []string{"退出登录？", "Log out?", "取消"}, never)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("confirm")),
			chromedp.WaitVisible(chromedp.CSS(`main[data-error="signed_out"]`))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "01c-signed-out", []string{"已退出登录", "You are signed out"}, never)
	})

	t.Run("ErrorUnlistedRedirect", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(svc+"/login?redirect="+url.QueryEscape("https://evil.example/")), chromedp.WaitVisible(chromedp.ID("start"))); err != nil {
			t.Fatal(err)
		}
		// The allowlist's reason and the setting's name stay in the
		// operator's log line; the page says it in plain words.
		pageCheck(t, ctx, dir, "02-error-unlisted-redirect", []string{"请求无效", "Invalid request", "请求编号", "返回首页", "不在本服务允许返回的范围内"},
			[]string{"WXAUTH_", "redirect not allowed", "evil.example"})
		if href := attr(t, ctx, "start", "href"); href != svc+"/" {
			t.Errorf("start again goes to %q, want the service's root", href)
		}
		if id := text(t, ctx, "request-id"); id == "" {
			t.Error("no request id on the error page")
		}
	})

	t.Run("ErrorLoginExpired", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(svc+"/oauth/callback?state=Expired0123456789abcdef&code=x"), chromedp.WaitVisible(chromedp.ID("start"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "03-error-login-expired", []string{"登录链接已失效", "This login link has expired", "请求编号"}, never)
	})

	t.Run("PickerConsentDecline", func(t *testing.T) {
		// The example page: its silent snsapi_base login on load meets the
		// picker; then its profile login (snsapi_userinfo) asks Bob, who does
		// not follow the account, for consent.
		if err := chromedp.Do(ctx, chromedp.Navigate(h5+"/"), chromedp.WaitVisible(chromedp.ID("user-oWXEMU_bob"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "04-picker", []string{"谁在打开", "Who is opening", "Alice 爱丽丝", "oWXEMU_bob", "已关注", "模拟器说明"}, never)

		if err := chromedp.Do(ctx,
			clickThrough("user-oWXEMU_bob", "logout", "login-userinfo", "user-oWXEMU_bob", "allow")); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "05-consent", []string{"申请获得以下权限", "允许", "拒绝", "Bob"}, never)

		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("deny")), chromedp.WaitVisible(chromedp.ID("deny-continue"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "06-declined", []string{"Bob 拒绝了授权", "declined", "返回授权页", "redirect without code"}, never)

		// One way on: back to the consent page, which still works.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("back-to-consent")), chromedp.WaitVisible(chromedp.ID("deny"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "07-back-to-consent", []string{"申请获得以下权限", "Bob"}, never)

		// The other: decline again and return to the page without a code,
		// as WeChat does on some clients: the page learns access_denied.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("deny")), chromedp.WaitVisible(chromedp.ID("deny-continue")),
			chromedp.Click(chromedp.ID("deny-continue"))); err != nil {
			t.Fatal(err)
		}
		if !waitTrue(ctx, `location.href.startsWith(`+jsString(h5)+`) && /declined|拒绝/.test(document.body.innerText)`, 10*time.Second) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("after returning without a code: at %s, no access_denied message", loc)
		}
		pageCheck(t, ctx, dir, "08-declined-returned-to-page", nil, never)
	})

	t.Run("Chat", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(emu+"/emu/chat"), chromedp.WaitVisible(chromedp.ID("text")),
			chromedp.SendKeys(chromedp.ID("text"), "你好"), chromedp.Click(chromedp.ID("send"))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#log .them") !== null`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			t.Fatalf("no reply bubble: %v", err)
		}
		pageCheck(t, ctx, dir, "09-chat", []string{"公众号聊天", "Chat with the Official Account", "/wx", "This account is served by wxauth"}, never)
	})

	t.Run("TestUsers", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(emu+"/emu/users"), chromedp.WaitVisible(chromedp.ID("wx-users"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "10-test-users", []string{"测试用户", "oWXEMU_alice", "uWXEMU_alice", "Alice 爱丽丝", "oWXEMU_bob", "未关注", "format=json"}, never)
	})

	t.Run("EmulatorHomeAndAuthorizeError", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(emu+"/emu/"), chromedp.WaitVisible(chromedp.ID("wx-index"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "12-emulator-home", []string{"本地微信", "a local WeChat", "以关注者身份聊天", "/connect/oauth2/authorize"}, never)
		// An authorize link for another appid: WeChat's error page, no redirect.
		bad := emu + "/connect/oauth2/authorize?appid=wxnotthisone&redirect_uri=" + url.QueryEscape(svc+"/oauth/callback") +
			"&response_type=code&scope=snsapi_base&state=abc#wechat_redirect"
		if err := chromedp.Do(ctx, chromedp.Navigate(bad), chromedp.WaitVisible(chromedp.ID("errcode"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "13-emulator-authorize-error", []string{"40013", "invalid appid", "does not redirect"}, never)
	})

	t.Run("ScanResult", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(svc+"/qr/login?redirect="+url.QueryEscape(h5+"/")), chromedp.WaitVisible(chromedp.ID("qr-dev"))); err != nil {
			t.Fatal(err)
		}
		scan := attr(t, ctx, "qr-dev", "href")
		if !strings.HasPrefix(scan, emu+"/q/") {
			t.Fatalf("QR page links %q, not the emulator's scan page", scan)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(scan), chromedp.WaitVisible(chromedp.ID("scan-oWXEMU_alice")),
			chromedp.Click(chromedp.ID("scan-oWXEMU_alice")), chromedp.WaitVisible(chromedp.ID("scan-again"))); err != nil {
			t.Fatal(err)
		}
		pageCheck(t, ctx, dir, "11-scan-result", []string{"已扫码", "Scanned", "SCAN", "电脑上的登录页", "再扫一次"}, never)
	})
}

// attr returns the attribute name of the element with id (href: as the
// browser resolves it).
func attr(t *testing.T, ctx context.Context, id, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById(`+jsString(id)+`).`+name))
	if err != nil {
		t.Fatalf("%s of #%s: %v", name, id, err)
	}
	return v
}

// waitTrue evaluates expr until it is true or d has passed, across the
// navigations (and their torn-down contexts) happening meanwhile.
func waitTrue(ctx context.Context, expr string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return true
		}
	}
	return false
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestBrowser_DesktopAsInsideWeChat: in `authsvc dev` a desktop browser
// opening the example page logs in by QR code, as in production; the page's
// "as inside WeChat (emulated)" switch sends it through the in-WeChat path
// instead (the emulator's user picker), and back.
func TestBrowser_DesktopAsInsideWeChat(t *testing.T) {
	p := startDev(t)
	svc, h5 := p.URL("service"), p.URL("h5")
	e2e.WaitReady(t, svc)
	dir := artifactsDir(t)
	ctx := newChromium(t, qrDesktopUA)
	if err := chromedp.Do(ctx, chromedp.Navigate(h5+"/"), chromedp.WaitVisible(chromedp.ID("inside-wechat"))); err != nil {
		t.Fatal(err)
	}
	pageCheck(t, ctx, dir, "20-desktop-example-page", []string{"as inside WeChat (emulated)", "模拟微信内打开"}, nil)
	if err := chromedp.Do(ctx, clickThrough("inside-wechat", "login-base", "user-oWXEMU_alice")); err != nil {
		t.Fatalf("the switch did not lead to the emulator's user picker: %v", err)
	}
	pageCheck(t, ctx, dir, "21-desktop-as-inside-wechat-picker", []string{"谁在打开", "Alice 爱丽丝"}, nil)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("user-oWXEMU_alice")), chromedp.WaitVisible(chromedp.ID("signed-in"))); err != nil {
		t.Fatal(err)
	}
	if openid := text(t, ctx, "openid"); openid != "oWXEMU_alice" {
		t.Errorf("signed in as %q, want oWXEMU_alice", openid)
	}
	// Back to the desktop way: the next sign-in shows the QR login page.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("inside-wechat")), chromedp.Click(chromedp.ID("inside-wechat")),
		chromedp.WaitVisible(chromedp.ID("logout")), chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login-base")), chromedp.Click(chromedp.ID("login-base"))); err != nil {
		t.Fatal(err)
	}
	if !waitTrue(ctx, `location.pathname === "/qr/login"`, 10*time.Second) {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Errorf("after switching back, sign-in went to %s, want the QR login page", loc)
	}
}
