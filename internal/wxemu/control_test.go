package wxemu

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNew_Errors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"NoAppID", Config{AppSecret: "s"}},
		{"NoSecret", Config{AppID: "a"}},
		{"BadDomain", Config{AppID: "a", AppSecret: "s", OAuthDomains: []string{"https://x.com/"}}},
		{"BadUser", Config{AppID: "a", AppSecret: "s", Users: []User{{OpenID: "bad id"}}}},
		{"BadMode", Config{AppID: "a", AppSecret: "s", Mode: "weird"}},
		{"SafeWithoutKey", Config{AppID: "a", AppSecret: "s", CallbackURL: "http://127.0.0.1/wx", CallbackToken: "tok123", Mode: "safe"}},
		{"ShortToken", Config{AppID: "a", AppSecret: "s", CallbackURL: "http://127.0.0.1/wx", CallbackToken: "ab"}},
		{"RelativeURL", Config{AppID: "a", AppSecret: "s", CallbackURL: "/wx", CallbackToken: "tok123"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Error("New accepted a bad Config")
			}
		})
	}
	t.Run("SecretsNotInErrors", func(t *testing.T) {
		_, err := New(Config{AppID: "a", AppSecret: "s", CallbackURL: "http://127.0.0.1/wx", CallbackToken: "tok123", AESKey: "secretkeyvalue", Mode: "safe"})
		if err == nil || strings.Contains(err.Error(), "secretkeyvalue") {
			t.Errorf("err = %v", err)
		}
		if !errors.Is(err, ErrAESKey) {
			t.Errorf("err = %v, want ErrAESKey", err)
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		e, err := New(Config{AppID: "a", AppSecret: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if e.originalID != defaultOriginal || e.client.Timeout != 5*time.Second || len(e.users) != 3 {
			t.Errorf("defaults: %q %v %d", e.originalID, e.client.Timeout, len(e.users))
		}
	})
}

func TestBuiltinUsers(t *testing.T) {
	us := BuiltinUsers()
	if len(us) != 3 {
		t.Fatalf("%d users", len(us))
	}
	a, b, s := us[0], us[1], us[2]
	if a.OpenID != "oWXEMU_alice" || a.UnionID != "uWXEMU_alice" || a.Nickname != "Alice 爱丽丝" || !a.Follows {
		t.Errorf("alice %+v", a)
	}
	if b.OpenID != "oWXEMU_bob" || b.UnionID != "" || b.Follows {
		t.Errorf("bob %+v", b)
	}
	if s.OpenID != "oWXEMU_snap" || !s.Snapshot || s.Nickname != "微信用户" {
		t.Errorf("snap %+v", s)
	}
	us[0].Nickname = "changed"
	if BuiltinUsers()[0].Nickname != "Alice 爱丽丝" {
		t.Error("BuiltinUsers shares its slice")
	}
}

func TestEmulator_Faults(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	t.Run("ErrCodeTimes", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/faults", `{"path":"/cgi-bin/stable_token","errcode":-1,"times":2}`)
		wantCode(t, stableToken(t, srv, false), -1)
		wantCode(t, stableToken(t, srv, false), -1)
		wantCode(t, stableToken(t, srv, false), 0)
	})
	t.Run("Status", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/faults", `{"path":"/sns/oauth2/access_token","status":503}`)
		resp, err := http.Get(srv.URL + "/sns/oauth2/access_token?appid=x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("status %d", resp.StatusCode)
		}
		wantCode(t, getJSON(t, srv.URL+"/sns/oauth2/access_token?appid=x"), 40013)
	})
	t.Run("DelayHonoursContext", func(t *testing.T) {
		e, _ := newTestEmulator(t, nil)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/emu/faults", strings.NewReader(`{"path":"/cgi-bin/token","delay_ms":600000}`)))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rec = httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/cgi-bin/token?grant_type=client_credential&appid="+testAppID+"&secret="+testSecret, nil)
		e.ServeHTTP(rec, req.WithContext(ctx)) // returns at once, or this test times out
		if rec.Body.Len() != 0 {
			t.Errorf("a cancelled delayed call still answered: %s", rec.Body)
		}
	})
	t.Run("DelayThenNormal", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/faults", `{"path":"/cgi-bin/token","delay_ms":1}`)
		wantCode(t, fetchToken(t, srv), 0)
	})
	t.Run("UntilDeleted", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/faults", `{"path":"/sns/auth","errcode":45011,"times":-1}`)
		for i := 0; i < 3; i++ {
			wantCode(t, getJSON(t, srv.URL+"/sns/auth"), 45011)
		}
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/emu/faults", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wantCode(t, getJSON(t, srv.URL+"/sns/auth"), 41001)
	})
	t.Run("Invalid", func(t *testing.T) {
		for _, body := range []string{`{"path":"/nope","errcode":-1}`, `{"path":"/cgi-bin/token","status":42}`, `{"path":"/cgi-bin/token","delay_ms":-1}`, `x`} {
			if m := postJSON(t, srv.URL+"/emu/faults", body); m["_status"] != 400.0 {
				t.Errorf("%s: %v", body, m)
			}
		}
	})
}

