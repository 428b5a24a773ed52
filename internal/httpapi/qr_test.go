package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/qrlogin"
)

type qrCreated struct {
	ID        string `json:"id"`
	Ticket    string `json:"ticket"`
	QRURL     string `json:"qr_url"`
	ImageURL  string `json:"image_url"`
	ExpiresIn int    `json:"expires_in"`
}

func (c *client) create(base string) qrCreated {
	c.t.Helper()
	resp, body := c.do("POST", base+"/qr/sessions", `{"redirect":"`+testPage+`"}`)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("POST /qr/sessions: %d %s", resp.StatusCode, body)
	}
	var a qrCreated
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		c.t.Fatal(err)
	}
	return a
}

func (c *client) status(base, id string) string {
	c.t.Helper()
	resp, body := c.do("GET", base+"/qr/sessions/"+id, "")
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /qr/sessions/{id}: %d %s", resp.StatusCode, body)
	}
	var s struct {
		Status string `json:"status"`
	}
	json.Unmarshal([]byte(body), &s)
	return s.Status
}

// emuPush is the emulator's answer to a control call that pushes a message
// to the service (as POST /emu/send answers).
type emuPush struct {
	HTTPStatus int            `json:"-"`
	Status     int            `json:"status"` // the service's
	Reply      map[string]any `json:"reply"`
	Valid      bool           `json:"valid"`
	Error      string         `json:"error"`
}

// push posts the JSON body to the emulator's control path and returns its
// answer.
func (h *harness) push(t *testing.T, path, body string) emuPush {
	t.Helper()
	resp, err := http.Post(h.emu.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	res := emuPush{HTTPStatus: resp.StatusCode}
	json.NewDecoder(resp.Body).Decode(&res)
	return res
}

// scan makes openid scan ticket in the emulator and returns the text of
// the service's reply ("" when none).
func (h *harness) scan(t *testing.T, openid, ticket string) string {
	t.Helper()
	res := h.push(t, "/emu/scan", `{"openid":"`+openid+`","ticket":"`+ticket+`"}`)
	if res.HTTPStatus != http.StatusOK || res.Status != http.StatusOK || !res.Valid {
		t.Fatalf("/emu/scan: HTTP %d, callback %d, valid %v: %s", res.HTTPStatus, res.Status, res.Valid, res.Error)
	}
	content, _ := res.Reply["Content"].(string)
	return content
}

// subscribe makes openid follow through a QR code with scene in the
// emulator and returns the service's reply.
func (h *harness) subscribe(t *testing.T, openid, scene string) map[string]any {
	t.Helper()
	return h.push(t, "/emu/subscribe", `{"from":"`+openid+`","scene":"`+scene+`"}`).Reply
}

// webSub logs openid in by web authorization (in WeChat) on base and
// returns the JWT's sub.
func (h *harness) webSub(t *testing.T, base, openid string) string {
	t.Helper()
	c := newDesktopClient(t)
	resp, body := c.do("GET", base+"/login?scope=snsapi_base&redirect="+url.QueryEscape(testPage), "", "User-Agent", wechatAgent)
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/connect/oauth2/authorize") {
		t.Fatalf("/login in WeChat: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, _ = c.do("GET", resp.Header.Get("Location"), "", "User-Agent", wechatAgent, "X-Wxemu-User", openid, "X-Wxemu-Consent", "allow")
	resp, body = c.do("GET", resp.Header.Get("Location"), "", "User-Agent", wechatAgent)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/oauth/callback: %d %s", resp.StatusCode, body)
	}
	return subOf(t, base, fragment(t, resp).Get("access_token"))
}

func subOf(t *testing.T, base, jwt string) string {
	t.Helper()
	c := newDesktopClient(t)
	resp, body := c.do("GET", base+"/me", "", "Authorization", "Bearer "+jwt)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/me: %d %s", resp.StatusCode, body)
	}
	var me map[string]any
	json.Unmarshal([]byte(body), &me)
	sub, _ := me["sub"].(string)
	return sub
}

var base62ID = regexp.MustCompile(`^[0-9A-Za-z]{22}$`)

