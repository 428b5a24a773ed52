package wxemu

import (
	"bytes"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	qr "github.com/piglig/go-qr"
)

func fetchToken(tb testing.TB, srv *httptest.Server) map[string]any {
	tb.Helper()
	return getJSON(tb, srv.URL+"/cgi-bin/token?grant_type=client_credential&appid="+testAppID+"&secret="+testSecret)
}

func stableToken(tb testing.TB, srv *httptest.Server, force bool) map[string]any {
	tb.Helper()
	f := "false"
	if force {
		f = "true"
	}
	return postJSON(tb, srv.URL+"/cgi-bin/stable_token",
		`{"grant_type":"client_credential","appid":"`+testAppID+`","secret":"`+testSecret+`","force_refresh":`+f+`}`)
}

// menuGet calls menu/get with tok: a cheap call that checks the token.
func menuGet(tb testing.TB, srv *httptest.Server, tok string) map[string]any {
	tb.Helper()
	return getJSON(tb, srv.URL+"/cgi-bin/menu/get?access_token="+url.QueryEscape(tok))
}

// tokenCode is the errcode a cgi-bin call gets with tok (46003, no menu,
// means the token was accepted).
func tokenCode(tb testing.TB, srv *httptest.Server, tok string) int {
	tb.Helper()
	c := errcode(tb, menuGet(tb, srv, tok))
	if c == 46003 {
		return 0
	}
	return c
}

func TestEmulator_Token(t *testing.T) {
	t.Run("OverlapThen40001", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		first := fetchToken(t, srv)
		wantCode(t, first, 0)
		if first["expires_in"] != 7200.0 {
			t.Errorf("expires_in = %v", first["expires_in"])
		}
		tok1 := first["access_token"].(string)
		advance(t, srv, 60)
		tok2 := fetchToken(t, srv)["access_token"].(string)
		if tok1 == tok2 {
			t.Fatal("cgi-bin/token returned the same token twice")
		}
		advance(t, srv, 299)
		if c := tokenCode(t, srv, tok1); c != 0 {
			t.Errorf("old token within the 5-minute overlap: %d", c)
		}
		advance(t, srv, 1)
		if c := tokenCode(t, srv, tok1); c != 40001 {
			t.Errorf("old token after the overlap: %d, want 40001", c)
		}
		if c := tokenCode(t, srv, tok2); c != 0 {
			t.Errorf("new token: %d", c)
		}
		advance(t, srv, 7200-300)
		if c := tokenCode(t, srv, tok2); c != 42001 {
			t.Errorf("token after 7200 s: %d, want 42001", c)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		for name, tc := range map[string]struct {
			query string
			code  int
		}{
			"GrantType40002": {"grant_type=authorization_code&appid=" + testAppID + "&secret=" + testSecret, 40002},
			"AppID40013":     {"grant_type=client_credential&appid=wxother&secret=" + testSecret, 40013},
			"Secret40125":    {"grant_type=client_credential&appid=" + testAppID + "&secret=wrong", 40125},
		} {
			t.Run(name, func(t *testing.T) { wantCode(t, getJSON(t, srv.URL+"/cgi-bin/token?"+tc.query), tc.code) })
		}
		t.Run("Missing41001", func(t *testing.T) { wantCode(t, menuGet(t, srv, ""), 41001) })
		t.Run("Unknown40001", func(t *testing.T) { wantCode(t, menuGet(t, srv, "nope"), 40001) })
		t.Run("WebTokenIsNotGlobal", func(t *testing.T) {
			web := exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base"))["access_token"].(string)
			wantCode(t, menuGet(t, srv, web), 40001)
		})
	})
	t.Run("Quota45009", func(t *testing.T) {
		e, srv := newTestEmulator(t, nil)
		u := "/cgi-bin/token?grant_type=client_credential&appid=" + testAppID + "&secret=" + testSecret
		for i := 0; i < tokenDailyQuota; i++ {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
			if strings.Contains(rec.Body.String(), "errcode") {
				t.Fatalf("call %d: %s", i+1, rec.Body)
			}
		}
		wantCode(t, fetchToken(t, srv), 45009)
		// The quota resets at Beijing midnight (16:00 UTC); t0 is 06:20 UTC.
		advance(t, srv, 10*3600)
		wantCode(t, fetchToken(t, srv), 0)
	})
	t.Run("VoidToken", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		tok := fetchToken(t, srv)["access_token"].(string)
		st := stableToken(t, srv, false)["access_token"].(string)
		postJSON(t, srv.URL+"/emu/void-token", `{}`)
		if c := tokenCode(t, srv, tok); c != 40001 {
			t.Errorf("voided token: %d, want 40001", c)
		}
		if c := tokenCode(t, srv, st); c != 40001 {
			t.Errorf("voided stable token: %d, want 40001", c)
		}
		st2 := stableToken(t, srv, false)["access_token"].(string)
		if st2 == st || tokenCode(t, srv, st2) != 0 {
			t.Error("stable_token after a void did not issue a working new token")
		}
	})
}