func TestEmulator_Calls(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	exchange(t, srv, "nope")
	exchange(t, srv, "nope")
	stableToken(t, srv, false)
	scriptedCode(t, srv, "oWXEMU_alice", "snsapi_base")
	postJSON(t, srv.URL+"/emu/faults", `{"path":"/sns/userinfo","status":500}`)
	resp, _ := http.Get(srv.URL + "/sns/userinfo")
	resp.Body.Close()
	calls := getJSON(t, srv.URL+"/emu/calls")
	want := map[string]float64{"/sns/oauth2/access_token": 2, "/cgi-bin/stable_token": 1, "/connect/oauth2/authorize": 1, "/sns/userinfo": 1}
	for k, v := range want {
		if calls[k] != v {
			t.Errorf("%s = %v, want %v (%v)", k, calls[k], v, calls)
		}
	}
	if _, ok := calls["/emu/faults"]; ok {
		t.Error("control calls are counted")
	}
	postJSON(t, srv.URL+"/emu/calls/reset", `{}`)
	if calls = getJSON(t, srv.URL+"/emu/calls"); len(calls) != 1 { // only _status
		t.Errorf("after reset: %v", calls)
	}
}

func TestEmulator_Users(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	m := postJSON(t, srv.URL+"/emu/users", `{"openid":"oCarol","unionid":"uCarol","nickname":"Carol","sex":2,"follows":true,"headimgurl":"http://img.example/c/0"}`)
	if m["openid"] != "oCarol" {
		t.Fatalf("%v", m)
	}
	resp, err := http.Get(srv.URL + "/emu/users")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range []string{`"openid":"oCarol"`, `"headimgurl":"http://img.example/c/0"`, `"headimgurl":"` + srv.URL + `/emu/avatar/oWXEMU_bob/132"`, `"snapshot":true`} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("users lack %s: %s", s, b)
		}
	}
	full := exchange(t, srv, scriptedCode(t, srv, "oCarol", "snsapi_userinfo"))
	info := getJSON(t, srv.URL+"/sns/userinfo?access_token="+full["access_token"].(string)+"&openid=oCarol&lang=en")
	if info["sex"] != 2.0 || info["unionid"] != "uCarol" || info["headimgurl"] != "http://img.example/c/0" {
		t.Errorf("%v", info)
	}
	if m := postJSON(t, srv.URL+"/emu/users", `{"openid":"","nickname":"x"}`); m["_status"] != 400.0 {
		t.Errorf("empty openid accepted: %v", m)
	}

	// A browser gets a page; ?format=json and Accept: application/json get JSON.
	for _, tc := range []struct {
		name, query, accept, wantType, want string
	}{
		{"Browser", "", "text/html,application/xhtml+xml,*/*;q=0.8", "text/html", `<code>uCarol</code>`},
		{"FormatJSON", "?format=json", "text/html,*/*", "application/json", `"unionid":"uCarol"`},
		{"AcceptJSON", "", "application/json", "application/json", `"unionid":"uCarol"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/emu/users"+tc.query, nil)
			req.Header.Set("Accept", tc.accept)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) || !bytes.Contains(b, []byte(tc.want)) {
				t.Errorf("Content-Type %q, body lacks %s: %s", ct, tc.want, b)
			}
		})
	}
}

func TestEmulator_Clock(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	if m := getJSON(t, srv.URL+"/emu/clock"); m["now"] != float64(t0.Unix()) {
		t.Errorf("%v", m)
	}
	if m := postJSON(t, srv.URL+"/emu/clock", `{"advance_seconds":90}`); m["now"] != float64(t0.Unix()+90) {
		t.Errorf("%v", m)
	}
	if m := postJSON(t, srv.URL+"/emu/clock", `{"advance_seconds":-1}`); m["_status"] != 400.0 {
		t.Errorf("%v", m)
	}
}

func TestEmulator_Pages(t *testing.T) {
	_, srv := newTestEmulator(t, nil)
	for _, size := range []string{"0", "46", "64", "96", "132"} {
		resp, err := http.Get(srv.URL + "/emu/avatar/oWXEMU_alice/" + size)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("avatar %s: %v", size, err)
		}
		want := map[string]int{"0": 640, "46": 46, "64": 64, "96": 96, "132": 132}[size]
		if img.Bounds().Dx() != want {
			t.Errorf("avatar %s is %d px", size, img.Bounds().Dx())
		}
	}
	if status, _, _ := getPage(t, srv.URL+"/emu/avatar/oWXEMU_alice/100", nil); status != 404 {
		t.Errorf("avatar size 100: %d", status)
	}
	for path, want := range map[string]string{"/emu/chat": `id="send"`, "/emu/": "/sns/oauth2/access_token", "/": "oWXEMU_alice"} {
		if status, _, body := getPage(t, srv.URL+path, nil); status != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d lacks %s", path, status, want)
		}
	}
}

func TestEmulator_SetCallback(t *testing.T) {
	e, srv := newTestEmulator(t, nil)
	if err := e.SetCallback("http://127.0.0.1:1/wx", "tok123", "", "compat"); !errors.Is(err, ErrAESKey) {
		t.Errorf("compat without a key: %v", err)
	}
	if err := e.SetCallback("http://127.0.0.1:1/wx", "tok123", cbKey, "safe"); err != nil {
		t.Errorf("safe: %v", err)
	}
	if m := getJSON(t, srv.URL+"/emu/callback"); m["url"] != "http://127.0.0.1:1/wx" || m["mode"] != "safe" || m["token"] != nil {
		t.Errorf("%v", m)
	}
	if m := postJSON(t, srv.URL+"/emu/callback", `{"url":"http://127.0.0.1:1/wx","token":"t","mode":"plain"}`); m["_status"] != 400.0 {
		t.Errorf("short token accepted: %v", m)
	}
}

// TestEmulator_Concurrent hammers the emulator from many goroutines; run
// with -race it checks the locking.
func TestEmulator_Concurrent(t *testing.T) {
	e, srv := newTestEmulator(t, nil)
	tok := stableToken(t, srv, false)["access_token"].(string)
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_base", "s"), nil)
				req.Header.Set("X-Wxemu-User", "oWXEMU_bob")
				req.Header.Set("User-Agent", wechatUA)
				e.ServeHTTP(rec, req)
				loc := rec.Header().Get("Location")
				code := loc[strings.Index(loc, "code=")+5 : strings.Index(loc, "&state")]
				rec = httptest.NewRecorder()
				e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/sns/oauth2/access_token?appid="+testAppID+"&secret="+testSecret+"&code="+code+"&grant_type=authorization_code", nil))
				if !strings.Contains(rec.Body.String(), "access_token") {
					errs <- errors.New(rec.Body.String())
					return
				}
				rec = httptest.NewRecorder()
				e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/cgi-bin/user/info?access_token="+tok+"&openid=oWXEMU_alice", nil))
			}
			errs <- nil
		}()
	}
	for g := 0; g < 16; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestTrim(t *testing.T) {
	m := map[string]int{}
	for i := 0; i < 100; i++ {
		m[itoa(i)] = i
	}
	trim(m, 100)
	if len(m) != 100 {
		t.Errorf("trimmed at the limit: %d", len(m))
	}
	m["x"] = 0
	trim(m, 100)
	if len(m) != 75 {
		t.Errorf("len = %d, want 75", len(m))
	}
}

func TestEmulator_SweepKeepsLiveRecords(t *testing.T) {
	e, srv := newTestEmulator(t, nil)
	old := scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base")
	advance(t, srv, 301)
	for i := 0; i < sweepMin; i++ {
		scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base")
	}
	e.mu.Lock()
	_, kept := e.codes[old]
	n := len(e.codes)
	e.mu.Unlock()
	if kept || n != sweepMin {
		t.Errorf("expired code kept=%v, %d codes, want %d", kept, n, sweepMin)
	}
	wantCode(t, exchange(t, srv, scriptedCode(t, srv, "oWXEMU_bob", "snsapi_base")), 0)
}

// TestEmulator_LogsNoSecrets runs a login, a token fetch and a push with a
// debug logger and checks that no secret reaches a log line.
func TestEmulator_LogsNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	cb := &testCallback{}
	_, srv := newSendPair(t, "safe", cb, func(c *Config) {
		c.AppID = testAppID
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	cb.appID = testAppID
	code := scriptedCode(t, srv, "oWXEMU_alice", "snsapi_userinfo")
	tok := exchange(t, srv, code)
	stable := stableToken(t, srv, false)
	res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"hi"}}`)
	if res["valid"] != true {
		t.Fatalf("push: %v", res)
	}
	if !strings.Contains(logs.String(), "/sns/oauth2/access_token") {
		t.Fatalf("no request log: %s", logs.String())
	}
	for name, s := range map[string]string{
		"secret": testSecret, "code": code, "sns token": tok["access_token"].(string),
		"refresh": tok["refresh_token"].(string), "global token": stable["access_token"].(string),
		"aes key": cbKey,
	} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the %s reached the log", name)
		}
	}
}
