package test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxauth/wxauth/test/e2e"
)

// TestBrowser_QRLogin opens the example H5 page in a desktop Chromium:
// wxauth.js's silent attempt (prompt=none) gets login_required at once, so
// the page shows its sign-in buttons; signing in sends the desktop browser
// through the authorization endpoint to the QR login page. Once the page's
// event stream is open, the emulator's POST /emu/scan makes Alice scan the
// code; the page learns it (Server-Sent Events), completes the login and
// lands back on the H5 page with a code, which wxauth.js exchanges. Then
// the same by hand after a logout: a second tab taps "scan as Bob" on the
// emulator's scan page that the QR code's content names.
func TestBrowser_QRLogin(t *testing.T) {
	p := startDev(t)
	svc, emu, h5 := p.URL("service"), p.URL("emulator"), p.URL("h5")
	e2e.WaitReady(t, svc)
	ctx := newChromium(t, qrDesktopUA)

	err := chromedp.Do(ctx, chromedp.Navigate(h5+"/"), chromedp.WaitVisible(chromedp.ID("signed-out")),
		chromedp.Click(chromedp.ID("login-base")), chromedp.WaitVisible(chromedp.ID("qr-image")))
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("qr-login"), "data-ticket"))
	if err != nil || ticket.Value == "" {
		t.Fatalf("QR page has no ticket: %v", err)
	}
	if s := text(t, ctx, "qr-status"); !strings.Contains(s, "Waiting for your scan") {
		t.Errorf("QR page status %q", s)
	}
	// The image is a PNG the service rendered from the ticket's url.
	width, err := chromedp.Run(ctx, chromedp.Poll[int](`document.getElementById("qr-image").complete && document.getElementById("qr-image").naturalWidth`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil || width == 0 {
		t.Fatalf("QR image did not load: %v (width %d)", err, width)
	}
	// The event stream is open: the scan below reaches the page by push.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("qr-login").dataset.stream === "open"`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("event stream never opened: %v", err)
	}

	if code, reply := qrEmuPost(t, emu, "/emu/scan", `{"openid":"oWXEMU_alice","ticket":"`+ticket.Value+`"}`); code != http.StatusOK || reply != qrConfirmText {
		t.Fatalf("/emu/scan: %d, reply %q", code, reply)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("signed-in"))); err != nil {
		t.Fatal(err)
	}
	apiOK(t, ctx)
	if openid := text(t, ctx, "openid"); openid != "oWXEMU_alice" {
		t.Errorf("H5 page shows openid %q", openid)
	}
	if scope := text(t, ctx, "scope"); !strings.Contains(scope, "openid") || strings.Contains(scope, "profile") {
		t.Errorf("H5 page shows scope %q", scope)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(location, h5) {
		t.Errorf("ended at %s", location)
	}
	noTokensLeft(t, ctx)

	// By hand, after a logout: the QR page links the emulator's scan page
	// (the QR code's content), where a second tab taps "scan as Bob", who
	// does not follow.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("signed-out")),
		chromedp.Click(chromedp.ID("login-base")), chromedp.WaitVisible(chromedp.ID("qr-dev")))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("qr-dev"), "href"))
	if err != nil || !strings.HasPrefix(dev.Value, emu+"/q/") {
		t.Fatalf("development link %q: %v", dev.Value, err)
	}
	tab, cancel := chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Do(tab, chromedp.Navigate(dev.Value), chromedp.Click(chromedp.ID("scan-oWXEMU_bob")),
		chromedp.WaitVisible(chromedp.ID("result"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("signed-in"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("openid").textContent === "oWXEMU_bob"`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("H5 page shows openid %q after Bob's scan", text(t, ctx, "openid"))
	}
}