func TestQR_Login(t *testing.T) {
	h := newHarness(t, denyRedirect, withQR)
	for _, tc := range []struct {
		name, openid string
	}{
		{"FollowerSCAN", "oWXEMU_alice"},
		{"NonFollowerSubscribe", "oWXEMU_bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newDesktopClient(t)
			a := c.create(h.svc.URL)
			if !base62ID.MatchString(a.ID) || a.Ticket == "" || !strings.HasPrefix(a.QRURL, h.emu.URL+"/q/") ||
				a.ImageURL != h.svc.URL+"/qr/sessions/"+a.ID+"/qr.png" || a.ExpiresIn != 300 {
				t.Fatalf("created %+v", a)
			}
			resp, body := c.do("GET", a.ImageURL, "")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(body, "\x89PNG\r\n\x1a\n") {
				t.Fatalf("qr.png: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if st := c.status(h.svc.URL, a.ID); st != "pending" {
				t.Fatalf("status before the scan %q", st)
			}
			// Completing before the scan is refused and does not consume the attempt.
			if resp, _ := c.do("GET", h.svc.URL+"/qr/sessions/"+a.ID+"/complete", ""); resp.StatusCode != http.StatusConflict {
				t.Fatalf("complete before the scan: %d", resp.StatusCode)
			}

			if reply := h.scan(t, tc.openid, a.Ticket); reply != qrlogin.DefaultConfirmText {
				t.Fatalf("scan reply %q", reply)
			}
			if st := c.status(h.svc.URL, a.ID); st != "confirmed" {
				t.Fatalf("status after the scan %q", st)
			}
			// Another browser that learned the id cannot complete it.
			if resp, _ := newDesktopClient(t).do("GET", h.svc.URL+"/qr/sessions/"+a.ID+"/complete", ""); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("complete from another browser: %d", resp.StatusCode)
			}
			resp, body = c.do("GET", h.svc.URL+"/qr/sessions/"+a.ID+"/complete", "")
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("complete: %d %s", resp.StatusCode, body)
			}
			frag := fragment(t, resp)
			if frag.Get("token_type") != "Bearer" || frag.Get("expires_in") != "900" || frag.Get("access_token") == "" {
				t.Fatalf("fragment %v", frag)
			}
			var refresh, sess bool
			for _, ck := range resp.Cookies() {
				refresh = refresh || ck.Name == "wxauth_refresh" && ck.Value != "" && ck.HttpOnly
				sess = sess || ck.Name == "wxauth_session" && ck.Value != ""
			}
			if !refresh || !sess {
				t.Errorf("complete set cookies %v", resp.Header["Set-Cookie"])
			}
			// Single use: a second completion is refused with a retry link.
			resp, body = c.do("GET", h.svc.URL+"/qr/sessions/"+a.ID+"/complete", "", "Accept", "text/html")
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "/qr/login?redirect=") {
				t.Fatalf("second complete: %d %s", resp.StatusCode, body)
			}
			if st := c.status(h.svc.URL, a.ID); st != "used" {
				t.Fatalf("status after completion %q", st)
			}
			// The refresh cookie works like after /oauth/callback.
			if resp, body := c.do("POST", h.svc.URL+"/session/refresh", ""); resp.StatusCode != http.StatusOK {
				t.Errorf("/session/refresh: %d %s", resp.StatusCode, body)
			}

			// The same person logging in by web authorization gets the same sub.
			qrSub := subOf(t, h.svc.URL, frag.Get("access_token"))
			if webSub := h.webSub(t, h.b.URL, tc.openid); qrSub == "" || webSub != qrSub {
				t.Errorf("QR login sub %q, web authorization sub %q", qrSub, webSub)
			}
		})
	}
}

