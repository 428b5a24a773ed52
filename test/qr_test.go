package test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/test/e2e"
)

// qrDesktopUA is a desktop Chrome: no MicroMessenger, so /login goes to the
// QR login page.
const qrDesktopUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"

// qrConfirmText and qrRefusedText are qrlogin's default chat replies.
const (
	qrConfirmText = "已登录 / Signed in"
	qrRefusedText = "登录二维码已过期或已使用"
)

// desktop is a desktop browser: cookies kept, redirects not followed.
type desktop struct{ *e2e.Browser }

func newDesktop(t *testing.T) *desktop {
	return &desktop{e2e.NewBrowser(t, qrDesktopUA)}
}

// do sends method u with body of type contentType (none when empty) and
// fails the test, without stopping it, on a server error.
func (d *desktop) do(method, u, contentType, body string) (*http.Response, string) {
	d.T.Helper()
	resp, body := d.Do(method, u, body, "Content-Type", contentType)
	if resp.StatusCode >= 500 {
		d.T.Errorf("%s %s: server error %d %s", method, resp.Request.URL.Path, resp.StatusCode, body)
	}
	return resp, body
}

var (
	qrPageIDRE     = regexp.MustCompile(`data-id="([0-9A-Za-z]{22})"`)
	qrPageTicketRE = regexp.MustCompile(`data-ticket="([^"]+)"`)
)

// qrPage runs the desktop /login to the QR page and returns the attempt's
// id and ticket.
func (d *desktop) qrPage(svc, h5 string) (id, ticket string) {
	d.T.Helper()
	resp, body := d.do("GET", svc+"/login?redirect="+url.QueryEscape(h5+"/"), "", "")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/qr/login?redirect=") {
		d.T.Fatalf("desktop /login: %d %q %s", resp.StatusCode, loc, body)
	}
	resp, body = d.do("GET", svc+loc, "", "")
	m, tk := qrPageIDRE.FindStringSubmatch(body), qrPageTicketRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || tk == nil {
		d.T.Fatalf("/qr/login: %d %s", resp.StatusCode, body)
	}
	return m[1], html.UnescapeString(tk[1])
}

func (d *desktop) status(svc, id string) string {
	d.T.Helper()
	_, body := d.do("GET", svc+"/qr/sessions/"+id, "", "")
	var s struct {
		Status string `json:"status"`
	}
	json.Unmarshal([]byte(body), &s)
	return s.Status
}

