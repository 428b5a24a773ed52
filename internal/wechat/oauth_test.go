package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestIsDeadCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		dead   bool
		reauth bool
	}{
		{"CodeUsed40163", &Error{Code: CodeCodeUsed}, true, false},
		{"InvalidCode40029", &Error{Code: CodeInvalidCode}, true, false},
		{"CodeExpired42003", &Error{Code: CodeCodeExpired}, true, false},
		{"Wrapped40163", fmt.Errorf("login: exchange: %w", &Error{Code: CodeCodeUsed}), true, false},
		{"Busy-1", &Error{Code: CodeBusy}, false, false},
		{"AnswerLost", &answerLostError{api: "sns/oauth2/access_token", err: io.EOF}, false, false},
		{"IPWhitelist40164", &Error{Code: CodeIPWhitelist}, false, false},
		{"InvalidRefresh40030", &Error{Code: CodeInvalidRefreshToken}, false, true},
		{"RefreshExpired42002", &Error{Code: CodeRefreshTokenExpired}, false, true},
		{"Voided42007", &Error{Code: CodeTokenVoided}, false, true},
		{"Nil", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsDeadCode(tc.err); got != tc.dead {
				t.Errorf("IsDeadCode = %v, want %v", got, tc.dead)
			}
			if got := NeedsReauthorization(tc.err); got != tc.reauth {
				t.Errorf("NeedsReauthorization = %v, want %v", got, tc.reauth)
			}
		})
	}
}