func TestQR_Refused(t *testing.T) {
	h := newHarness(t, denyRedirect, withQR)

	t.Run("Reused", func(t *testing.T) {
		c := newDesktopClient(t)
		a := c.create(h.svc.URL)
		if reply := h.scan(t, "oWXEMU_alice", a.Ticket); reply != qrlogin.DefaultConfirmText {
			t.Fatalf("first scan reply %q", reply)
		}
		// A second person scanning the same code is told it is used.
		if reply := h.scan(t, "oWXEMU_bob", a.Ticket); reply != qrlogin.DefaultRefusedText {
			t.Fatalf("second scan reply %q", reply)
		}
		resp, _ := c.do("GET", h.svc.URL+"/qr/sessions/"+a.ID+"/complete", "")
		jwt := fragment(t, resp).Get("access_token")
		if sub := subOf(t, h.svc.URL, jwt); sub != h.webSub(t, h.svc.URL, "oWXEMU_alice") {
			t.Errorf("the second scan changed who logs in")
		}
		if reply := h.scan(t, "oWXEMU_bob", a.Ticket); reply != qrlogin.DefaultRefusedText {
			t.Fatalf("scan after completion reply %q", reply)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		c := newDesktopClient(t)
		a := c.create(h.svc.URL)
		h.clock.Advance(qrlogin.DefaultTTL + time.Second)
		if st := c.status(h.svc.URL, a.ID); st != "expired" {
			t.Fatalf("status %q", st)
		}
		if reply := h.scan(t, "oWXEMU_alice", a.Ticket); reply != qrlogin.DefaultRefusedText {
			t.Fatalf("scan reply %q", reply)
		}
		resp, body := c.do("GET", h.svc.URL+"/qr/sessions/"+a.ID+"/complete", "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired_token") {
			t.Fatalf("complete: %d %s", resp.StatusCode, body)
		}
		// The event stream of an expired attempt says so and ends.
		if st := readEvents(t, h.svc.URL, a.ID, c); st != "expired" {
			t.Fatalf("events ended with %q", st)
		}
	})

	t.Run("ConfirmedThenTooLate", func(t *testing.T) {
		c := newDesktopClient(t)
		a := c.create(h.svc.URL)
		h.scan(t, "oWXEMU_alice", a.Ticket)
		h.clock.Advance(qrlogin.CompleteWindow + time.Second)
		if resp, _ := c.do("GET", h.svc.URL+"/qr/sessions/"+a.ID+"/complete", ""); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("complete after the window: %d", resp.StatusCode)
		}
	})

	t.Run("UnknownScene", func(t *testing.T) {
		for _, scene := range []string{"promo", "login_", "login_short", "login_" + strings.Repeat("A", 23), "qrscene_login_x"} {
			if reply := h.subscribe(t, "oWXEMU_bob", scene); reply["Content"] != qrOtherReply {
				t.Errorf("scene %q: reply %v, want the ordinary rules", scene, reply)
			}
		}
		// A well-formed login scene that names no attempt is refused, not passed on.
		if reply := h.subscribe(t, "oWXEMU_bob", "login_"+strings.Repeat("Z", 22)); reply["Content"] != qrlogin.DefaultRefusedText {
			t.Errorf("unknown login scene: reply %v", reply)
		}
	})

	t.Run("BadRequests", func(t *testing.T) {
		c := newDesktopClient(t)
		for name, tc := range map[string]struct {
			method, path, body string
			status             int
		}{
			"RedirectNotAllowed": {"POST", "/qr/sessions", `{"redirect":"https://evil.example.com/"}`, http.StatusBadRequest},
			"RedirectMissing":    {"POST", "/qr/sessions", `{}`, http.StatusBadRequest},
			"UnknownField":       {"POST", "/qr/sessions", `{"redirect":"` + testPage + `","x":1}`, http.StatusBadRequest},
			"NotJSON":            {"POST", "/qr/sessions", `redirect=x`, http.StatusBadRequest},
			"PageNotAllowed":     {"GET", "/qr/login?redirect=" + url.QueryEscape("https://evil.example.com/"), "", http.StatusBadRequest},
			"UnknownID":          {"GET", "/qr/sessions/" + strings.Repeat("a", 22), "", http.StatusNotFound},
			"ShortID":            {"GET", "/qr/sessions/abc", "", http.StatusNotFound},
			"BadIDEvents":        {"GET", "/qr/sessions/" + strings.Repeat("%25", 22) + "/events", "", http.StatusNotFound},
			"UnknownImage":       {"GET", "/qr/sessions/" + strings.Repeat("b", 22) + "/qr.png", "", http.StatusNotFound},
			"UnknownComplete":    {"GET", "/qr/sessions/" + strings.Repeat("c", 22) + "/complete", "", http.StatusNotFound},
		} {
			resp, body := c.do(tc.method, h.svc.URL+tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, body, tc.status)
			}
			if resp.StatusCode >= 500 {
				t.Errorf("%s: server error", name)
			}
		}
		// Unknown ids answer JSON to API clients.
		resp, body := c.do("GET", h.svc.URL+"/qr/sessions/"+strings.Repeat("a", 22), "")
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(body, `"not_found"`) {
			t.Errorf("unknown id: %s %s", resp.Header.Get("Content-Type"), body)
		}
	})
}

