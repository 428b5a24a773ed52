package wxemu

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// getPage GETs u without following redirects and returns status, Location
// and body.
func getPage(tb testing.TB, u string, hdr map[string]string) (int, string, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		tb.Fatalf("request: %v", err)
	}
	req.Header.Set("User-Agent", wechatUA)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect().Do(req)
	if err != nil {
		tb.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// postForm POSTs a form without following redirects.
func postForm(tb testing.TB, u string, form url.Values) (int, string, string) {
	tb.Helper()
	resp, err := noRedirect().PostForm(u, form)
	if err != nil {
		tb.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var errcodeInPage = regexp.MustCompile(`id="errcode">(\d+)<`)

func TestEmulator_Authorize(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	redirect := url.QueryEscape("https://" + testDomain + "/oauth/callback")
	base := srv.URL + "/connect/oauth2/authorize?"
	alice := map[string]string{"X-Wxemu-User": "oWXEMU_alice"}

	// Pages that must show an error: (query, code); code 0 = 该链接无法访问 or
	// a code-less page.
	bad := []struct {
		name, query string
		code        int
	}{
		{"Order/ScopeBeforeResponseType", "appid=" + testAppID + "&redirect_uri=" + redirect + "&scope=snsapi_base&response_type=code&state=s", 0},
		{"Order/RedirectFirst", "redirect_uri=" + redirect + "&appid=" + testAppID + "&response_type=code&scope=snsapi_base&state=s", 0},
		{"Order/StateMissing", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base", 0},
		{"Order/ExtraParam", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=s&x=1", 0},
		{"Order/ConnectRedirectTwice", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=s&connect_redirect=1&connect_redirect=1", 0},
		{"ResponseTypeToken", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=token&scope=snsapi_base&state=s", 0},
		{"EmptyAppID10012", "appid=&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=s", 10012},
		{"EmptyRedirect10011", "appid=" + testAppID + "&redirect_uri=&response_type=code&scope=snsapi_base&state=s", 10011},
		{"EmptyScope10010", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=code&scope=&state=s", 10010},
		{"EmptyState10013", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=", 10013},
		{"UnknownAppID", "appid=wxunknown&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=s", 40013},
		{"Domain10003/Other", "appid=" + testAppID + "&redirect_uri=" + url.QueryEscape("https://evil.example.com/cb") + "&response_type=code&scope=snsapi_base&state=s", 10003},
		{"Domain10003/Parent", "appid=" + testAppID + "&redirect_uri=" + url.QueryEscape("https://example.com/cb") + "&response_type=code&scope=snsapi_base&state=s", 10003},
		{"Domain10003/Suffix", "appid=" + testAppID + "&redirect_uri=" + url.QueryEscape("https://"+testDomain+".evil.com/cb") + "&response_type=code&scope=snsapi_base&state=s", 10003},
		{"Domain10003/Port", "appid=" + testAppID + "&redirect_uri=" + url.QueryEscape("https://"+testDomain+":8443/cb") + "&response_type=code&scope=snsapi_base&state=s", 10003},
		{"Domain10003/WrongIPPort", "appid=" + testAppID + "&redirect_uri=" + url.QueryEscape("http://127.0.0.1:9090/cb") + "&response_type=code&scope=snsapi_base&state=s", 10003},
		{"Domain10003/Userinfo", "appid=" + testAppID + "&redirect_uri=" + url.QueryEscape("https://evil.com@"+testDomain+"/cb") + "&response_type=code&scope=snsapi_base&state=s", 10003},
		{"Domain10003/DoubleEncoded", "appid=" + testAppID + "&redirect_uri=" + url.QueryEscape(redirect) + "&response_type=code&scope=snsapi_base&state=s", 10003},
		{"Domain10003/JavaScript", "appid=" + testAppID + "&redirect_uri=" + url.QueryEscape("javascript:alert(1)") + "&response_type=code&scope=snsapi_base&state=s", 10003},
		{"Scope10005", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_login&state=s", 10005},
		{"StateBadChars", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=a-b", 0},
		{"StateTooLong", "appid=" + testAppID + "&redirect_uri=" + redirect + "&response_type=code&scope=snsapi_base&state=" + strings.Repeat("a", 129), 0},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			for _, hdr := range []map[string]string{nil, alice} {
				status, loc, body := getPage(t, base+tt.query, hdr)
				if status != http.StatusOK || loc != "" {
					t.Fatalf("status %d Location %q, want the 200 error page", status, loc)
				}
				m := errcodeInPage.FindStringSubmatch(body)
				switch {
				case tt.code == 0 && m != nil:
					t.Errorf("page shows errcode %s, want none", m[1])
				case tt.code != 0 && (m == nil || m[1] != itoa(tt.code)):
					t.Errorf("page errcode %v, want %d", m, tt.code)
				case !strings.Contains(body, `id="wx-error"`):
					t.Errorf("not the error page: %s", body)
				}
			}
		})
	}

	t.Run("State128OK", func(t *testing.T) {
		st := strings.Repeat("Ab9", 42) + "xy"
		status, loc, _ := getPage(t, base+"appid="+testAppID+"&redirect_uri="+redirect+"&response_type=code&scope=snsapi_base&state="+st, alice)
		if status != http.StatusFound || !strings.HasSuffix(loc, "&state="+st) {
			t.Errorf("status %d Location %q", status, loc)
		}
	})
	t.Run("ForcePopupBeforeConnectRedirect", func(t *testing.T) {
		status, _, _ := getPage(t, base+"appid="+testAppID+"&redirect_uri="+redirect+"&response_type=code&scope=snsapi_userinfo&state=s&forcePopup=true&connect_redirect=1", alice)
		if status != http.StatusFound {
			t.Errorf("status %d, want 302", status)
		}
	})
	t.Run("IPPortDomain", func(t *testing.T) {
		status, loc, _ := getPage(t, authorizeURL(srv, "http://127.0.0.1:8080/cb", "snsapi_base", "s"), alice)
		if status != http.StatusFound || !strings.HasPrefix(loc, "http://127.0.0.1:8080/cb?code=") {
			t.Errorf("status %d Location %q", status, loc)
		}
	})

	t.Run("Scripted", func(t *testing.T) {
		tests := []struct {
			name, redirect, scope, consent string
			wantPrefix, wantSuffix         string
		}{
			{"AllowBase", "https://" + testDomain + "/cb", "snsapi_base", "", "https://" + testDomain + "/cb?code=", "&state=st"},
			{"AllowUserinfo", "https://" + testDomain + "/cb", "snsapi_userinfo", "allow", "https://" + testDomain + "/cb?code=", "&state=st"},
			{"ExistingQuery", "https://" + testDomain + "/cb?x=1", "snsapi_base", "", "https://" + testDomain + "/cb?x=1&code=", "&state=st"},
			{"Fragment", "https://" + testDomain + "/app/#/home", "snsapi_base", "", "https://" + testDomain + "/app/?code=", "&state=st#/home"},
			{"DenyIgnoredForBase", "https://" + testDomain + "/cb", "snsapi_base", "deny", "https://" + testDomain + "/cb?code=", "&state=st"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				hdr := map[string]string{"X-Wxemu-User": "oWXEMU_bob", "X-Wxemu-Consent": tt.consent}
				status, loc, _ := getPage(t, authorizeURL(srv, tt.redirect, tt.scope, "st"), hdr)
				if status != http.StatusFound || !strings.HasPrefix(loc, tt.wantPrefix) || !strings.HasSuffix(loc, tt.wantSuffix) {
					t.Errorf("status %d Location %q", status, loc)
				}
			})
		}
		t.Run("DenyNoRedirect", func(t *testing.T) {
			hdr := map[string]string{"X-Wxemu-User": "oWXEMU_bob", "X-Wxemu-Consent": "deny"}
			status, loc, body := getPage(t, authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_userinfo", "st"), hdr)
			if status != http.StatusOK || loc != "" || !strings.Contains(body, `id="wx-declined"`) ||
				!strings.Contains(body, `id="deny-continue" href="https://`+testDomain+`/cb?state=st"`) || !strings.Contains(body, `id="back-to-consent"`) {
				t.Errorf("status %d Location %q body %q", status, loc, body)
			}
		})
		t.Run("UnknownUser400", func(t *testing.T) {
			status, _, body := getPage(t, authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_base", "st"), map[string]string{"X-Wxemu-User": "oNobody"})
			if status != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
				t.Errorf("status %d body %q", status, body)
			}
		})
		t.Run("BadConsent400", func(t *testing.T) {
			status, _, _ := getPage(t, authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_base", "st"), map[string]string{"X-Wxemu-User": "oWXEMU_bob", "X-Wxemu-Consent": "maybe"})
			if status != http.StatusBadRequest {
				t.Errorf("status %d", status)
			}
		})
	})

	t.Run("DenyRedirect", func(t *testing.T) {
		_, srv := newTestEmulator(t, func(c *Config) { c.DenyRedirect = true })
		hdr := map[string]string{"X-Wxemu-User": "oWXEMU_bob", "X-Wxemu-Consent": "deny"}
		status, loc, _ := getPage(t, authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_userinfo", "st"), hdr)
		if status != http.StatusFound || loc != "https://"+testDomain+"/cb?state=st" {
			t.Errorf("status %d Location %q", status, loc)
		}
	})

	t.Run("Pages", func(t *testing.T) {
		u := authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_userinfo", "st")
		status, _, body := getPage(t, u, nil)
		if status != http.StatusOK {
			t.Fatalf("picker status %d", status)
		}
		for _, id := range []string{`id="user-oWXEMU_alice"`, `id="user-oWXEMU_bob"`, `id="user-oWXEMU_snap"`, `action="/connect/oauth2/authorize/confirm"`} {
			if !strings.Contains(body, id) {
				t.Errorf("picker lacks %s", id)
			}
		}
		q := u[strings.Index(u, "?")+1:]
		status, _, body = postForm(t, srv.URL+"/connect/oauth2/authorize/confirm", url.Values{"q": {q}, "openid": {"oWXEMU_alice"}})
		if status != http.StatusOK || !strings.Contains(body, `id="allow"`) || !strings.Contains(body, `id="deny"`) || !strings.Contains(body, "Alice 爱丽丝") {
			t.Fatalf("consent page: status %d body %s", status, body)
		}
		status, loc, _ := postForm(t, srv.URL+"/connect/oauth2/authorize/consent", url.Values{"q": {q}, "openid": {"oWXEMU_alice"}, "decision": {"allow"}})
		if status != http.StatusFound || !strings.Contains(loc, "?code=") {
			t.Fatalf("allow: status %d Location %q", status, loc)
		}
		code, _ := url.Parse(loc)
		tok := exchange(t, srv, code.Query().Get("code"))
		if tok["openid"] != "oWXEMU_alice" || tok["scope"] != "snsapi_userinfo" {
			t.Errorf("exchange: %v", tok)
		}
		status, loc, _ = postForm(t, srv.URL+"/connect/oauth2/authorize/consent", url.Values{"q": {q}, "openid": {"oWXEMU_alice"}, "decision": {"deny"}})
		if status != http.StatusOK || loc != "" {
			t.Errorf("deny: status %d Location %q", status, loc)
		}
		qb := strings.Replace(q, "snsapi_userinfo", "snsapi_base", 1)
		status, loc, _ = postForm(t, srv.URL+"/connect/oauth2/authorize/confirm", url.Values{"q": {qb}, "openid": {"oWXEMU_bob"}})
		if status != http.StatusFound || !strings.Contains(loc, "?code=") {
			t.Errorf("base confirm: status %d Location %q", status, loc)
		}
		// A tampered form is re-validated.
		status, loc, body = postForm(t, srv.URL+"/connect/oauth2/authorize/confirm", url.Values{"q": {strings.Replace(q, testDomain, "evil.com", 1)}, "openid": {"oWXEMU_bob"}})
		if status != http.StatusOK || loc != "" || !strings.Contains(body, ">10003<") {
			t.Errorf("tampered confirm: status %d Location %q", status, loc)
		}
		status, _, _ = postForm(t, srv.URL+"/connect/oauth2/authorize/confirm", url.Values{"q": {q}, "openid": {"oNobody"}})
		if status != http.StatusBadRequest {
			t.Errorf("unknown user confirm: status %d", status)
		}
	})
}

func TestEmulator_SNSAccessToken(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	t.Run("UserinfoWithUnionID", func(t *testing.T) {
		m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_alice", "snsapi_userinfo"))
		wantCode(t, m, 0)
		if m["openid"] != "oWXEMU_alice" || m["unionid"] != "uWXEMU_alice" || m["scope"] != "snsapi_userinfo" ||
			m["expires_in"] != 7200.0 || m["access_token"] == "" || m["refresh_token"] == "" {
			t.Errorf("got %v", m)
		}
		if _, ok := m["is_snapshotuser"]; ok {
			t.Errorf("is_snapshotuser for a normal user: %v", m)
		}
	})
	t.Run("BaseHasNoUnionID", func(t *testing.T) {
		m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_alice", "snsapi_base"))
		if _, ok := m["unionid"]; ok || m["scope"] != "snsapi_base" {
			t.Errorf("got %v", m)
		}
	})
	t.Run("NoUnionID", func(t *testing.T) {
		m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_userinfo"))
		if _, ok := m["unionid"]; ok || m["openid"] != "oWXEMU_bob" {
			t.Errorf("got %v", m)
		}
	})
	t.Run("Snapshot", func(t *testing.T) {
		m := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_snap", "snsapi_userinfo"))
		if m["is_snapshotuser"] != 1.0 {
			t.Errorf("got %v", m)
		}
	})
	t.Run("CodeUsed40163", func(t *testing.T) {
		code := scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base")
		wantCode(t, exchange(t, srv, code), 0)
		wantCode(t, exchange(t, srv, code), 40163)
	})
	t.Run("Unknown40029", func(t *testing.T) {
		wantCode(t, exchange(t, srv, "0612abcdefghijklmnopqrstuvwxyz"), 40029)
	})
	t.Run("Expired40029", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		code := scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base")
		fresh := scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base")
		advance(t, srv, 299)
		wantCode(t, exchange(t, srv, fresh), 0)
		advance(t, srv, 1)
		wantCode(t, exchange(t, srv, code), 40029)
	})
	for name, tc := range map[string]struct {
		query string
		code  int
	}{
		"BadAppID40013":    {"appid=wxother&secret=" + testSecret + "&code=x&grant_type=authorization_code", 40013},
		"BadSecret40125":   {"appid=" + testAppID + "&secret=nope&code=x&grant_type=authorization_code", 40125},
		"NoAppID41002":     {"secret=" + testSecret + "&code=x&grant_type=authorization_code", 41002},
		"NoSecret41004":    {"appid=" + testAppID + "&code=x&grant_type=authorization_code", 41004},
		"NoCode41008":      {"appid=" + testAppID + "&secret=" + testSecret + "&grant_type=authorization_code", 41008},
		"BadGrantType4002": {"appid=" + testAppID + "&secret=" + testSecret + "&code=x&grant_type=client_credential", 40002},
	} {
		t.Run(name, func(t *testing.T) {
			m := getJSON(t, srv.URL+"/sns/oauth2/access_token?"+tc.query)
			wantCode(t, m, tc.code)
		})
	}
	t.Run("ErrmsgRid", func(t *testing.T) {
		m := exchange(t, srv, "nope-nope-nope-nope")
		msg, _ := m["errmsg"].(string)
		if !regexp.MustCompile(`^invalid code rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`).MatchString(msg) {
			t.Errorf("errmsg %q", msg)
		}
		if strings.Contains(msg, testSecret) {
			t.Error("errmsg leaks the secret")
		}
	})
}

func TestEmulator_SNSRefreshUserInfoAuth(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	full := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_alice", "snsapi_userinfo"))
	base := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base"))
	userinfo := func(tok, openid, lang string) map[string]any {
		return getJSON(t, srv.URL+"/sns/userinfo?access_token="+url.QueryEscape(tok)+"&openid="+openid+"&lang="+lang)
	}
	auth := func(tok, openid string) map[string]any {
		return getJSON(t, srv.URL+"/sns/auth?access_token="+url.QueryEscape(tok)+"&openid="+openid)
	}
	fullTok, baseTok := full["access_token"].(string), base["access_token"].(string)

	t.Run("UserInfo", func(t *testing.T) {
		for _, lang := range []string{"zh_CN", "zh_TW", "en"} {
			m := userinfo(fullTok, "oWXEMU_alice", lang)
			wantCode(t, m, 0)
			if m["nickname"] != "Alice 爱丽丝" || m["sex"] != 0.0 || m["unionid"] != "uWXEMU_alice" ||
				m["province"] != "" || m["city"] != "" || m["country"] != "" ||
				m["headimgurl"] != srv.URL+"/emu/avatar/oWXEMU_alice/132" {
				t.Errorf("%s: %v", lang, m)
			}
			if p, ok := m["privilege"].([]any); !ok || len(p) != 0 {
				t.Errorf("privilege = %#v, want []", m["privilege"])
			}
		}
	})
	t.Run("Base48001", func(t *testing.T) { wantCode(t, userinfo(baseTok, "oWXEMU_bob", "zh_CN"), 48001) })
	t.Run("OpenIDMismatch40003", func(t *testing.T) { wantCode(t, userinfo(fullTok, "oWXEMU_bob", "zh_CN"), 40003) })
	t.Run("Unknown40001", func(t *testing.T) { wantCode(t, userinfo(strings.Repeat("A", 86), "oWXEMU_alice", "zh_CN"), 40001) })
	t.Run("Malformed40014", func(t *testing.T) { wantCode(t, userinfo("bad token!", "oWXEMU_alice", "zh_CN"), 40014) })
	t.Run("Missing41001", func(t *testing.T) { wantCode(t, userinfo("", "oWXEMU_alice", "zh_CN"), 41001) })
	t.Run("AuthOK", func(t *testing.T) {
		m := auth(fullTok, "oWXEMU_alice")
		if m["errcode"] != 0.0 || m["errmsg"] != "ok" {
			t.Errorf("got %v", m)
		}
	})
	t.Run("Auth40003", func(t *testing.T) { wantCode(t, auth(fullTok, "oWXEMU_bob"), 40003) })

	t.Run("Refresh", func(t *testing.T) {
		rt := full["refresh_token"].(string)
		m := getJSON(t, srv.URL+"/sns/oauth2/refresh_token?appid="+testAppID+"&grant_type=refresh_token&refresh_token="+rt)
		wantCode(t, m, 0)
		if m["refresh_token"] != rt || m["access_token"] == fullTok || m["openid"] != "oWXEMU_alice" || m["scope"] != "snsapi_userinfo" {
			t.Errorf("got %v", m)
		}
		wantCode(t, userinfo(m["access_token"].(string), "oWXEMU_alice", "zh_CN"), 0)
		wantCode(t, getJSON(t, srv.URL+"/sns/oauth2/refresh_token?appid="+testAppID+"&grant_type=refresh_token&refresh_token=nope"), 40030)
		wantCode(t, getJSON(t, srv.URL+"/sns/oauth2/refresh_token?appid=wxother&grant_type=refresh_token&refresh_token="+rt), 40013)
		wantCode(t, getJSON(t, srv.URL+"/sns/oauth2/refresh_token?appid="+testAppID+"&grant_type=refresh_token"), 41003)
	})

	t.Run("Expiry", func(t *testing.T) {
		advance(t, srv, 7200)
		wantCode(t, userinfo(fullTok, "oWXEMU_alice", "zh_CN"), 42001)
		wantCode(t, auth(fullTok, "oWXEMU_alice"), 42001)
		rt := full["refresh_token"].(string)
		// Refreshing does not restart the 30-day clock.
		advance(t, srv, 29*24*3600)
		m := getJSON(t, srv.URL+"/sns/oauth2/refresh_token?appid="+testAppID+"&grant_type=refresh_token&refresh_token="+rt)
		wantCode(t, m, 0)
		advance(t, srv, 24*3600-7200)
		wantCode(t, getJSON(t, srv.URL+"/sns/oauth2/refresh_token?appid="+testAppID+"&grant_type=refresh_token&refresh_token="+rt), 42002)
	})
}

func FuzzParseAuthorize(f *testing.F) {
	e, err := New(Config{AppID: testAppID, AppSecret: testSecret, OAuthDomains: []string{testDomain}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("appid=" + testAppID + "&redirect_uri=https%3A%2F%2F" + testDomain + "%2Fcb&response_type=code&scope=snsapi_base&state=s&connect_redirect=1")
	f.Add("appid=&redirect_uri=&response_type=code&scope=&state=")
	f.Fuzz(func(t *testing.T, raw string) {
		req, prob := e.parseAuthorize(raw)
		if prob != nil {
			return
		}
		if !e.allowedRedirect(req.redirectURI) || (req.scope != scopeBase && req.scope != scopeUserInfo) || !statePattern.MatchString(req.state) || req.state == "" {
			t.Errorf("accepted %q", raw)
		}
	})
}
