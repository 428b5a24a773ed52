package test

import (
	"encoding/json"
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
		b.c.Timeout = 30 * time.Second
		cb, resp := b.authorize(svc, h5, "snsapi_base", "oWXEMU_bob", "allow")
		if cb == "" {
			t.Fatalf("emulator did not redirect: %d", resp.StatusCode)
		}
		return b.get(cb)
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
		before := emuCalls(t, emu)["/sns/oauth2/access_token"]
		emuFault(t, emu, `{"path":"/sns/oauth2/access_token","errcode":-1,"times":2}`)
		resp, body := login(t)
		succeeded(t, resp, body)
		if n := emuCalls(t, emu)["/sns/oauth2/access_token"] - before; n != 3 {
			t.Errorf("sns/oauth2/access_token called %v times, want 3 (two -1, then success)", n)
		}
	})
	t.Run("BadGatewayNotRepeated", func(t *testing.T) {
		// A 502 comes after the code was sent: WeChat may have consumed it,
		// so the exchange is not repeated (a second try could only meet
		// 40163). The user gets the busy page with its retry link, or a
		// new authorization.
		before := emuCalls(t, emu)["/sns/oauth2/access_token"]
		emuFault(t, emu, `{"path":"/sns/oauth2/access_token","status":502,"times":1}`)
		resp, body := login(t)
		if n := emuCalls(t, emu)["/sns/oauth2/access_token"] - before; n != 1 {
			t.Errorf("sns/oauth2/access_token called %v times for one code, want 1", n)
		}
		busy := resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "/login?redirect=")
		restart := resp.StatusCode == http.StatusFound && strings.Contains(resp.Header.Get("Location"), "/connect/oauth2/authorize?")
		if !busy && !restart {
			t.Fatalf("after a 502: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
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
		resp, err := http.Get(svc + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || v["status"] != "ready" {
			t.Fatalf("/readyz: %d %v", resp.StatusCode, v)
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
		cb, _ := b.authorize(svc, h5, "snsapi_base", "oWXEMU_bob", "allow")
		resp, _ := b.get(cb)
		return resp.StatusCode
	}
	for i := range 5 {
		if got := login(); got != http.StatusServiceUnavailable {
			t.Fatalf("login %d with WeChat down: %d, want 503", i, got)
		}
	}
	resp, err := http.Get(svc + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready map[string]string
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || ready["status"] != "degraded" || !strings.Contains(ready["wechat"], "circuit open") {
		t.Errorf("/readyz with the circuit open: %d %v", resp.StatusCode, ready)
	}
	before := emuCalls(t, emu)["/sns/oauth2/access_token"]
	if got := login(); got != http.StatusServiceUnavailable {
		t.Errorf("login with the circuit open: %d, want 503", got)
	}
	if n := emuCalls(t, emu)["/sns/oauth2/access_token"] - before; n != 0 {
		t.Errorf("the open circuit still called WeChat %v times", n)
	}
}