// qrEmuPost posts JSON to the emulator's control API and returns the status
// and the reply text the service answered (for /emu/scan, /emu/subscribe).
func qrEmuPost(t *testing.T, emu, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(emu+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Status int            `json:"status"`
		Reply  map[string]any `json:"reply"`
		Valid  bool           `json:"valid"`
		Error  string         `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&res)
	if resp.StatusCode == http.StatusOK && path != "/emu/clock" && (res.Status != http.StatusOK || !res.Valid) {
		t.Errorf("%s: the service answered %d, valid %v: %s", path, res.Status, res.Valid, res.Error)
	}
	content, _ := res.Reply["Content"].(string)
	return resp.StatusCode, content
}

// qrMeSub returns the sub of /me for jwt.
func qrMeSub(t *testing.T, svc, jwt string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, svc+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+jwt)
	var me struct {
		Sub string `json:"sub"`
	}
	if code := e2e.DoJSON(t, req, &me); code != http.StatusOK || me.Sub == "" {
		t.Fatalf("/me: %d", code)
	}
	return me.Sub
}

// TestDev_QRLogin logs a follower (SCAN) and a non-follower (subscribe with
// qrscene_) in on a desktop through the running binary and the emulator's
// POST /emu/scan, and checks that each gets the sub of their web
// authorization; then a reused code, a scene that is no login (the sample
// rules answer it) and a code expired at the emulator: no 5xx anywhere.
func TestDev_QRLogin(t *testing.T) {
	t.Parallel()
	p := startDev(t)
	svc, emu, h5 := p.URL("service"), p.URL("emulator"), p.URL("h5")
	e2e.WaitReady(t, svc)
	if !strings.Contains(p.Output(), "Desktop login (QR code): "+svc+"/qr/login?redirect=") {
		t.Errorf("authsvc dev does not print the desktop login URL:\n%s", p.Output())
	}

	used := map[string]string{} // openid -> a completed attempt's ticket
	var secrets []string        // tokens and binding keys that must reach no log line
	for _, tc := range []struct{ name, openid string }{
		{"FollowerSCAN", "oWXEMU_alice"},
		{"NonFollowerSubscribe", "oWXEMU_bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDesktop(t)
			id, ticket := d.qrPage(svc, h5)
			if st := d.status(svc, id); st != "pending" {
				t.Fatalf("status %q", st)
			}
			u, _ := url.Parse(svc + "/qr/sessions/" + id + "/complete")
			keys := d.Client.Jar.Cookies(u)
			if len(keys) != 1 || keys[0].Name != "wxauth_qr" {
				t.Fatalf("binding cookie for the attempt: %v", keys)
			}
			secrets = append(secrets, keys[0].Value)
			resp, _ := d.do("GET", svc+"/qr/sessions/"+id+"/qr.png", "", "")
			if resp.Header.Get("Content-Type") != "image/png" {
				t.Errorf("qr.png: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if code, reply := qrEmuPost(t, emu, "/emu/scan", `{"openid":"`+tc.openid+`","ticket":"`+ticket+`"}`); code != http.StatusOK || reply != qrConfirmText {
				t.Fatalf("/emu/scan: %d, reply %q", code, reply)
			}
			if st := d.status(svc, id); st != "confirmed" {
				t.Fatalf("status after the scan %q", st)
			}
			resp, body := d.do("GET", svc+"/qr/sessions/"+id+"/complete", "", "")
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != h5+"/" {
				t.Fatalf("complete: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			jwt := d.SessionJWT(svc)
			qrSub := qrMeSub(t, svc, jwt)
			secrets = append(secrets, jwt)
			for _, c := range resp.Cookies() {
				if c.Value != "" {
					secrets = append(secrets, c.Value)
				}
			}
			used[tc.openid] = ticket

			// The same person by (scripted) web authorization inside WeChat.
			b := newBrowser(t)
			cb, r := b.Authorize(svc, h5+"/", "snsapi_base", tc.openid, "allow")
			if cb == "" {
				t.Fatalf("emulator did not redirect: %d", r.StatusCode)
			}
			r, body = b.Get(cb)
			if r.StatusCode != http.StatusFound {
				t.Fatalf("callback: %d %s", r.StatusCode, body)
			}
			if webSub := qrMeSub(t, svc, b.SessionJWT(svc)); webSub != qrSub {
				t.Errorf("QR login sub %q, web authorization sub %q", qrSub, webSub)
			}

			// Single use.
			if resp, _ := d.do("GET", svc+"/qr/sessions/"+id+"/complete", "", ""); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("second complete: %d", resp.StatusCode)
			}
		})
	}

	t.Run("NoSecretsInLogs", func(t *testing.T) {
		if len(secrets) < 4 {
			t.Fatalf("collected %d secrets", len(secrets))
		}
		out := p.Output()
		for _, s := range secrets {
			if len(s) >= 16 && strings.Contains(out, s) {
				t.Errorf("a token or key of the QR login reached the log")
			}
		}
	})

	t.Run("Reused", func(t *testing.T) {
		ticket := used["oWXEMU_alice"]
		if ticket == "" {
			t.Skip("no completed attempt")
		}
		if code, reply := qrEmuPost(t, emu, "/emu/scan", `{"openid":"oWXEMU_bob","ticket":"`+ticket+`"}`); code != http.StatusOK || !strings.HasPrefix(reply, qrRefusedText) {
			t.Errorf("scan of a used code: %d, reply %q", code, reply)
		}
	})

	t.Run("UnknownScene", func(t *testing.T) {
		// Not a login scene: the sample rules' subscribe-with-scene reply.
		code, reply := qrEmuPost(t, emu, "/emu/subscribe", `{"from":"oWXEMU_bob","scene":"promo"}`)
		if code != http.StatusOK || !strings.Contains(reply, "感谢扫码关注") {
			t.Errorf("subscribe with scene promo: %d, reply %q", code, reply)
		}
		// A login-shaped scene that names no attempt is refused in the chat.
		code, reply = qrEmuPost(t, emu, "/emu/subscribe", `{"from":"oWXEMU_bob","scene":"login_`+strings.Repeat("x", 22)+`"}`)
		if code != http.StatusOK || !strings.HasPrefix(reply, qrRefusedText) {
			t.Errorf("unknown login scene: %d, reply %q", code, reply)
		}
	})

	t.Run("ExpiredAtEmulator", func(t *testing.T) {
		// Last: it moves the emulator's clock past the code's 300 s.
		d := newDesktop(t)
		id, ticket := d.qrPage(svc, h5)
		if code, _ := qrEmuPost(t, emu, "/emu/clock", `{"advance_seconds":301}`); code != http.StatusOK {
			t.Fatalf("/emu/clock: %d", code)
		}
		if code, _ := qrEmuPost(t, emu, "/emu/scan", `{"openid":"oWXEMU_alice","ticket":"`+ticket+`"}`); code != http.StatusNotFound {
			t.Errorf("scan of an expired code: %d, want the emulator's 404", code)
		}
		// No scan reached the service: the attempt never confirms. (The
		// service's own expiry runs on its clock: internal/qrlogin and
		// internal/httpapi test it with a controlled one.)
		if st := d.status(svc, id); st != "pending" && st != "expired" {
			t.Errorf("status %q", st)
		}
		if resp, _ := d.do("GET", svc+"/qr/sessions/"+id+"/complete", "", ""); resp.StatusCode != http.StatusConflict {
			t.Errorf("complete of an unscanned attempt: %d", resp.StatusCode)
		}
	})
}