func TestEmulator_StableToken(t *testing.T) {
	t.Run("SameTokenUntil5MinutesLeft", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		a := stableToken(t, srv, false)
		wantCode(t, a, 0)
		if a["expires_in"] != 7200.0 {
			t.Errorf("expires_in = %v", a["expires_in"])
		}
		advance(t, srv, 1000)
		b := stableToken(t, srv, false)
		if b["access_token"] != a["access_token"] || b["expires_in"] != 6200.0 {
			t.Errorf("second call: %v", b)
		}
		advance(t, srv, 5899) // 301 s left
		c := stableToken(t, srv, false)
		if c["access_token"] != a["access_token"] || c["expires_in"] != 301.0 {
			t.Errorf("third call: %v", c)
		}
		advance(t, srv, 1) // 300 s left: renewed
		d := stableToken(t, srv, false)
		if d["access_token"] == a["access_token"] || d["expires_in"] != 7200.0 {
			t.Errorf("renewal: %v", d)
		}
		if tokenCode(t, srv, a["access_token"].(string)) != 0 {
			t.Error("the renewed-away token should live until its expiry")
		}
	})
	t.Run("IsolatedFromToken", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		st := stableToken(t, srv, false)["access_token"].(string)
		fetchToken(t, srv)
		fetchToken(t, srv)
		advance(t, srv, 600)
		if c := tokenCode(t, srv, st); c != 0 {
			t.Errorf("cgi-bin/token calls voided the stable token: %d", c)
		}
	})
	t.Run("ForceRefresh", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		old := stableToken(t, srv, false)["access_token"].(string)
		f := stableToken(t, srv, true)
		wantCode(t, f, 0)
		if f["access_token"] == old {
			t.Fatal("force_refresh returned the same token")
		}
		// "会导致上次获取的 access_token 失效": the previous token fails at once.
		if c := tokenCode(t, srv, old); c != 40001 {
			t.Errorf("old token after a force_refresh: %d, want 40001 at once", c)
		}
		// A force within 30 s of the previous one is answered without
		// refreshing ("否则不会刷新"): the current token, still valid.
		again := stableToken(t, srv, true)
		wantCode(t, again, 0)
		advance(t, srv, 29)
		later := stableToken(t, srv, true)
		if again["access_token"] != f["access_token"] || later["access_token"] != f["access_token"] || later["expires_in"] != 7171.0 {
			t.Errorf("forces within 30 s: %v then %v, want %v unchanged", again, later, f["access_token"])
		}
		if c := tokenCode(t, srv, f["access_token"].(string)); c != 0 {
			t.Errorf("a force within 30 s voided the current token: %d", c)
		}
		advance(t, srv, 1)
		third := stableToken(t, srv, true)
		if third["access_token"] == f["access_token"] || third["expires_in"] != 7200.0 {
			t.Errorf("force 30 s later: %v, want a new token", third)
		}
		if g := stableToken(t, srv, false); g["access_token"] != third["access_token"] {
			t.Errorf("non-forced call after a force: %v", g)
		}
	})
	t.Run("ForceTooSoonNotCounted", func(t *testing.T) {
		// Only refreshing forces count toward the 20 a day.
		_, srv := newTestEmulator(t, nil)
		for i := 0; i < 2*forceDailyQuota; i++ {
			wantCode(t, stableToken(t, srv, true), 0)
		}
	})
	t.Run("ForceDaily45009", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		for i := 0; i < forceDailyQuota; i++ {
			wantCode(t, stableToken(t, srv, true), 0)
			advance(t, srv, 30)
		}
		wantCode(t, stableToken(t, srv, true), 45009)
	})
	t.Run("Errors", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		wantCode(t, postJSON(t, srv.URL+"/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"wxother","secret":"x"}`), 40013)
		wantCode(t, postJSON(t, srv.URL+"/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"`+testAppID+`","secret":"x"}`), 40125)
		wantCode(t, postJSON(t, srv.URL+"/cgi-bin/stable_token", `{"grant_type":"x","appid":"`+testAppID+`","secret":"`+testSecret+`"}`), 40002)
		wantCode(t, postJSON(t, srv.URL+"/cgi-bin/stable_token", `{not json`), 47001)
		wantCode(t, getJSON(t, srv.URL+"/cgi-bin/stable_token"), 43002)
	})
}

func TestEmulator_Ticket(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	tok := stableToken(t, srv, false)["access_token"].(string)
	m := getJSON(t, srv.URL+"/cgi-bin/ticket/getticket?access_token="+tok+"&type=jsapi")
	if m["errcode"] != 0.0 || m["errmsg"] != "ok" || m["expires_in"] != 7200.0 || len(m["ticket"].(string)) < 32 {
		t.Errorf("got %v", m)
	}
	wantCode(t, getJSON(t, srv.URL+"/cgi-bin/ticket/getticket?access_token="+tok+"&type=nope"), 40097)
	wantCode(t, getJSON(t, srv.URL+"/cgi-bin/ticket/getticket?access_token=bad&type=jsapi"), 40001)
	wantCode(t, getJSON(t, srv.URL+"/cgi-bin/ticket/getticket?type=jsapi"), 41001)
}

func createQR(tb testing.TB, srv *httptest.Server, tok, body string) map[string]any {
	tb.Helper()
	return postJSON(tb, srv.URL+"/cgi-bin/qrcode/create?access_token="+tok, body)
}

func TestEmulator_QRCode(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	tok := stableToken(t, srv, false)["access_token"].(string)
	t.Run("Create", func(t *testing.T) {
		tests := []struct {
			name, body string
			expire     any
		}{
			{"StrScene", `{"expire_seconds":604800,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"abc"}}}`, 604800.0},
			{"SceneDefault60", `{"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":123}}}`, 60.0},
			{"MaxClamped", `{"expire_seconds":9999999,"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":7}}}`, 2592000.0},
			{"LimitScene", `{"action_name":"QR_LIMIT_SCENE","action_info":{"scene":{"scene_id":100000}}}`, nil},
			{"LimitStrScene", `{"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"` + strings.Repeat("x", 64) + `"}}}`, nil},
			{"StrScene63BytesUTF8", `{"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"` + strings.Repeat("码", 21) + `"}}}`, 60.0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				m := createQR(t, srv, tok, tt.body)
				wantCode(t, m, 0)
				if m["expire_seconds"] != tt.expire || !strings.HasPrefix(m["url"].(string), srv.URL+"/q/") || m["ticket"] == "" {
					t.Errorf("got %v", m)
				}
			})
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		for name, body := range map[string]string{
			"Action":         `{"action_name":"QR_NOPE","action_info":{"scene":{"scene_id":1}}}`,
			"SceneIDZero":    `{"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":0}}}`,
			"SceneIDMissing": `{"action_name":"QR_SCENE","action_info":{"scene":{}}}`,
			"SceneID33Bit":   `{"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":8589934592}}}`,
			"LimitAbove":     `{"action_name":"QR_LIMIT_SCENE","action_info":{"scene":{"scene_id":100001}}}`,
			"StrEmpty":       `{"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":""}}}`,
			"StrTooLong":     `{"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"` + strings.Repeat("x", 65) + `"}}}`,
			"StrTooLongUTF8": `{"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"` + strings.Repeat("码", 22) + `"}}}`,
			"NegativeExpire": `{"expire_seconds":-1,"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":1}}}`,
		} {
			t.Run(name, func(t *testing.T) { wantCode(t, createQR(t, srv, tok, body), 40097) })
		}
		wantCode(t, createQR(t, srv, tok, `nope`), 47001)
		wantCode(t, createQR(t, srv, "bad", `{}`), 40001)
	})
	t.Run("PermanentSameTicket", func(t *testing.T) {
		body := `{"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"login"}}}`
		a, b := createQR(t, srv, tok, body), createQR(t, srv, tok, body)
		if a["ticket"] != b["ticket"] || a["url"] != b["url"] {
			t.Errorf("%v vs %v", a, b)
		}
	})
	t.Run("ShowQRCode", func(t *testing.T) {
		m := createQR(t, srv, tok, `{"expire_seconds":60,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"s1"}}}`)
		ticket := m["ticket"].(string)
		if !strings.ContainsAny(ticket, "+/=") {
			t.Errorf("ticket %q is not standard base64 like WeChat's", ticket)
		}
		resp, err := http.Get(srv.URL + "/cgi-bin/showqrcode?ticket=" + url.QueryEscape(ticket))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("status %d type %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() < 100 || img.Bounds().Dx() > 256 {
			t.Fatalf("not a QR PNG of at most 256 px: %v", err)
		}
		if res, err := qr.DecodeDetailed(img); err != nil || !strings.HasPrefix(res.Text, srv.URL+"/q/") || res.Ecc < qr.Medium {
			t.Errorf("QR decodes to %+v, %v; want level M or better and %s/q/...", res, err, srv.URL)
		}
		status, _, body := getPage(t, srv.URL+"/cgi-bin/showqrcode?ticket="+url.QueryEscape(ticket)+"&page=1", nil)
		if status != 200 || !strings.Contains(body, `id="scan-oWXEMU_alice"`) || !strings.Contains(body, `id="scan-oWXEMU_bob"`) {
			t.Errorf("page: %d %s", status, body)
		}
		status, _, body = getPage(t, srv.URL+"/cgi-bin/showqrcode?ticket="+url.QueryEscape(ticket), map[string]string{"Accept": "text/html,application/xhtml+xml"})
		if status != 200 || !strings.Contains(body, `id="scan-oWXEMU_alice"`) {
			t.Errorf("Accept page: %d", status)
		}
		qid := strings.TrimPrefix(m["url"].(string), srv.URL)
		if status, _, body = getPage(t, srv.URL+qid, nil); status != 200 || !strings.Contains(body, `id="scan-oWXEMU_bob"`) {
			t.Errorf("url content page: %d", status)
		}
		if status, _, _ = getPage(t, srv.URL+"/cgi-bin/showqrcode?ticket=nope", nil); status != 404 {
			t.Errorf("bad ticket: %d, want 404", status)
		}
		advance(t, srv, 60)
		if status, _, _ = getPage(t, srv.URL+"/cgi-bin/showqrcode?ticket="+url.QueryEscape(ticket), nil); status != 404 {
			t.Errorf("expired ticket: %d, want 404", status)
		}
	})
}

func TestEmulator_Menu(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	tok := stableToken(t, srv, false)["access_token"].(string)
	create := func(body string) map[string]any {
		return postJSON(t, srv.URL+"/cgi-bin/menu/create?access_token="+tok, body)
	}
	wantCode(t, menuGet(t, srv, tok), 46003)
	good := `{"button":[{"type":"click","name":"今日歌曲","key":"V1001_TODAY_MUSIC"},
	  {"name":"菜单","sub_button":[{"type":"view","name":"搜索","url":"http://www.soso.com/"},
	    {"type":"miniprogram","name":"wxa","url":"http://mp.weixin.qq.com","appid":"wx286b93c14bbf93aa","pagepath":"pages/lunar/index"},
	    {"type":"click","name":"赞一下我们","key":"V1001_GOOD"}]}]}`
	m := create(good)
	if m["errcode"] != 0.0 || m["errmsg"] != "ok" {
		t.Fatalf("create: %v", m)
	}
	got := menuGet(t, srv, tok)
	menu, _ := got["menu"].(map[string]any)
	buttons, _ := menu["button"].([]any)
	if len(buttons) != 2 {
		t.Fatalf("menu/get: %v", got)
	}
	if sub := buttons[1].(map[string]any)["sub_button"].([]any); len(sub) != 3 || sub[0].(map[string]any)["url"] != "http://www.soso.com/" {
		t.Errorf("sub_button: %v", sub)
	}

	long := func(n int) string { return strings.Repeat("a", n) }
	leaf := func(typ, name, key, url string) string {
		return `{"type":"` + typ + `","name":"` + name + `","key":"` + key + `","url":"` + url + `"}`
	}
	sub := func(b string) string { return `{"button":[{"name":"m","sub_button":[` + b + `]}]}` }
	tests := []struct {
		name, body string
		code       int
	}{
		{"NoButtons40016", `{"button":[]}`, 40016},
		{"FourButtons40016", `{"button":[` + strings.Repeat(leaf("click", "a", "k", "")+",", 3) + leaf("click", "a", "k", "") + `]}`, 40016},
		{"Type40017", `{"button":[` + leaf("nope", "a", "k", "") + `]}`, 40017},
		{"NameSize40018", `{"button":[` + leaf("click", long(17), "k", "") + `]}`, 40018},
		{"NameEmpty40018", `{"button":[` + leaf("click", "", "k", "") + `]}`, 40018},
		{"KeySize40019", `{"button":[` + leaf("click", "a", long(129), "") + `]}`, 40019},
		{"URLSize40020", `{"button":[` + leaf("view", "a", "", "http://x/"+long(1020)) + `]}`, 40020},
		{"SubCount40023", sub(strings.Repeat(leaf("click", "a", "k", "")+",", 5) + leaf("click", "a", "k", "")), 40023},
		{"SubType40024", sub(leaf("nope", "a", "k", "")), 40024},
		{"SubNameSize40025", sub(leaf("click", long(61), "k", "")), 40025},
		{"SubKeySize40026", sub(leaf("click", "a", "", "")), 40026},
		{"SubURLSize40027", sub(leaf("view", "a", "", "")), 40027},
		{"ParentNameSize40018", `{"button":[{"name":"` + long(17) + `","sub_button":[` + leaf("click", "a", "k", "") + `]}]}`, 40018},
		{"BadJSON47001", `{"button":`, 47001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, create(tt.body), tt.code) })
	}
	t.Run("SubName60OK", func(t *testing.T) { wantCode(t, create(sub(leaf("click", long(60), "k", ""))), 0) })
	t.Run("Delete", func(t *testing.T) {
		m := getJSON(t, srv.URL+"/cgi-bin/menu/delete?access_token="+tok)
		if m["errcode"] != 0.0 {
			t.Fatalf("delete: %v", m)
		}
		wantCode(t, menuGet(t, srv, tok), 46003)
	})
}

