package wxemu

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/internal/logtest"
)

// withLog makes newTestEmulator log to the returned buffer.
func withLog(edit func(*Config)) (func(*Config), *logtest.Buffer) {
	var logs logtest.Buffer
	return func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		if edit != nil {
			edit(c)
		}
	}, &logs
}

// wantLogged fails unless the log has a line with attr=value.
func wantLogged(tb testing.TB, logs *logtest.Buffer, attr, value string) {
	tb.Helper()
	if !strings.Contains(logs.String(), attr+"="+value+" ") && !strings.HasSuffix(strings.TrimSpace(logs.String()), attr+"="+value) {
		tb.Errorf("the log does not name %s=%s:\n%s", attr, value, logs.String())
	}
}

// scripted runs a scripted authorization with extra headers (name, value
// pairs) and returns the response with its body read.
func scripted(tb testing.TB, u string, headers ...string) (*http.Response, string) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("User-Agent", wechatUA)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := noRedirect().Do(req)
	if err != nil {
		tb.Fatalf("authorize: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// codeOf returns the code and state of a redirect URL.
func codeOf(tb testing.TB, u string) (code, state string) {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil {
		tb.Fatalf("redirect %q: %v", u, err)
	}
	return p.Query().Get("code"), p.Query().Get("state")
}

func TestEmulator_DropAnswer(t *testing.T) {
	edit, logs := withLog(nil)
	_, srv := newTestEmulator(t, edit)
	code := scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base")
	postJSON(t, srv.URL+"/emu/faults", `{"path":"/sns/oauth2/access_token","drop_answer":true}`)
	u := srv.URL + "/sns/oauth2/access_token?appid=" + testAppID + "&secret=" + testSecret + "&code=" + url.QueryEscape(code) + "&grant_type=authorization_code"
	// A fresh connection: on a reused one net/http's Transport would send
	// this idempotent GET again by itself, which is exactly the blind retry
	// the fault exists to expose (wechat.Client.Exchange prevents it).
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := fresh.Get(u)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the answer came back: %d", resp.StatusCode)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("transport error %v", err)
	}
	if n := getJSON(t, srv.URL+"/emu/calls")["/sns/oauth2/access_token"]; n != 1.0 {
		t.Fatalf("%v exchange calls, want 1", n)
	}
	// WeChat did the work: the code is consumed.
	wantCode(t, exchange(t, srv, code), 40163)
	wantLogged(t, logs, "fault", "drop_answer")
	wantLogged(t, logs, "behaviour", "code_used")
	// The fault was for one call: the next code exchanges normally.
	wantCode(t, exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base")), 0)
}

func TestEmulator_DoubleRedirect(t *testing.T) {
	edit, logs := withLog(nil)
	_, srv := newTestEmulator(t, edit)
	redirect := "https://" + testDomain + "/cb"
	t.Run("Scripted", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/faults", `{"path":"/connect/oauth2/authorize","double_redirect":true}`)
		resp, _ := scripted(t, authorizeURL(srv, redirect, "snsapi_userinfo", "S1"), "X-Wxemu-User", "oWXEMU_alice")
		first := resp.Header.Get("X-Wxemu-First-Redirect")
		if resp.StatusCode != http.StatusFound || first == "" {
			t.Fatalf("status %d, X-Wxemu-First-Redirect %q", resp.StatusCode, first)
		}
		c1, s1 := codeOf(t, first)
		c2, s2 := codeOf(t, resp.Header.Get("Location"))
		if c1 == "" || c2 == "" || c1 == c2 || s1 != "S1" || s2 != "S1" || !strings.HasPrefix(first, redirect+"?") {
			t.Fatalf("two redirects %q and %q: want two codes, one state", first, resp.Header.Get("Location"))
		}
		for _, c := range []string{c1, c2} {
			if m := exchange(t, srv, c); errcode(t, m) != 0 || m["openid"] != "oWXEMU_alice" {
				t.Errorf("exchange: %v", m)
			}
		}
		wantLogged(t, logs, "fault", "double_redirect")
		// Once: the next authorization redirects once.
		resp, _ = scripted(t, authorizeURL(srv, redirect, "snsapi_base", "S2"), "X-Wxemu-User", "oWXEMU_alice")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("X-Wxemu-First-Redirect") != "" {
			t.Errorf("second authorization: %d %q", resp.StatusCode, resp.Header.Get("X-Wxemu-First-Redirect"))
		}
	})
	t.Run("Browser", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/faults", `{"path":"/connect/oauth2/authorize","double_redirect":true,"times":-1}`)
		t.Cleanup(func() {
			req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/emu/faults", nil)
			if r, err := http.DefaultClient.Do(req); err == nil {
				r.Body.Close()
			}
		})
		u := authorizeURL(srv, redirect, "snsapi_base", "S3")
		status, _, body := postForm(t, srv.URL+"/connect/oauth2/authorize/confirm", url.Values{"q": {u[strings.Index(u, "?")+1:]}, "openid": {"oWXEMU_bob"}})
		if status != http.StatusOK || !strings.Contains(body, `id="wx-double-redirect"`) || strings.Count(body, redirect+"?code=") != 2 {
			t.Fatalf("double-redirect page: %d %s", status, body)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for _, body := range []string{
			`{"path":"/sns/oauth2/access_token","double_redirect":true}`,
			`{"path":"/connect/oauth2/authorize","double_redirect":true,"errcode":10009}`,
			`{"path":"/cgi-bin/token","omit_snapshot":true}`,
		} {
			if m := postJSON(t, srv.URL+"/emu/faults", body); m["_status"] != 400.0 {
				t.Errorf("%s: %v", body, m)
			}
		}
	})
}

func TestEmulator_OutsideWeChat(t *testing.T) {
	edit, logs := withLog(nil)
	_, srv := newTestEmulator(t, edit)
	u := authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_base", "st")
	for name, ua := range map[string]string{
		"Go":            "Go-http-client/1.1",
		"DesktopChrome": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		"None":          "",
	} {
		t.Run(name, func(t *testing.T) {
			for _, scriptedUser := range []string{"", "oWXEMU_bob"} {
				status, loc, body := getPage(t, u, map[string]string{"User-Agent": ua, "X-Wxemu-User": scriptedUser})
				if status != http.StatusOK || loc != "" || !strings.Contains(body, "请在微信客户端打开链接") || strings.Contains(body, "user-oWXEMU_bob") {
					t.Errorf("user %q: %d %q %s", scriptedUser, status, loc, body)
				}
			}
		})
	}
	wantLogged(t, logs, "behaviour", "outside_wechat")
	t.Run("InWeChat", func(t *testing.T) {
		if status, _, body := getPage(t, u, nil); status != http.StatusOK || !strings.Contains(body, "user-oWXEMU_bob") {
			t.Errorf("picker in WeChat: %d %s", status, body)
		}
	})
	t.Run("AllowOutsideWeChat", func(t *testing.T) {
		_, srv := newTestEmulator(t, func(c *Config) { c.AllowOutsideWeChat = true })
		u := authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_base", "st")
		if status, loc, _ := getPage(t, u, map[string]string{"User-Agent": "Go-http-client/1.1", "X-Wxemu-User": "oWXEMU_bob"}); status != http.StatusFound || loc == "" {
			t.Errorf("allowed: %d %q", status, loc)
		}
	})
	t.Run("ErrorsFirst", func(t *testing.T) {
		// A malformed link shows its own error, in or out of WeChat.
		bad := strings.Replace(u, testDomain, "evil.example.com", 1)
		if _, _, body := getPage(t, bad, map[string]string{"User-Agent": "Go-http-client/1.1"}); !strings.Contains(body, "10003") {
			t.Errorf("domain error outside WeChat: %s", body)
		}
	})
}

func TestEmulator_SilentUserInfo(t *testing.T) {
	edit, logs := withLog(nil)
	_, srv := newTestEmulator(t, edit)
	redirect := "https://" + testDomain + "/cb"
	u := authorizeURL(srv, redirect, "snsapi_userinfo", "st")
	t.Run("FollowerFromMenu", func(t *testing.T) {
		// alice follows; from the menu there is no consent page, so a
		// scripted "deny" has nothing to decline.
		for _, scene := range []string{"menu", "chat"} {
			resp, _ := scripted(t, u, "X-Wxemu-User", "oWXEMU_alice", "X-Wxemu-Consent", "deny", "X-Wxemu-Scene", scene)
			code, _ := codeOf(t, resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || code == "" {
				t.Fatalf("%s: %d %q", scene, resp.StatusCode, resp.Header.Get("Location"))
			}
			if m := exchange(t, srv, code); m["scope"] != "snsapi_userinfo" {
				t.Errorf("%s: %v", scene, m)
			}
		}
		wantLogged(t, logs, "behaviour", "silent_userinfo")
	})
	t.Run("FollowerFromMoments", func(t *testing.T) {
		if resp, _ := scripted(t, u, "X-Wxemu-User", "oWXEMU_alice", "X-Wxemu-Consent", "deny", "X-Wxemu-Scene", "moments"); resp.StatusCode == http.StatusFound {
			t.Errorf("a page from Moments skipped the consent page: %q", resp.Header.Get("Location"))
		}
	})
	t.Run("NonFollowerFromMenu", func(t *testing.T) {
		if resp, _ := scripted(t, u, "X-Wxemu-User", "oWXEMU_bob", "X-Wxemu-Consent", "deny", "X-Wxemu-Scene", "menu"); resp.StatusCode == http.StatusFound {
			t.Errorf("a non-follower skipped the consent page: %q", resp.Header.Get("Location"))
		}
	})
	t.Run("ForcePopup", func(t *testing.T) {
		fp := strings.Replace(u, "&connect_redirect=1", "&connect_redirect=1&forcePopup=true", 1)
		if resp, _ := scripted(t, fp, "X-Wxemu-User", "oWXEMU_alice", "X-Wxemu-Consent", "deny", "X-Wxemu-Scene", "menu"); resp.StatusCode == http.StatusFound {
			t.Errorf("forcePopup=true skipped the consent page: %q", resp.Header.Get("Location"))
		}
	})
	t.Run("Picker", func(t *testing.T) {
		status, _, body := getPage(t, u, map[string]string{"X-Wxemu-Scene": "menu"})
		if status != http.StatusOK || !strings.Contains(body, `name="scene" value="menu"`) {
			t.Fatalf("picker: %d %s", status, body)
		}
		q := u[strings.Index(u, "?")+1:]
		if status, loc, _ := postForm(t, srv.URL+"/connect/oauth2/authorize/confirm", url.Values{"q": {q}, "openid": {"oWXEMU_alice"}, "scene": {"menu"}}); status != http.StatusFound || loc == "" {
			t.Errorf("follower from the menu: %d %q, want the code at once", status, loc)
		}
		if status, _, body := postForm(t, srv.URL+"/connect/oauth2/authorize/confirm", url.Values{"q": {q}, "openid": {"oWXEMU_alice"}}); status != http.StatusOK || !strings.Contains(body, `id="allow"`) {
			t.Errorf("follower from elsewhere: %d, want the consent page", status)
		}
	})
	t.Run("BadScene", func(t *testing.T) {
		if resp, _ := scripted(t, u, "X-Wxemu-User", "oWXEMU_alice", "X-Wxemu-Scene", "timeline"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestEmulator_AuthorizeErrorFaults(t *testing.T) {
	edit, logs := withLog(nil)
	_, srv := newTestEmulator(t, edit)
	u := authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_base", "st")
	for _, tc := range []struct {
		code int
		text string
	}{
		{10006, "必须关注此测试号"},
		{10009, "操作太频繁了，请稍后重试"},
		{10016, "不支持微信开放平台的 Appid，请使用公众号 Appid"},
	} {
		t.Run(itoa(tc.code), func(t *testing.T) {
			postJSON(t, srv.URL+"/emu/faults", `{"path":"/connect/oauth2/authorize","errcode":`+itoa(tc.code)+`}`)
			resp, body := scripted(t, u, "X-Wxemu-User", "oWXEMU_bob")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" ||
				!strings.Contains(body, `<span id="errcode">`+itoa(tc.code)+`</span>`) || !strings.Contains(body, tc.text) {
				t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if resp, _ := scripted(t, u, "X-Wxemu-User", "oWXEMU_bob"); resp.StatusCode != http.StatusFound {
				t.Errorf("after the fault: %d", resp.StatusCode)
			}
		})
	}
	wantLogged(t, logs, "fault", "authorize_error")
}

func TestEmulator_Snapshot(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	userinfo := func(m map[string]any) map[string]any {
		return getJSON(t, srv.URL+"/sns/userinfo?access_token="+url.QueryEscape(m["access_token"].(string))+"&openid="+url.QueryEscape(m["openid"].(string))+"&lang=zh_CN")
	}
	t.Run("BaseIsNotSnapshot", func(t *testing.T) {
		m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_snap", "snsapi_base"))
		if _, ok := m["is_snapshotuser"]; ok || errcode(t, m) != 0 {
			t.Errorf("snsapi_base exchange of a snapshot user: %v", m)
		}
	})
	t.Run("UserInfo48001", func(t *testing.T) {
		m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_snap", "snsapi_userinfo"))
		if m["is_snapshotuser"] != 1.0 || m["scope"] != "snsapi_userinfo" {
			t.Fatalf("exchange: %v", m)
		}
		wantCode(t, userinfo(m), 48001)
		// A refreshed token is the snapshot user's too.
		r := getJSON(t, srv.URL+"/sns/oauth2/refresh_token?appid="+testAppID+"&grant_type=refresh_token&refresh_token="+url.QueryEscape(m["refresh_token"].(string)))
		wantCode(t, userinfo(r), 48001)
		// A real user's token still gets the profile.
		wantCode(t, userinfo(exchange(t, srv, scriptedCode(t, srv, "oWXEMU_alice", "snsapi_userinfo"))), 0)
	})
	t.Run("FlagOmitted", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/faults", `{"path":"/sns/oauth2/access_token","omit_snapshot":true}`)
		m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_snap", "snsapi_userinfo"))
		if _, ok := m["is_snapshotuser"]; ok || errcode(t, m) != 0 {
			t.Fatalf("exchange with the flag omitted: %v", m)
		}
		wantCode(t, userinfo(m), 48001)
		if m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_snap", "snsapi_userinfo")); m["is_snapshotuser"] != 1.0 {
			t.Errorf("the next exchange: %v", m)
		}
	})
}

func TestEmulator_WebTokenLife(t *testing.T) {
	edit, logs := withLog(nil)
	_, srv := newTestEmulator(t, edit)
	refresh := func(rt string) map[string]any {
		return getJSON(t, srv.URL+"/sns/oauth2/refresh_token?appid="+testAppID+"&grant_type=refresh_token&refresh_token="+url.QueryEscape(rt))
	}
	auth := func(m map[string]any) map[string]any {
		return getJSON(t, srv.URL+"/sns/auth?access_token="+url.QueryEscape(m["access_token"].(string))+"&openid="+url.QueryEscape(m["openid"].(string)))
	}
	t.Run("Unknown40030", func(t *testing.T) {
		wantCode(t, refresh("nope-nope-nope-nope"), 40030)
	})
	t.Run("ReplacedByLaterAuthorization40030", func(t *testing.T) {
		first := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base"))
		wantCode(t, refresh(first["refresh_token"].(string)), 0)
		second := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base"))
		wantCode(t, refresh(first["refresh_token"].(string)), 40030)
		wantCode(t, refresh(second["refresh_token"].(string)), 0)
		wantLogged(t, logs, "behaviour", "refresh_replaced")
	})
	t.Run("Voided42007", func(t *testing.T) {
		a := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_alice", "snsapi_userinfo"))
		b := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base"))
		if m := postJSON(t, srv.URL+"/emu/void-web-tokens", `{"openid":"oWXEMU_alice"}`); m["voided"] != 2.0 {
			t.Fatalf("void: %v", m)
		}
		wantCode(t, auth(a), 42007)
		wantCode(t, refresh(a["refresh_token"].(string)), 42007)
		wantCode(t, getJSON(t, srv.URL+"/sns/userinfo?access_token="+url.QueryEscape(a["access_token"].(string))+"&openid=oWXEMU_alice"), 42007)
		wantCode(t, auth(b), 0)
		// A new authorization works again.
		wantCode(t, auth(exchange(t, srv, scriptedCode(t, srv, "oWXEMU_alice", "snsapi_userinfo"))), 0)
		// No openid: every user (an AppSecret reset).
		postJSON(t, srv.URL+"/emu/void-web-tokens", `{}`)
		wantCode(t, auth(b), 42007)
		wantLogged(t, logs, "behaviour", "tokens_voided")
	})
	t.Run("Expired42002", func(t *testing.T) {
		m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base"))
		advance(t, srv, 30*24*3600)
		wantCode(t, refresh(m["refresh_token"].(string)), 42002)
	})
}

func TestEmulator_IPWhitelist(t *testing.T) {
	edit, logs := withLog(nil)
	_, srv := newTestEmulator(t, edit)
	t.Run("NotInWhitelist40164", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/ip-whitelist", `{"ips":["127.0.0.2"]}`)
		m := stableToken(t, srv, false)
		wantCode(t, m, 40164)
		if msg := m["errmsg"].(string); !strings.HasPrefix(msg, "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist rid: ") {
			t.Errorf("errmsg %q", msg)
		}
		wantCode(t, fetchToken(t, srv), 40164)
		postJSON(t, srv.URL+"/emu/ip-whitelist", `{"ips":["127.0.0.2","127.0.0.1"]}`)
		wantCode(t, stableToken(t, srv, false), 0)
		postJSON(t, srv.URL+"/emu/ip-whitelist", `{"ips":[]}`)
		wantCode(t, fetchToken(t, srv), 0)
		wantLogged(t, logs, "behaviour", "ip_whitelist")
	})
	t.Run("RiskConfirm89503", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/ip-whitelist", `{"ips":[],"risk_confirm":true}`)
		wantCode(t, stableToken(t, srv, false), 89503)
		wantCode(t, stableToken(t, srv, false), 89501)
		postJSON(t, srv.URL+"/emu/ip-whitelist/confirm", `{"ip":"127.0.0.1"}`)
		wantCode(t, stableToken(t, srv, false), 0)
		wantLogged(t, logs, "behaviour", "ip_confirm")
	})
	t.Run("Refused", func(t *testing.T) {
		if m := postJSON(t, srv.URL+"/emu/ip-whitelist", `{"ips":["not-an-ip"]}`); m["_status"] != 400.0 {
			t.Errorf("%v", m)
		}
	})
}

func TestEmulator_ErrmsgForm(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	for name, m := range map[string]map[string]any{
		"40029": exchange(t, srv, "nope-nope-nope-nope"),
		"40001": getJSON(t, srv.URL+"/cgi-bin/menu/get?access_token=nope"),
	} {
		msg, _ := m["errmsg"].(string)
		if strings.Contains(msg, ", rid:") || !ridPattern.MatchString(msg) {
			t.Errorf("%s: errmsg %q, want WeChat's \"... rid: ...\" without a comma", name, msg)
		}
	}
}

func TestEmulator_SubscribeTicket(t *testing.T) {
	cb := &testCallback{}
	_, srv := newSendPair(t, "plain", cb, nil)
	t.Run("NewScene", func(t *testing.T) {
		res := postJSON(t, srv.URL+"/emu/subscribe", `{"from":"oWXEMU_bob","scene":"promo"}`)
		sent, _ := res["sent"].(string)
		if !strings.Contains(sent, "<EventKey><![CDATA[qrscene_promo]]></EventKey><Ticket><![CDATA[gQ") {
			t.Fatalf("pushed %s", sent)
		}
	})
	t.Run("KnownQR", func(t *testing.T) {
		tok := postJSON(t, srv.URL+"/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"`+cbAppID+`","secret":"`+testSecret+`"}`)["access_token"].(string)
		qr := createQR(t, srv, tok, `{"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"shop"}}}`)
		res := postJSON(t, srv.URL+"/emu/subscribe", `{"from":"oWXEMU_alice","scene":"shop"}`)
		if sent, _ := res["sent"].(string); !strings.Contains(sent, "<Ticket><![CDATA["+qr["ticket"].(string)+"]]></Ticket>") {
			t.Fatalf("pushed %s, want ticket %v", sent, qr["ticket"])
		}
	})
	t.Run("NoScene", func(t *testing.T) {
		res := postJSON(t, srv.URL+"/emu/subscribe", `{"from":"oWXEMU_bob"}`)
		if sent, _ := res["sent"].(string); strings.Contains(sent, "Ticket") || !strings.Contains(sent, "<EventKey><![CDATA[]]></EventKey>") {
			t.Fatalf("pushed %s", sent)
		}
	})
	t.Run("SceneTooLong", func(t *testing.T) {
		if m := postJSON(t, srv.URL+"/emu/subscribe", `{"from":"oWXEMU_bob","scene":"`+strings.Repeat("码", 22)+`"}`); m["_status"] != 400.0 {
			t.Errorf("%v", m)
		}
	})
}

func TestEmulator_TextReplyLimit(t *testing.T) {
	edit, logs := withLog(nil)
	cb := &testCallback{}
	_, srv := newSendPair(t, "safe", cb, edit)
	// The test callback answers "echo: " + Content: 6 bytes more.
	at := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"`+strings.Repeat("a", maxTextReply-6)+`"}}`)
	if at["valid"] != true {
		t.Errorf("2048 bytes: %v", at["error"])
	}
	over := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"`+strings.Repeat("字", 700)+`"}}`)
	if over["valid"] != false || !strings.Contains(over["error"].(string), "2106 bytes") || !strings.Contains(over["error"].(string), "2048") {
		t.Errorf("2106 bytes: %v", over)
	}
	wantLogged(t, logs, "behaviour", "reply_refused")
	wantLogged(t, logs, "behaviour", "push")
}

func TestEmulator_QRDefaultExpiry(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	tok := stableToken(t, srv, false)["access_token"].(string)
	m := createQR(t, srv, tok, `{"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"login_x"}}}`)
	if m["expire_seconds"] != 60.0 {
		t.Fatalf("create: %v", m)
	}
	show := func() int {
		resp, err := http.Get(srv.URL + "/cgi-bin/showqrcode?ticket=" + url.QueryEscape(m["ticket"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	advance(t, srv, 59)
	if s := show(); s != http.StatusOK {
		t.Errorf("after 59 s: %d", s)
	}
	advance(t, srv, 1)
	if s := show(); s != http.StatusNotFound {
		t.Errorf("after 60 s: %d, want 404", s)
	}
}
