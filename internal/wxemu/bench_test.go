package wxemu

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func BenchmarkEmulator_AuthorizeExchange(b *testing.B) {
	e, srv := newTestEmulator(b, nil)
	u := authorizeURL(srv, "https://"+testDomain+"/cb", "snsapi_userinfo", "s")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("X-Wxemu-User", "oWXEMU_alice")
			req.Header.Set("User-Agent", wechatUA)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			loc := rec.Header().Get("Location")
			code := loc[strings.Index(loc, "code=")+5 : strings.Index(loc, "&state")]
			rec = httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/sns/oauth2/access_token?appid="+testAppID+"&secret="+testSecret+"&code="+code+"&grant_type=authorization_code", nil))
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), "access_token") {
				b.Fatal(rec.Body.String())
			}
		}
	})
}

func BenchmarkEmulator_StableToken(b *testing.B) {
	e, _ := newTestEmulator(b, nil)
	body := `{"grant_type":"client_credential","appid":"` + testAppID + `","secret":"` + testSecret + `"}`
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cgi-bin/stable_token", strings.NewReader(body)))
			if rec.Code != 200 {
				b.Fatal(rec.Code)
			}
		}
	})
}

func BenchmarkEmulator_SendSafe(b *testing.B) {
	cb := &testCallback{token: cbToken, key: cbKey, appID: cbAppID, safe: true, reply: textReply}
	cbSrv := httptest.NewServer(cb)
	b.Cleanup(cbSrv.Close)
	e, _ := newTestEmulator(b, func(c *Config) {
		c.AppID = cbAppID
		c.CallbackURL, c.CallbackToken, c.AESKey, c.Mode = cbSrv.URL, cbToken, cbKey, "safe"
	})
	body := `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"hello"}}`
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/emu/send", strings.NewReader(body)))
		if !strings.Contains(rec.Body.String(), `"valid":true`) {
			b.Fatal(rec.Body.String())
		}
		cb.mu.Lock()
		cb.got = cb.got[:0]
		cb.mu.Unlock()
	}
}

func BenchmarkEncrypt(b *testing.B) {
	msg := []byte(strings.Repeat("<xml><Content><![CDATA[hello]]></Content></xml>", 4))
	rnd := []byte("0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encrypt(cbKey, cbAppID, rnd, msg); err != nil {
			b.Fatal(err)
		}
	}
}