func TestClient_AuthCodeURL(t *testing.T) {
	c, err := NewClient(Config{
		AppID: "wx520c15f417810387", AppSecret: testSecret,
		Endpoint: ProductionEndpoint(), HTTPClient: &http.Client{Timeout: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("official/doc-example", func(t *testing.T) {
		// The example of the web-authorization page, plus connect_redirect=1.
		got, err := c.AuthCodeURL("https://chong.qq.com/php/index.php?d=&c=wxAdapter&m=mobileDeal&showwxpaytitle=1&vb2ctag=4_2030_5_1194_60", ScopeBase, "123")
		if err != nil {
			t.Fatal(err)
		}
		want := "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387" +
			"&redirect_uri=https%3A%2F%2Fchong.qq.com%2Fphp%2Findex.php%3Fd%3D%26c%3DwxAdapter%26m%3DmobileDeal%26showwxpaytitle%3D1%26vb2ctag%3D4_2030_5_1194_60" +
			"&response_type=code&scope=snsapi_base&state=123&connect_redirect=1#wechat_redirect"
		if got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
	t.Run("EncodedOnce", func(t *testing.T) {
		got, err := c.AuthCodeURL("http://h5.example.com/cb?x=a%20b", ScopeUserInfo, "Ab9")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "redirect_uri=http%3A%2F%2Fh5.example.com%2Fcb%3Fx%3Da%2520b&") {
			t.Fatalf("redirect_uri not encoded exactly once: %s", got)
		}
		if strings.Contains(got, "%253A") {
			t.Fatalf("double-encoded: %s", got)
		}
		if !strings.HasSuffix(got, "&scope=snsapi_userinfo&state=Ab9&connect_redirect=1#wechat_redirect") {
			t.Fatalf("tail: %s", got)
		}
	})
	t.Run("Order", func(t *testing.T) {
		got, _ := c.AuthCodeURL("https://a.example.com/", ScopeBase, "s")
		q := got[strings.IndexByte(got, '?')+1 : strings.IndexByte(got, '#')]
		var keys []string
		for _, kv := range strings.Split(q, "&") {
			keys = append(keys, kv[:strings.IndexByte(kv, '=')])
		}
		if strings.Join(keys, ",") != "appid,redirect_uri,response_type,scope,state,connect_redirect" {
			t.Fatalf("order: %v", keys)
		}
	})
	errCases := []struct {
		name, redirect, scope, state string
		want                         error
	}{
		{"ScopeEmpty", "https://a.example.com/", "", "s", ErrInvalidScope},
		{"ScopeOther", "https://a.example.com/", "snsapi_login", "s", ErrInvalidScope},
		{"ScopeCase", "https://a.example.com/", "SNSAPI_BASE", "s", ErrInvalidScope},
		{"StateEmpty", "https://a.example.com/", ScopeBase, "", ErrInvalidState},
		{"StateDash", "https://a.example.com/", ScopeBase, "a-b", ErrInvalidState},
		{"State129", "https://a.example.com/", ScopeBase, strings.Repeat("a", 129), ErrInvalidState},
		{"StateInjection", "https://a.example.com/", ScopeBase, "a&scope=snsapi_userinfo", ErrInvalidState},
		{"RedirectRelative", "/cb", ScopeBase, "s", ErrInvalidRedirectURI},
		{"RedirectProtocolRelative", "//evil.example.com/", ScopeBase, "s", ErrInvalidRedirectURI},
		{"RedirectJavascript", "javascript:alert(1)", ScopeBase, "s", ErrInvalidRedirectURI},
		{"RedirectNoHost", "https:///path", ScopeBase, "s", ErrInvalidRedirectURI},
		{"RedirectUserinfo", "https://a.example.com@evil.example.com/", ScopeBase, "s", ErrInvalidRedirectURI},
		{"RedirectBackslash", "https://a.example.com\\@evil.example.com/", ScopeBase, "s", ErrInvalidRedirectURI},
		{"RedirectNewline", "https://a.example.com/\r\nx", ScopeBase, "s", ErrInvalidRedirectURI},
		{"RedirectEmpty", "", ScopeBase, "s", ErrInvalidRedirectURI},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.AuthCodeURL(tc.redirect, tc.scope, tc.state)
			if !errors.Is(err, tc.want) || got != "" {
				t.Fatalf("got %q, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestValidState(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "Z9": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "a b": false, "a_b": false, "a.b": false,
		"é": false, "a\x00": false, "abc#": false, "%41": false,
	} {
		if got := ValidState(s); got != want {
			t.Errorf("ValidState(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNewClient(t *testing.T) {
	good := Config{AppID: testAppID, AppSecret: testSecret, Endpoint: ProductionEndpoint(), HTTPClient: &http.Client{Timeout: time.Second}}
	if _, err := NewClient(good); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"NoAppID":        {func(c *Config) { c.AppID = "" }, "AppID"},
		"NoAppSecret":    {func(c *Config) { c.AppSecret = "" }, "AppSecret"},
		"NoAuthorizeURL": {func(c *Config) { c.Endpoint.AuthorizeURL = "" }, "AuthorizeURL"},
		"NoAPIBase":      {func(c *Config) { c.Endpoint.APIBase = "" }, "APIBase"},
		"NoMPBase":       {func(c *Config) { c.Endpoint.MPBase = "" }, "MPBase"},
		"BadAPIBase":     {func(c *Config) { c.Endpoint.APIBase = "api.weixin.qq.com" }, "APIBase"},
		"NoHTTPClient":   {func(c *Config) { c.HTTPClient = nil }, "HTTPClient"},
		"NoTimeout":      {func(c *Config) { c.HTTPClient = &http.Client{} }, "Timeout"},
		"AppIDSyntax":    {func(c *Config) { c.AppID = "wx1&x=y" }, "AppID"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			_, err := NewClient(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
			assertNoSecret(t, err.Error())
		})
	}
	if got := EmulatorEndpoint("http://127.0.0.1:9/"); got != (Endpoint{"http://127.0.0.1:9/connect/oauth2/authorize", "http://127.0.0.1:9", "http://127.0.0.1:9"}) {
		t.Fatalf("EmulatorEndpoint = %+v", got)
	}
}

func TestClient_Refresh(t *testing.T) {
	const rt = "REFRESH_TOKEN_OLD"
	t.Run("OK", func(t *testing.T) {
		var q url.Values
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/refresh_token": queryTo(&q, jsonBody(`{"access_token":"NEW","expires_in":7200,"refresh_token":"REFRESH_TOKEN_NEW","openid":"OPENID","scope":"snsapi_base"}`))})
		tok, err := newTestClient(t, f).Refresh(context.Background(), rt)
		if err != nil {
			t.Fatal(err)
		}
		if q.Get("appid") != testAppID || q.Get("grant_type") != "refresh_token" || q.Get("refresh_token") != rt || q.Has("secret") {
			t.Fatalf("query %v", q)
		}
		if tok.AccessToken != "NEW" || tok.RefreshToken != "REFRESH_TOKEN_NEW" || OpenID(tok) != "OPENID" {
			t.Fatalf("%+v", tok)
		}
	})
	t.Run("KeepsOldRefreshToken", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/refresh_token": jsonBody(`{"access_token":"NEW","expires_in":7200,"openid":"O","scope":"snsapi_base"}`)})
		tok, err := newTestClient(t, f).Refresh(context.Background(), rt)
		if err != nil || tok.RefreshToken != rt {
			t.Fatalf("%v %v", tok, err)
		}
	})
	for _, tc := range []struct {
		name string
		code int
	}{{"InvalidRefreshToken40030", CodeInvalidRefreshToken}, {"RefreshTokenExpired42002", CodeRefreshTokenExpired}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/refresh_token": errBody(tc.code, "invalid refresh_token")})
			_, err := newTestClient(t, f).Refresh(context.Background(), rt)
			if !IsCode(err, tc.code) || f.count("/sns/oauth2/refresh_token") != 1 {
				t.Fatalf("err = %v", err)
			}
			assertNoSecret(t, err.Error(), rt)
		})
	}
}

func TestClient_TokenSource(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/refresh_token": func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("refresh_token") {
		case "R1":
			jsonBody(`{"access_token":"A2","expires_in":7200,"refresh_token":"R2","openid":"O","scope":"snsapi_base"}`)(w, r)
		default:
			errBody(CodeInvalidRefreshToken, "invalid refresh_token")(w, r)
		}
	}})
	c := newTestClient(t, f)
	t.Run("Valid", func(t *testing.T) {
		ts := c.TokenSource(context.Background(), &oauth2.Token{AccessToken: "A1", RefreshToken: "R1", Expiry: time.Now().Add(time.Hour)})
		tok, err := ts.Token()
		if err != nil || tok.AccessToken != "A1" || f.count("/sns/oauth2/refresh_token") != 0 {
			t.Fatalf("%v %v", tok, err)
		}
	})
	t.Run("ExpiredRefreshesOnce", func(t *testing.T) {
		ts := c.TokenSource(context.Background(), &oauth2.Token{AccessToken: "A1", RefreshToken: "R1", Expiry: time.Now().Add(-time.Minute)})
		for range 3 {
			tok, err := ts.Token()
			if err != nil || tok.AccessToken != "A2" || tok.RefreshToken != "R2" {
				t.Fatalf("%v %v", tok, err)
			}
		}
		if n := f.count("/sns/oauth2/refresh_token"); n != 1 {
			t.Fatalf("%d refreshes, want 1", n)
		}
	})
	t.Run("RefreshFails", func(t *testing.T) {
		ts := c.TokenSource(context.Background(), &oauth2.Token{AccessToken: "A1", RefreshToken: "BAD", Expiry: time.Now().Add(-time.Minute)})
		if _, err := ts.Token(); !IsCode(err, CodeInvalidRefreshToken) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClient_UserInfo(t *testing.T) {
	const at = "WEB_ACCESS_TOKEN"
	for _, tc := range []struct {
		name, body string
		sex        int
	}{
		{"SexNumber", `{"openid":"OPENID","nickname":"NICKNAME","sex":1,"province":"PROVINCE","city":"CITY","country":"COUNTRY","headimgurl":"https://thirdwx.qlogo.cn/mmopen/g3MonUZtNHkdmzicIlibx6iaFqAc56vxLSUfpb6n5WKSYVY0ChQKkiaJSgQ1dZuTOgvLLrhJbERQQ4eMsv84eavHiaiceqxibJxCfHe/46","privilege":["PRIVILEGE1","PRIVILEGE2"],"unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}`, 1},
		{"SexString", `{"openid":"OPENID","nickname":"NICKNAME","sex":"2","province":"","city":"","country":"","headimgurl":"","privilege":[],"unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}`, 2},
		{"SexZeroNoUnionID", `{"openid":"OPENID","nickname":"NICKNAME","sex":0,"privilege":null}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q url.Values
			f := newFake(t, map[string]http.HandlerFunc{"/sns/userinfo": queryTo(&q, jsonBody(tc.body))})
			u, err := newTestClient(t, f).UserInfo(context.Background(), at, "OPENID", "")
			if err != nil {
				t.Fatal(err)
			}
			if q.Get("access_token") != at || q.Get("openid") != "OPENID" || q.Get("lang") != "zh_CN" {
				t.Fatalf("query %v", q)
			}
			if u.Sex != tc.sex || u.OpenID != "OPENID" || u.Nickname != "NICKNAME" {
				t.Fatalf("%+v", u)
			}
			if tc.sex == 1 && (u.UnionID != "o6_bmasdasdsad6_2sgVt7hMZOPfL" || len(u.Privilege) != 2 || !strings.HasSuffix(u.HeadImgURL, "/46") || u.Province != "PROVINCE") {
				t.Fatalf("%+v", u)
			}
		})
	}
	t.Run("SexGarbage", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/userinfo": jsonBody(`{"openid":"O","sex":"male"}`)})
		if _, err := newTestClient(t, f).UserInfo(context.Background(), at, "O", "en"); err == nil {
			t.Fatal("want error")
		}
	})
	for _, tc := range []struct {
		name string
		code int
	}{{"Unauthorized48001", CodeUnauthorized}, {"InvalidOpenID40003", CodeInvalidOpenID}, {"AccessTokenExpired42001", CodeAccessTokenExpired}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"/sns/userinfo": errBody(tc.code, "api unauthorized")})
			_, err := newTestClient(t, f).UserInfo(context.Background(), at, "O", "zh_TW")
			if !IsCode(err, tc.code) {
				t.Fatalf("err = %v", err)
			}
			assertNoSecret(t, err.Error(), at)
		})
	}
	t.Run("BadArguments", func(t *testing.T) {
		c := newTestClient(t, nil)
		for _, args := range [][3]string{{"", "O", "en"}, {at, "", "en"}, {at, "O", "fr"}} {
			if _, err := c.UserInfo(context.Background(), args[0], args[1], args[2]); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("%v: err = %v", args, err)
			}
		}
	})
}

func TestClient_CheckToken(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"/sns/auth": func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("openid") == "GOOD" {
			jsonBody(`{"errcode":0,"errmsg":"ok"}`)(w, r)
			return
		}
		jsonBody(`{"errcode":40003,"errmsg":"invalid openid"}`)(w, r)
	}})
	c := newTestClient(t, f)
	if err := c.CheckToken(context.Background(), "T", "GOOD"); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckToken(context.Background(), "T", "BAD"); !IsCode(err, CodeInvalidOpenID) {
		t.Fatalf("err = %v", err)
	}
}

func TestTemporary(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"Busy":          {&Error{Code: -1}, true},
		"TooFrequent":   {&Error{Code: 45011}, true},
		"Wrapped":       {errors.Join(errors.New("x"), &Error{Code: -1}), true},
		"Quota":         {&Error{Code: 45009}, false},
		"InvalidCode":   {&Error{Code: 40029}, false},
		"Status500":     {&StatusError{StatusCode: 500}, true},
		"Status404":     {&StatusError{StatusCode: 404}, false},
		"Deadline":      {context.DeadlineExceeded, true},
		"Canceled":      {context.Canceled, false},
		"Nil":           {nil, false},
		"Plain":         {errors.New("x"), false},
		"URLNotTimeout": {&url.Error{Op: "Get", URL: "u", Err: errors.New("refused")}, false},
		"AnswerLostEOF": {&answerLostError{api: "sns/oauth2/access_token", err: &url.Error{Op: "Get", URL: "u", Err: io.EOF}}, true},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("%s: Temporary = %v, want %v", name, got, tc.want)
		}
	}
}

func TestError_Error(t *testing.T) {
	e := &Error{API: "sns/oauth2/access_token", Code: 40029, Msg: "invalid code, rid: 1"}
	if got := e.Error(); got != "wechat: sns/oauth2/access_token: errcode 40029: invalid code, rid: 1" {
		t.Fatal(got)
	}
	s := &StatusError{API: "cgi-bin/showqrcode", StatusCode: 404, Body: " not found\n"}
	if got := s.Error(); got != "wechat: cgi-bin/showqrcode: HTTP status 404: not found" {
		t.Fatal(got)
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("https://u:p@api.weixin.qq.com/sns/oauth2/access_token?appid=wx1&secret=SECRETV&code=CODEV&grant_type=authorization_code&access_token=ATV&refresh_token=RTV")
	for _, s := range []string{"SECRETV", "CODEV", "ATV", "RTV", "u:p"} {
		if strings.Contains(got, s) {
			t.Fatalf("%s leaks %q", got, s)
		}
	}
	if !strings.Contains(got, "appid=wx1") || !strings.Contains(got, "/sns/oauth2/access_token") {
		t.Fatal(got)
	}
	if got := redactURL("http://x/%zz?secret=SECRETV"); strings.Contains(got, "SECRETV") {
		t.Fatal(got)
	}
}

func TestWriteQueryEscaped(t *testing.T) {
	inputs := []string{"", "abc", "a b", "http://h5.example.com/cb?x=1&y=%20#f", "中文/~-_.!*'()$+,;=:@[]", "\x00\x7f\xff"}
	for i := range 256 {
		inputs = append(inputs, string([]byte{byte(i), 'a', byte(255 - i)}))
	}
	for _, s := range inputs {
		var b strings.Builder
		writeQueryEscaped(&b, s)
		if want := url.QueryEscape(s); b.String() != want || queryEscapedLen(s) != len(want) {
			t.Fatalf("%q: got %q (len %d), want %q", s, b.String(), queryEscapedLen(s), want)
		}
	}
}

func FuzzWriteQueryEscaped(f *testing.F) {
	f.Add("http://h5.example.com/cb?x=1&y=%20#f")
	f.Fuzz(func(t *testing.T, s string) {
		var b strings.Builder
		writeQueryEscaped(&b, s)
		if want := url.QueryEscape(s); b.String() != want || queryEscapedLen(s) != len(want) {
			t.Fatalf("%q: got %q, want %q", s, b.String(), want)
		}
	})
}