func TestQR_DesktopLoginRedirect(t *testing.T) {
	h := newHarness(t, denyRedirect, withQR)
	c := newDesktopClient(t)
	resp, _ := c.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(testPage), "")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/qr/login?redirect="+url.QueryEscape(testPage) {
		t.Fatalf("desktop /login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A redirect outside the allowlist is refused before any QR page.
	if resp, _ := c.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape("https://evil.example.com/"), ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("desktop /login with a bad redirect: %d", resp.StatusCode)
	}
	resp, body := c.do("GET", h.svc.URL+resp.Header.Get("Location"), "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="qr-image"`) || !strings.Contains(body, `data-expires-in="300"`) {
		t.Fatalf("/qr/login: %d %s", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`data-id="([0-9A-Za-z]{22})"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page has no attempt id: %s", body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`'nonce-([0-9A-Za-z]+)'`).FindStringSubmatch(csp)
	if nonce == nil || !strings.Contains(body, `<script nonce="`+nonce[1]+`">`) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("page headers %v", resp.Header)
	}
	// With the emulator the QR content is not WeChat's: the page links it.
	if !strings.Contains(body, `id="qr-dev" href="`+h.emu.URL+`/q/`) {
		t.Errorf("page does not link the emulator's scan page")
	}
	if st := c.status(h.svc.URL, m[1]); st != "pending" {
		t.Errorf("page's attempt status %q", st)
	}
	// Inside WeChat, /login is web authorization as before.
	resp, _ = c.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(testPage), "", "User-Agent", wechatAgent)
	if !strings.Contains(resp.Header.Get("Location"), "/connect/oauth2/authorize") {
		t.Errorf("WeChat /login went to %q", resp.Header.Get("Location"))
	}
}

// readEvents reads the SSE stream of attempt id on base until it ends and
// returns the last status it carried. Every line must be an event field, a
// comment or blank.
func readEvents(t *testing.T, base, id string, c *client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/qr/sessions/"+id+"/events", nil)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	last := ""
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "", strings.HasPrefix(line, ":"), line == "event: status":
		case strings.HasPrefix(line, "data: "):
			var e struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil {
				t.Fatalf("event data %q", line)
			}
			last = e.Status
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	return last
}

// TestQR_CrossInstance creates the attempt on A, delivers the scan to B
// (the emulator's callback URL), and checks that A's event stream learns
// it through the shared broker and that A completes the login.
func TestQR_CrossInstance(t *testing.T) {
	h := newHarness(t, denyRedirect, withQR)
	c := newDesktopClient(t)
	a := c.create(h.svc.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.svc.URL+"/qr/sessions/"+a.ID+"/events", nil)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		for lines.Scan() {
			if s, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				return s
			}
		}
		return ""
	}
	if first := next(); first != `{"status":"pending"}` {
		t.Fatalf("first event %q", first)
	}
	// The stream on A is subscribed now; the scan goes to B's /wx.
	if reply := h.scan(t, "oWXEMU_alice", a.Ticket); reply != qrlogin.DefaultConfirmText {
		t.Fatalf("scan reply %q", reply)
	}
	if ev := next(); ev != `{"status":"confirmed"}` {
		t.Fatalf("A's stream got %q", ev)
	}
	if lines.Scan() {
		for lines.Scan() {
		}
	}
	if lines.Err() != nil {
		t.Fatalf("stream did not end cleanly: %v", lines.Err())
	}
	if resp, body := c.do("GET", h.svc.URL+"/qr/sessions/"+a.ID+"/complete", ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("complete on A: %d %s", resp.StatusCode, body)
	}
	// B sees the same state.
	if st := c.status(h.b.URL, a.ID); st != "used" {
		t.Errorf("B reads %q", st)
	}
}

