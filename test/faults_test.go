package test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

// emuFault scripts a failure of a WeChat path on the emulator (POST
// /emu/faults).
func emuFault(t *testing.T, emu, body string) {
	t.Helper()
	resp, err := http.Post(emu+"/emu/faults", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/emu/faults %s: %d", body, resp.StatusCode)
	}
}

// TestFaults_CodeExchange drives WeChat's bad days on
// sns/oauth2/access_token through the emulator and the running binary.
func TestFaults_CodeExchange(t *testing.T) {
	t.Parallel()
	p := startDev(t)
	svc, emu, h5 := p.URL("service"), p.URL("emulator"), p.URL("h5")
	e2e.WaitReady(t, svc)

	login := func(t *testing.T) (*http.Response, string) {
		t.Helper()
		b := newBrowser(t)
		// The service's own deadline for /oauth/callback is 8 s; this bound
		// only keeps a hanging service from hanging the test.
		b.Client.Timeout = 30 * time.Second
		cb, resp := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_bob", "allow")
		if cb == "" {
			t.Fatalf("emulator did not redirect: %d", resp.StatusCode)
		}
		return b.Get(cb)
	}
	succeeded := func(t *testing.T, resp *http.Response, body string) {
		t.Helper()
		session := false
		for _, c := range resp.Cookies() {
			session = session || c.Name == "wxauth_session" && c.Value != ""
		}
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != h5+"/" || !session {
			t.Fatalf("login did not complete: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}

	// Sequential: the faults are per path on one emulator.
	t.Run("BusyTwice", func(t *testing.T) {
		before := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"]
		emuFault(t, emu, `{"path":"/sns/oauth2/access_token","errcode":-1,"times":2}`)
		resp, body := login(t)
		succeeded(t, resp, body)
		if n := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"] - before; n != 3 {
			t.Errorf("sns/oauth2/access_token called %v times, want 3 (two -1, then success)", n)
		}
	})
	t.Run("BadGatewayNotRepeated", func(t *testing.T) {
		// A 502 comes after the code was sent: WeChat may have consumed it,
		// so the exchange is not repeated (a second try could only meet
		// 40163). The user gets the busy page with its retry link, or a
		// new authorization.
		before := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"]
		emuFault(t, emu, `{"path":"/sns/oauth2/access_token","status":502,"times":1}`)
		resp, body := login(t)
		if n := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"] - before; n != 1 {
			t.Errorf("sns/oauth2/access_token called %v times for one code, want 1", n)
		}
		busy := resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "/login?redirect=")
		restart := resp.StatusCode == http.StatusFound && strings.Contains(resp.Header.Get("Location"), "/connect/oauth2/authorize?")
		if !busy && !restart {
			t.Fatalf("after a 502: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})
	t.Run("AnswerLost", func(t *testing.T) {
		// WeChat consumes the code and the connection drops before its
		// answer: the exchange is not sent again (it could only meet
		// 40163); the authorization restarts once, silently for
		// snsapi_base, and the same browser ends logged in as Bob.
		before := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"]
		emuFault(t, emu, `{"path":"/sns/oauth2/access_token","drop_answer":true,"times":1}`)
		b := newBrowser(t)
		cb, _ := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_bob", "allow")
		resp, body := b.Get(cb)
		if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/connect/oauth2/authorize?") {
			t.Fatalf("lost answer: %d %q %s, want a new authorization", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		resp, _ = b.Get(resp.Header.Get("Location"), "X-Wxemu-User", "oWXEMU_bob", "X-Wxemu-Consent", "allow")
		resp, body = b.Get(resp.Header.Get("Location"))
		succeeded(t, resp, body)
		if n := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"] - before; n != 2 {
			t.Errorf("sns/oauth2/access_token called %v times, want 2 (one per code, none sent twice)", n)
		}
		if got := b.verifiedOpenID(svc); got != "oWXEMU_bob" {
			t.Errorf("logged in as %q, want oWXEMU_bob", got)
		}
	})
	t.Run("DoubleRedirect", func(t *testing.T) {
		// WeChat calls redirect_uri twice for one authorization, with two
		// codes (Android X5, a page refresh), both in flight at once: one
		// login for this browser, both answers carry it.
		before := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"]
		emuFault(t, emu, `{"path":"/connect/oauth2/authorize","double_redirect":true,"times":1}`)
		b := newBrowser(t)
		second, resp := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_bob", "allow")
		first := resp.Header.Get("X-Wxemu-First-Redirect")
		if first == "" || second == "" || first == second {
			t.Fatalf("no double redirect: %q %q", first, second)
		}
		type answer struct {
			status  int
			loc     string
			session string
		}
		answers := make(chan answer, 2)
		for _, u := range []string{first, second} {
			go func() {
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Header.Set("User-Agent", wechatUA)
				r, err := b.Client.Do(req)
				if err != nil {
					answers <- answer{}
					return
				}
				r.Body.Close()
				a := answer{status: r.StatusCode, loc: r.Header.Get("Location")}
				for _, c := range r.Cookies() {
					if c.Name == "wxauth_session" {
						a.session = c.Value
					}
				}
				answers <- a
			}()
		}
		a, c := <-answers, <-answers
		for _, x := range []answer{a, c} {
			if x.status != http.StatusFound || x.loc != h5+"/" {
				t.Fatalf("a callback of the pair: %+v, want 302 to the page", x)
			}
		}
		// Session cookies are sealed with a fresh nonce each time, so the
		// two values differ; one login means one code exchanged.
		if a.session == "" || c.session == "" {
			t.Errorf("an answer of the pair carries no session cookie")
		}
		if n := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"] - before; n != 1 {
			t.Errorf("sns/oauth2/access_token called %v times for one authorization, want 1 (one login)", n)
		}
		if got := b.verifiedOpenID(svc); got != "oWXEMU_bob" {
			t.Errorf("logged in as %q, want oWXEMU_bob", got)
		}
	})
	t.Run("Delay10s", func(t *testing.T) {
		emuFault(t, emu, `{"path":"/sns/oauth2/access_token","delay_ms":10000,"times":1}`)
		resp, body := login(t)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("slow WeChat: %d, want 503 with the busy page: %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("Content-Type %q, want our HTML page", ct)
		}
		for _, want := range []string{"微信繁忙", "WeChat is busy", `id="retry"`, "/login?redirect="} {
			if !strings.Contains(body, want) {
				t.Errorf("busy page lacks %q:\n%s", want, body)
			}
		}
		// Once WeChat is back, a new login works.
		req, _ := http.NewRequest(http.MethodDelete, emu+"/emu/faults", nil)
		if r, err := http.DefaultClient.Do(req); err == nil {
			r.Body.Close()
		}
		resp, body = login(t)
		succeeded(t, resp, body)
	})
	t.Run("ErrorCode", func(t *testing.T) {
		emuFault(t, emu, `{"path":"/sns/oauth2/access_token","errcode":40164,"times":1}`)
		resp, body := login(t)
		if resp.StatusCode < 400 || !strings.Contains(body, "40164") || !strings.Contains(body, "<html") {
			t.Fatalf("refused exchange: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("Readyz", func(t *testing.T) {
		var v map[string]any
		if code := e2e.GetJSON(t, svc+"/readyz", &v); code != http.StatusOK || v["status"] != "ready" {
			t.Fatalf("/readyz: %d %v", code, v)
		}
	})
}

// TestFaults_CircuitBreaker: WeChat answering 503 to every code exchange
// opens the circuit after a few failed logins: /readyz says "degraded", and
// the next login gets the busy page without the service calling WeChat.
func TestFaults_CircuitBreaker(t *testing.T) {
	t.Parallel()
	p := startDev(t)
	svc, emu, h5 := p.URL("service"), p.URL("emulator"), p.URL("h5")
	e2e.WaitReady(t, svc)
	emuFault(t, emu, `{"path":"/sns/oauth2/access_token","status":503,"times":1000}`)
	login := func() int {
		b := newBrowser(t)
		cb, _ := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_bob", "allow")
		resp, _ := b.Get(cb)
		return resp.StatusCode
	}
	for i := range 5 {
		if got := login(); got != http.StatusServiceUnavailable {
			t.Fatalf("login %d with WeChat down: %d, want 503", i, got)
		}
	}
	var ready map[string]string
	code := e2e.GetJSON(t, svc+"/readyz", &ready)
	if code != http.StatusOK || ready["status"] != "degraded" || !strings.Contains(ready["wechat"], "circuit open") {
		t.Errorf("/readyz with the circuit open: %d %v", code, ready)
	}
	before := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"]
	if got := login(); got != http.StatusServiceUnavailable {
		t.Errorf("login with the circuit open: %d, want 503", got)
	}
	if n := e2e.EmuCalls(t, emu)["/sns/oauth2/access_token"] - before; n != 0 {
		t.Errorf("the open circuit still called WeChat %v times", n)
	}
}

// verifiedOpenID returns the openid /verify names for the browser's cookie
// session, or "" when it is refused.
func (b *browser) verifiedOpenID(svc string) string {
	b.T.Helper()
	resp, _ := b.Get(svc + "/verify")
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return resp.Header.Get("X-Auth-Request-Openid")
}
