package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/internal/session"
)

// startLogin runs /login?redirect=testPage&scope=snsapi_base in c and
// returns WeChat's authorize URL.
func (h *harness) startLogin(c *client) string {
	c.t.Helper()
	resp, body := c.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(testPage)+"&scope=snsapi_base", "")
	if resp.StatusCode != http.StatusFound {
		c.t.Fatalf("/login: %d %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// wechatRedirect opens WeChat's authorize URL in c (WeChat's in-app
// browser: the emulator, as WeChat, refuses other user agents) as user
// (consent allowed) and returns the /oauth/callback URL WeChat sends the browser to.
func (h *harness) wechatRedirect(c *client, authURL, user string) string {
	c.t.Helper()
	resp, body := c.do("GET", authURL, "", "User-Agent", wechatAgent, "X-Wxemu-User", user, "X-Wxemu-Consent", "allow")
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/oauth/callback?") {
		c.t.Fatalf("emulator: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return resp.Header.Get("Location")
}

// noSession fails when resp sets a session, refresh or browser cookie or
// sends the browser to the page.
func noSession(t *testing.T, resp *http.Response) {
	t.Helper()
	for _, ck := range resp.Cookies() {
		if (ck.Name == session.SessionCookie || ck.Name == session.RefreshCookie || ck.Name == session.BrowserCookie) && ck.MaxAge > 0 {
			t.Errorf("set %s", ck.Name)
		}
	}
	if strings.HasPrefix(resp.Header.Get("Location"), testPage) {
		t.Errorf("sent to the page: %s", resp.Header.Get("Location"))
	}
}

// TestCallback_LoginCSRF: an attacker authorizes as himself and hands his
// callback URL to a victim whose browser never started a login (no state
// cookie). The victim must not be logged in as the attacker (on the
// fragment delivery this gave the victim the attacker's session).
func TestCallback_LoginCSRF(t *testing.T) {
	h := newHarness(t)
	attacker, victim := newClient(t), newClient(t)
	cb := h.wechatRedirect(attacker, h.startLogin(attacker), "oWXEMU_bob")
	resp, _ := victim.do("GET", cb, "")
	noSession(t, resp)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), h.emu.URL+"/connect/oauth2/authorize?") {
		t.Fatalf("victim: %d %s, want a fresh WeChat authorization", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The fresh authorization is bound to the victim and brings back her
	// own identity, never the attacker's.
	cb2 := h.wechatRedirect(victim, resp.Header.Get("Location"), "oWXEMU_alice")
	resp, _ = victim.do("GET", cb2, "")
	c, err := h.sessions.Verify(context.Background(), fragment(t, resp).Get("access_token"))
	if err != nil || c.OpenID != "oWXEMU_alice" {
		t.Fatalf("victim logged in as %+v (%v)", c, err)
	}
	// The attacker's own callback still works for him.
	resp, _ = attacker.do("GET", cb, "")
	if c, err := h.sessions.Verify(context.Background(), fragment(t, resp).Get("access_token")); err != nil || c.OpenID != "oWXEMU_bob" {
		t.Fatalf("attacker: %+v %v", c, err)
	}
}

// TestCallback_Replay: a callback URL already used by the victim, replayed
// from another browser within the duplicate window, gets neither the
// victim's session nor a refresh cookie (on the fragment delivery it got
// both).
func TestCallback_Replay(t *testing.T) {
	h := newHarness(t)
	victim, thief := newClient(t), newClient(t)
	cb := h.wechatRedirect(victim, h.startLogin(victim), "oWXEMU_alice")
	resp, _ := victim.do("GET", cb, "")
	victimJWT := fragment(t, resp).Get("access_token")
	resp, body := thief.do("GET", cb, "")
	noSession(t, resp)
	if strings.Contains(body, victimJWT) || strings.Contains(resp.Header.Get("Location"), victimJWT) {
		t.Fatal("the replay carries the victim's JWT")
	}
	// The thief's restart is bound to him: following it as himself gets
	// his own identity.
	if resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), h.emu.URL) {
		cb2 := h.wechatRedirect(thief, resp.Header.Get("Location"), "oWXEMU_bob")
		resp, _ = thief.do("GET", cb2, "")
		if c, err := h.sessions.Verify(context.Background(), fragment(t, resp).Get("access_token")); err != nil || c.OpenID != "oWXEMU_bob" {
			t.Fatalf("thief after restart: %+v %v", c, err)
		}
	}
}

// TestCallback_DroppedCookie: a webview that drops the state cookie is
// restarted through a fresh, bound, silent (snsapi_base) authorization and
// gets in; a webview that drops it again gets the page, not a loop.
func TestCallback_DroppedCookie(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	authURL := h.startLogin(c)
	cb := h.wechatRedirect(c, authURL, "oWXEMU_alice")
	dropper := newClient(t) // the same person, whose webview lost the cookie jar
	resp, _ := dropper.do("GET", cb, "")
	restart := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(restart, "scope=snsapi_base") {
		t.Fatalf("dropped cookie: %d %s", resp.StatusCode, restart)
	}
	cb2 := h.wechatRedirect(dropper, restart, "oWXEMU_alice")
	resp, _ = dropper.do("GET", cb2, "")
	if cl, err := h.sessions.Verify(context.Background(), fragment(t, resp).Get("access_token")); err != nil || cl.OpenID != "oWXEMU_alice" {
		t.Fatalf("after restart: %+v %v", cl, err)
	}
	// Dropping it again on the restarted login: no second restart.
	again := newClient(t)
	cb3 := h.wechatRedirect(again, h.startLogin(again), "oWXEMU_alice")
	fresh := newClient(t)
	resp, _ = fresh.do("GET", cb3, "")
	cb4 := h.wechatRedirect(fresh, resp.Header.Get("Location"), "oWXEMU_alice")
	resp, body := newClient(t).do("GET", cb4, "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "登录状态不匹配") {
		t.Fatalf("second drop: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCallback_Duplicate: WeChat calls the redirect_uri twice with the same
// state and two codes; the browser lands on one login.
func TestCallback_Duplicate(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	authURL := h.startLogin(c)
	cb1 := h.wechatRedirect(c, authURL, "oWXEMU_alice")
	cb2 := h.wechatRedirect(c, authURL, "oWXEMU_alice")
	if cb1 == cb2 {
		t.Fatal("the emulator gave one code twice")
	}
	r1, _ := c.do("GET", cb1, "")
	r2, _ := c.do("GET", cb2, "")
	j1, j2 := fragment(t, r1).Get("access_token"), fragment(t, r2).Get("access_token")
	if j1 != j2 {
		t.Errorf("two logins for one state")
	}
}

// TestCallback_DeadCode: a code WeChat says is used (40163) restarts the
// authorization once, transparently; a dead code on the restarted login
// gets the page.
func TestCallback_DeadCode(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	cb := h.wechatRedirect(c, h.startLogin(c), "oWXEMU_alice")
	c.do("GET", cb, "") // the code is used now
	used, _ := url.Parse(cb)
	authURL := h.startLogin(c) // a new login in the same browser
	au, _ := url.Parse(authURL)
	state := au.Query().Get("state")
	dead := h.svc.URL + "/oauth/callback?code=" + url.QueryEscape(used.Query().Get("code")) + "&state=" + state
	resp, _ := c.do("GET", dead, "")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), h.emu.URL+"/connect/oauth2/authorize?") {
		t.Fatalf("dead code: %d %s, want a restart", resp.StatusCode, resp.Header.Get("Location"))
	}
	restart, _ := url.Parse(resp.Header.Get("Location"))
	state2 := restart.Query().Get("state")
	resp, body := c.do("GET", h.svc.URL+"/oauth/callback?code="+url.QueryEscape(used.Query().Get("code"))+"&state="+state2, "")
	if resp.StatusCode == http.StatusFound {
		t.Fatalf("a second dead code restarted again: %s", resp.Header.Get("Location"))
	}
	if !strings.Contains(body, "登录链接已失效") {
		t.Errorf("second dead code: %d %.300s", resp.StatusCode, body)
	}
}

// emuFault scripts a fault of the emulator (POST /emu/faults).
func (h *harness) emuFault(t *testing.T, body string) {
	t.Helper()
	resp, err := http.Post(h.emu.URL+"/emu/faults", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/emu/faults %s: %v %v", body, resp, err)
	}
	resp.Body.Close()
}

// TestCallback_AnswerLost: the code exchange reached WeChat, which consumed
// the code, and its answer was lost. The exchange is not sent again (it
// would only get 40163): the authorization restarts once, transparently,
// and the login completes for the same user; the exchange API saw exactly
// one call per code.
func TestCallback_AnswerLost(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	cb := h.wechatRedirect(c, h.startLogin(c), "oWXEMU_alice")
	h.emuFault(t, `{"path":"/sns/oauth2/access_token","drop_answer":true}`)
	resp, body := c.do("GET", cb, "")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), h.emu.URL+"/connect/oauth2/authorize?") {
		t.Fatalf("lost answer: %d %s %.300s, want a restart", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, _ = c.do("GET", h.wechatRedirect(c, resp.Header.Get("Location"), "oWXEMU_alice"), "")
	if cl, err := h.sessions.Verify(context.Background(), fragment(t, resp).Get("access_token")); err != nil || cl.OpenID != "oWXEMU_alice" {
		t.Fatalf("after the restart: %+v %v", cl, err)
	}
	if n := h.emuCalls(t, "/sns/oauth2/access_token"); n != 2 {
		t.Errorf("exchange calls: %d, want 2 (one per code, none repeated)", n)
	}
}

// TestCallback_SnapshotWithoutFlag: WeChat leaves is_snapshotuser out of
// a snapshot user's exchange at times; sns/userinfo then answers 48001 and
// the user gets no session (the openid is a virtual one).
func TestCallback_SnapshotWithoutFlag(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	resp, body := c.do("GET", h.svc.URL+"/login?redirect="+url.QueryEscape(testPage)+"&scope=snsapi_userinfo", "")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/login: %d %s", resp.StatusCode, body)
	}
	h.emuFault(t, `{"path":"/sns/oauth2/access_token","omit_snapshot":true}`)
	resp, _ = c.do("GET", h.wechatRedirect(c, resp.Header.Get("Location"), "oWXEMU_snap"), "")
	for _, ck := range resp.Cookies() {
		if (ck.Name == session.SessionCookie || ck.Name == session.RefreshCookie) && ck.MaxAge > 0 {
			t.Errorf("snapshot user got %s", ck.Name)
		}
	}
	if got := fragmentError(t, resp).Get("error"); got != "snapshot_user" {
		t.Errorf("snapshot user without the flag: error=%q, want snapshot_user", got)
	}
}

// TestCallback_DoubleRedirect: WeChat calls redirect_uri twice for one
// authorization (two codes, one state) while the first is in flight; the
// browser ends on one login either way.
func TestCallback_DoubleRedirect(t *testing.T) {
	h := newHarness(t)
	c := newClient(t)
	authURL := h.startLogin(c)
	h.emuFault(t, `{"path":"/connect/oauth2/authorize","double_redirect":true}`)
	resp, body := c.do("GET", authURL, "", "User-Agent", wechatAgent, "X-Wxemu-User", "oWXEMU_alice", "X-Wxemu-Consent", "allow")
	first, second := resp.Header.Get("X-Wxemu-First-Redirect"), resp.Header.Get("Location")
	if first == "" || second == "" || first == second {
		t.Fatalf("no double redirect: %d %s", resp.StatusCode, body)
	}
	type answer struct {
		resp *http.Response
	}
	got := make(chan answer, 2)
	for _, u := range []string{first, second} {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			r, err := c.c.Do(req)
			if err != nil {
				got <- answer{}
				return
			}
			r.Body.Close()
			got <- answer{r}
		}()
	}
	a, b := <-got, <-got
	if a.resp == nil || b.resp == nil {
		t.Fatal("a callback failed")
	}
	ja, jb := fragment(t, a.resp).Get("access_token"), fragment(t, b.resp).Get("access_token")
	if ja != jb {
		t.Errorf("two logins for one authorization")
	}
}

// emuCalls returns how many times the emulator answered path
// (GET /emu/calls).
func (h *harness) emuCalls(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get(h.emu.URL + "/emu/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var calls map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&calls); err != nil {
		t.Fatal(err)
	}
	return calls[path]
}