// TestQR_OpenRedirects sends every line of oauth2-proxy's corpus as the
// redirect of POST /qr/sessions and GET /qr/login: each gets a 400, never
// an attempt.
func TestQR_OpenRedirects(t *testing.T) {
	f, err := os.Open("../redirect/testdata/openredirects.txt")
	if err != nil {
		t.Fatalf("open-redirect corpus: %v", err)
	}
	defer f.Close()
	h := newHarness(t, denyRedirect, withQR)
	sc := bufio.NewScanner(f)
	n := 0
	// Each line comes from its own address, so per-IP limits stay out of it.
	serve := func(req *http.Request) *httptest.ResponseRecorder {
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", n>>16&255, n>>8&255, n&255)
		req.Header.Set("User-Agent", desktopAgent)
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, req)
		return w
	}
	for sc.Scan() {
		n++
		raw, err := url.QueryUnescape(sc.Text())
		if err != nil {
			raw = sc.Text()
		}
		body, _ := json.Marshal(map[string]string{"redirect": raw})
		req := httptest.NewRequest("POST", "/qr/sessions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if w := serve(req); w.Code != http.StatusBadRequest {
			t.Errorf("POST line %d %q: %d %s", n, raw, w.Code, w.Body)
		}
		if w := serve(httptest.NewRequest("GET", "/qr/login?redirect="+url.QueryEscape(raw), nil)); w.Code != http.StatusBadRequest {
			t.Errorf("GET line %d %q: %d", n, raw, w.Code)
		}
	}
	if n < 500 {
		t.Fatalf("read %d lines, want the whole corpus", n)
	}
}

// TestQR_PageReloadKeepsTheCode: reloading the QR login page shows the same
// attempt and asks WeChat for no new QR code, for a page's login and for a
// client's authorization request (redirect=flow:HANDLE) alike; a flow the
// provider no longer holds is an expired login, not a refused redirect.
func TestQR_PageReloadKeepsTheCode(t *testing.T) {
	h := newHarness(t, denyRedirect, withQR)
	id := regexp.MustCompile(`data-id="([0-9A-Za-z]{22})"`)
	page := func(c *client, u string) string {
		t.Helper()
		resp, body := c.do("GET", h.svc.URL+u, "")
		m := id.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
		}
		return m[1]
	}
	flowPage := func(c *client) string {
		t.Helper()
		resp, _ := c.do("GET", h.authorizeURL("page", "openid", nil), "")
		resp, _ = c.do("GET", resp.Header.Get("Location"), "")
		u := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(u, "/qr/login?redirect=flow") {
			t.Fatalf("desktop authorization request led to %d %q", resp.StatusCode, u)
		}
		return u
	}
	for name, first := range map[string]func(*client) string{
		"Page": func(*client) string { return "/qr/login?redirect=" + url.QueryEscape(testPage) },
		"Flow": flowPage,
	} {
		t.Run(name, func(t *testing.T) {
			c := newDesktopClient(t)
			u := first(c)
			before := h.emuCalls(t, "/cgi-bin/qrcode/create")
			a := page(c, u)
			if b := page(c, u); b != a {
				t.Errorf("reload showed attempt %s, want %s", b, a)
			}
			if n := h.emuCalls(t, "/cgi-bin/qrcode/create") - before; n != 1 {
				t.Errorf("two loads of the page made %d QR codes, want 1", n)
			}
			if b := page(newDesktopClient(t), u); b == a {
				t.Error("another browser got this browser's attempt")
			}
		})
	}
	c := newDesktopClient(t)
	resp, body := c.do("GET", h.svc.URL+"/qr/login?redirect="+url.QueryEscape("flow:"+strings.Repeat("x", 22)), "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "登录链接已失效") {
		t.Errorf("a flow the provider does not hold: %d %s", resp.StatusCode, body)
	}
}
