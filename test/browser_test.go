package test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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

// TestBrowser_Login drives the example H5 page in Chromium with WeChat's user
// agent through the emulator's pages, for both scopes.
func TestBrowser_Login(t *testing.T) {
	p := startDev(t)
	svc, h5 := p.URL("service"), p.URL("h5")
	e2e.WaitReady(t, svc)

	t.Run("snsapi_userinfo", func(t *testing.T) {
		ctx := newChromium(t, wechatUA)
		// No session: the page goes to /login, then to WeChat's (the emulator's) user picker.
		err := chromedp.Do(ctx,
			chromedp.Navigate(h5+"/"),
			chromedp.WaitVisible(chromedp.ID("user-oWXEMU_alice")),
			chromedp.Click(chromedp.ID("user-oWXEMU_alice")),
			chromedp.WaitVisible(chromedp.ID("allow")),
			chromedp.Click(chromedp.ID("allow")),
			chromedp.WaitVisible(chromedp.ID("signed-in")),
		)
		if err != nil {
			t.Fatal(err)
		}
		nickname := text(t, ctx, "nickname")
		scope := text(t, ctx, "scope")
		if nickname != "Alice 爱丽丝" || scope != "snsapi_userinfo" {
			t.Errorf("page shows nickname %q scope %q", nickname, scope)
		}
		location, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(location, "access_token") {
			t.Errorf("the token stayed in the address bar: %s", location)
		}

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

		// Logout shows the signed-out view.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("signed-out"))); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("snsapi_base", func(t *testing.T) {
		ctx := newChromium(t, wechatUA)
		err := chromedp.Do(ctx,
			chromedp.Navigate(svc+"/login?scope=snsapi_base&redirect="+url.QueryEscape(h5+"/")),
			chromedp.WaitVisible(chromedp.ID("user-oWXEMU_bob")),
			chromedp.Click(chromedp.ID("user-oWXEMU_bob")),
			chromedp.WaitVisible(chromedp.ID("signed-in")),
		)
		if err != nil {
			t.Fatal(err)
		}
		if scope, openid := text(t, ctx, "scope"), text(t, ctx, "openid"); scope != "snsapi_base" || openid != "oWXEMU_bob" {
			t.Errorf("page shows scope %q openid %q", scope, openid)
		}
	})
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