func TestEmulator_UserInfo(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	tok := stableToken(t, srv, false)["access_token"].(string)
	info := func(openid string) map[string]any {
		return getJSON(t, srv.URL+"/cgi-bin/user/info?access_token="+tok+"&openid="+openid+"&lang=zh_CN")
	}
	a := info("oWXEMU_alice")
	if a["subscribe"] != 1.0 || a["unionid"] != "uWXEMU_alice" || a["subscribe_time"] != float64(t0.Unix()) || a["qr_scene_str"] != "" {
		t.Errorf("alice: %v", a)
	}
	if _, ok := a["nickname"]; ok {
		t.Error("user/info returns nickname (removed since 2021-12-27)")
	}
	if _, ok := a["headimgurl"]; ok {
		t.Error("user/info returns headimgurl (removed since 2021-12-27)")
	}
	if b := info("oWXEMU_bob"); b["subscribe"] != 0.0 || b["openid"] != "oWXEMU_bob" {
		t.Errorf("bob: %v", b)
	}
	wantCode(t, info("oNobody"), 40003)
	wantCode(t, getJSON(t, srv.URL+"/cgi-bin/user/info?openid=oWXEMU_bob"), 41001)
}

func TestEmulator_JSSDKCheck(t *testing.T) {
	const (
		ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
		want   = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
	)
	t.Run("official/JSSDK", func(t *testing.T) {
		for _, u := range []string{"http://mp.weixin.qq.com?params=value", "http://mp.weixin.qq.com?params=value#xxxx"} {
			if got := jssdkSignature(ticket, "Wm3WZYTPz0wzccnW", "1414587457", u); got != want {
				t.Errorf("%s: %s, want %s", u, got, want)
			}
		}
	})
	e, srv := newTestEmulator(t, nil)
	e.mu.Lock()
	e.tickets[ticket] = t0.Add(ticketTTL)
	e.mu.Unlock()
	check := func(sig, page string) map[string]any {
		q := url.Values{"url": {page}, "timestamp": {"1414587457"}, "nonceStr": {"Wm3WZYTPz0wzccnW"}, "signature": {sig}}
		return getJSON(t, srv.URL+"/emu/jssdk/check?"+q.Encode())
	}
	if m := check(want, "http://mp.weixin.qq.com?params=value#frag"); m["valid"] != true {
		t.Errorf("official signature: %v", m)
	}
	if m := check(want, "http://mp.weixin.qq.com?params=other"); m["valid"] != false || m["error"] == "" {
		t.Errorf("other url: %v", m)
	}
	if m := getJSON(t, srv.URL+"/emu/jssdk/check?url=x"); m["_status"] != 400.0 || m["valid"] != false {
		t.Errorf("missing parameters: %v", m)
	}
	tok := stableToken(t, srv, false)["access_token"].(string)
	issued := getJSON(t, srv.URL+"/cgi-bin/ticket/getticket?access_token="+tok+"&type=jsapi")["ticket"].(string)
	page := "https://" + testDomain + "/shop?item=42"
	if m := check(jssdkSignature(issued, "Wm3WZYTPz0wzccnW", "1414587457", page), page); m["valid"] != true {
		t.Errorf("issued ticket: %v", m)
	}
	advance(t, srv, 7200)
	if m := check(want, "http://mp.weixin.qq.com?params=value"); m["valid"] != false {
		t.Errorf("expired ticket still verifies: %v", m)
	}
}
