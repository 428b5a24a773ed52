package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/logtest"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/wechat"
	"github.com/wxauth/wxauth/internal/wxemu"
)

const (
	testAppID     = "wx1234567890abcdef"
	testAppSecret = "s3cr3t-appsecret-0123456789abcdef"
	svcSecret     = "svc-secret-0123456789abcdef"
)

const testClients = `
- client_id: svc
  client_secret: ` + svcSecret + `
  apis: ["user/", "message/", "media/", "menu/", "ticket/"]
- client_id: slow
  client_secret: slow-secret-0123456789abcdef
  apis: ["*"]
  rate_limit: 0.01
  rate_burst: 2
- client_id: h5
  public: true
  redirect_uris: ["https://h5.example.com/cb"]
`

// env is the proxy in front of wxemu, with a memory store and a real
// TokenManager.
type env struct {
	emu    *httptest.Server
	srv    *httptest.Server
	tokens *wechat.TokenManager
	obs    *fakeObserver
	logs   *logtest.Buffer
}

type fakeObserver struct {
	mu       sync.Mutex
	calls    []string // client api errcode retried
	refusals []string // client reason
}

func (o *fakeObserver) ProxyCall(client, api, errcode string, retried bool, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := client + " " + api + " " + errcode
	if retried {
		s += " retried"
	}
	o.calls = append(o.calls, s)
}

func (o *fakeObserver) ProxyRefusal(client, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refusals = append(o.refusals, client+" "+reason)
}

func newEnv(tb testing.TB, mod func(*Config)) *env {
	tb.Helper()
	emu, err := wxemu.New(wxemu.Config{AppID: testAppID, AppSecret: testAppSecret})
	if err != nil {
		tb.Fatal(err)
	}
	es := httptest.NewServer(emu)
	tb.Cleanup(es.Close)
	emu.SetPublicURL(es.URL)
	wx, err := wechat.NewClient(wechat.Config{AppID: testAppID, AppSecret: testAppSecret,
		Endpoint: wechat.EmulatorEndpoint(es.URL), HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	st := memory.New(nil)
	tb.Cleanup(func() { st.Close() })
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	tm, err := wechat.NewTokenManager(wx, wechat.TokenConfig{Cache: st, Locker: st, Box: box})
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := clients.Parse([]byte(testClients))
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{emu: es, tokens: tm, obs: &fakeObserver{}, logs: &logtest.Buffer{}}
	cfg := Config{APIBase: es.URL, Tokens: tm, Clients: reg, Records: st, Observer: e.obs,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil))}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = httptest.NewServer(p)
	tb.Cleanup(e.srv.Close)
	return e
}

type wxAnswer struct {
	ErrCode     *int   `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	Subscribe   *int   `json:"subscribe"`
	OpenID      string `json:"openid"`
	MediaID     string `json:"media_id"`
	Ticket      string `json:"ticket"`
}

func (a wxAnswer) code() int {
	if a.ErrCode == nil {
		return 0
	}
	return *a.ErrCode
}

// do sends a request and decodes WeChat's JSON answer.
func do(tb testing.TB, req *http.Request) (*http.Response, wxAnswer, []byte) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a wxAnswer
	_ = json.Unmarshal(b, &a)
	return resp, a, b
}

func get(tb testing.TB, u string) (*http.Response, wxAnswer, []byte) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return do(tb, req)
}

// proxyToken fetches a proxy token as an SDK does.
func (e *env) proxyToken(tb testing.TB, id, secret string) string {
	tb.Helper()
	_, a, b := get(tb, e.srv.URL+"/cgi-bin/token?grant_type=client_credential&appid="+id+"&secret="+url.QueryEscape(secret))
	if a.AccessToken == "" {
		tb.Fatalf("token: %s", b)
	}
	return a.AccessToken
}

func (e *env) emuCalls(tb testing.TB, path string) int {
	tb.Helper()
	_, _, b := get(tb, e.emu.URL+"/emu/calls")
	var m map[string]int
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m[path]
}

func TestProxy_Token(t *testing.T) {
	e := newEnv(t, nil)
	t.Run("Classic", func(t *testing.T) {
		tok := e.proxyToken(t, "svc", svcSecret)
		real, err := e.tokens.AccessToken(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, "wxp_") || tok == real {
			t.Fatalf("proxy token %q: want an opaque wxp_ token, never the real one", tok)
		}
	})
	t.Run("Stable", func(t *testing.T) {
		body := `{"grant_type":"client_credential","appid":"svc","secret":"` + svcSecret + `","force_refresh":false}`
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/cgi-bin/stable_token", strings.NewReader(body))
		_, a, b := do(t, req)
		if !strings.HasPrefix(a.AccessToken, "wxp_") || a.ExpiresIn != 7200 {
			t.Fatalf("stable_token: %s", b)
		}
		req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/cgi-bin/stable_token", strings.NewReader(strings.Replace(body, "false", "true", 1)))
		_, a2, _ := do(t, req)
		if a2.AccessToken == a.AccessToken || a2.AccessToken == "" {
			t.Fatal("force_refresh: want a new token")
		}
		// The first one still works.
		_, ans, b := get(t, e.srv.URL+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+a.AccessToken)
		if ans.code() != 0 || ans.OpenID != "oWXEMU_alice" {
			t.Fatalf("call with the earlier token: %s", b)
		}
	})
	for _, tc := range []struct {
		name, query string
		code        int
	}{
		{"UnknownClient", "grant_type=client_credential&appid=nobody&secret=" + svcSecret, 40125},
		{"WrongSecret", "grant_type=client_credential&appid=svc&secret=wrong-secret-0123456789", 40125},
		{"PublicClient", "grant_type=client_credential&appid=h5&secret=x", 40125},
		{"BadGrant", "grant_type=password&appid=svc&secret=" + svcSecret, 40002},
		{"NoAppID", "grant_type=client_credential&secret=x", 41002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, a, b := get(t, e.srv.URL+"/cgi-bin/token?"+tc.query)
			if resp.StatusCode != 200 || a.code() != tc.code || a.AccessToken != "" {
				t.Fatalf("got %d %s, want errcode %d", resp.StatusCode, b, tc.code)
			}
		})
	}
}

func TestProxy_Call(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.proxyToken(t, "svc", svcSecret)
	real, err := e.tokens.AccessToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ProxyToken", func(t *testing.T) {
		resp, a, b := get(t, e.srv.URL+"/cgi-bin/user/info?openid=oWXEMU_alice&lang=zh_CN&access_token="+tok)
		if resp.StatusCode != 200 || a.code() != 0 || a.Subscribe == nil || *a.Subscribe != 1 {
			t.Fatalf("user/info: %d %s", resp.StatusCode, b)
		}
		if bytes.Contains(b, []byte(real)) || strings.Contains(resp.Header.Get("Content-Type"), "html") {
			t.Fatal("the answer carries the real token")
		}
	})
	t.Run("BasicIgnoresCallersToken", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/cgi-bin/user/info?access_token=STALE_REAL_TOKEN&openid=oWXEMU_alice&access%5Ftoken=x", nil)
		req.SetBasicAuth("svc", svcSecret)
		_, a, b := do(t, req)
		if a.code() != 0 || a.OpenID != "oWXEMU_alice" {
			t.Fatalf("user/info with Basic and a stale access_token: %s", b)
		}
	})
	t.Run("BearerProxyToken", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/cgi-bin/message/custom/send",
			strings.NewReader(`{"touser":"oWXEMU_alice","msgtype":"text","text":{"content":"hi"}}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		_, a, b := do(t, req)
		if a.ErrCode == nil || a.code() != 0 {
			t.Fatalf("custom/send: %s", b)
		}
	})
	t.Run("WeChatErrorPassesThrough", func(t *testing.T) {
		_, a, b := get(t, e.srv.URL+"/cgi-bin/user/info?openid=nobody&access_token="+tok)
		if a.code() != 40003 || !strings.Contains(a.ErrMsg, "rid:") {
			t.Fatalf("want WeChat's own 40003: %s", b)
		}
	})
	t.Run("Ticket", func(t *testing.T) {
		_, a, b := get(t, e.srv.URL+"/cgi-bin/ticket/getticket?type=jsapi&access_token="+tok)
		if a.code() != 0 || a.Ticket == "" {
			t.Fatalf("getticket: %s", b)
		}
	})
	if logs := e.logs.String(); strings.Contains(logs, tok) || strings.Contains(logs, real) || strings.Contains(logs, svcSecret) {
		t.Fatal("a token or secret reached the log")
	}
	if !strings.Contains(e.logs.String(), `"client":"svc","api":"cgi-bin/user/info","method":"GET","errcode":"0"`) {
		t.Fatalf("no access line for user/info:\n%s", e.logs)
	}
}

func TestProxy_Refusals(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.proxyToken(t, "svc", svcSecret)
	basic := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id, secret) }
	}
	for _, tc := range []struct {
		name, path string
		auth       func(*http.Request)
		code       int
		reason     string
	}{
		{"NoCredential", "/cgi-bin/user/info?openid=oWXEMU_alice", nil, 41001, "no_credential"},
		{"UnknownProxyToken", "/cgi-bin/user/info?access_token=wxp_nope", nil, 40001, "invalid_token"},
		{"RealLookingToken", "/cgi-bin/user/info?access_token=83_abcdef", nil, 40001, "invalid_token"},
		{"UnknownClient", "/cgi-bin/user/info", basic("nobody", svcSecret), 40125, "invalid_client"},
		{"WrongSecret", "/cgi-bin/user/info", basic("svc", "wrong-secret-0123456789"), 40125, "invalid_client"},
		{"NotAllowed", "/cgi-bin/qrcode/create?access_token=" + tok, nil, 48001, "not_allowed"},
		{"NotAnAPIPath", "/cgi-bin/user/../qrcode/create?access_token=" + tok, nil, 48001, "not_allowed"},
		{"JWTWithoutVerifier", "/cgi-bin/user/info", func(r *http.Request) { r.Header.Set("Authorization", "Bearer a.b.c") }, 40001, "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+tc.path, nil)
			if tc.auth != nil {
				tc.auth(req)
			}
			req.URL.Opaque = "" // keep ".." as sent
			resp, a, b := do(t, req)
			if resp.StatusCode != 200 || a.code() != tc.code || a.ErrMsg == "" {
				t.Fatalf("got %d %s, want 200 errcode %d", resp.StatusCode, b, tc.code)
			}
		})
	}
	t.Run("RateLimited", func(t *testing.T) {
		slow := e.proxyToken(t, "slow", "slow-secret-0123456789abcdef") // spends 1 of the burst of 2
		_, a, b := get(t, e.srv.URL+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+slow)
		if a.code() != 0 {
			t.Fatalf("second call: %s", b)
		}
		resp, a, b := get(t, e.srv.URL+"/cgi-bin/user/info?openid=oWXEMU_alice&access_token="+slow)
		if a.code() != 45011 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("third call: %d %v %s", resp.StatusCode, resp.Header, b)
		}
	})
	e.obs.mu.Lock()
	defer e.obs.mu.Unlock()
	want := map[string]bool{"- no_credential": true, "- invalid_token": true, "- invalid_client": true, "svc not_allowed": true, "slow rate_limited": true}
	for _, r := range e.obs.refusals {
		delete(want, r)
	}
	if len(want) > 0 {
		t.Fatalf("refusals %v lack %v", e.obs.refusals, want)
	}
}

func TestProxy_StaleToken(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.proxyToken(t, "svc", svcSecret)
	send := func() wxAnswer {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/cgi-bin/message/custom/send?access_token="+tok,
			strings.NewReader(`{"touser":"oWXEMU_alice","msgtype":"text","text":{"content":"hi"}}`))
		_, a, _ := do(t, req)
		return a
	}
	if a := send(); a.ErrCode == nil || a.code() != 0 {
		t.Fatalf("first send: %+v", a)
	}
	old, _ := e.tokens.AccessToken(context.Background())
	before := e.emuCalls(t, "/cgi-bin/stable_token")
	if _, _, b := do(t, mustReq(http.MethodPost, e.emu.URL+"/emu/void-token", "")); !bytes.Contains(b, []byte("ok")) {
		t.Fatal(string(b))
	}
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() { a := send(); codes[i] = a.code() })
	}
	wg.Wait()
	for i, c := range codes {
		if c != 0 {
			t.Fatalf("call %d after the void: errcode %d", i, c)
		}
	}
	if n := e.emuCalls(t, "/cgi-bin/stable_token") - before; n != 1 {
		t.Fatalf("stable_token calls after the void: %d, want 1", n)
	}
	if cur, _ := e.tokens.AccessToken(context.Background()); cur == old {
		t.Fatal("token not replaced")
	}
	e.obs.mu.Lock()
	defer e.obs.mu.Unlock()
	retried := 0
	for _, c := range e.obs.calls {
		if strings.HasSuffix(c, " retried") {
			retried++
		}
	}
	if retried == 0 {
		t.Fatalf("no call reported as retried: %v", e.obs.calls)
	}
}

// TestProxy_StaleTokenStreamed: a body over the replay bound is not sent
// again; its caller gets WeChat's 40001, and the token is refreshed for the
// next call.
func TestProxy_StaleTokenStreamed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxReplay = 1 << 10 })
	tok := e.proxyToken(t, "svc", svcSecret)
	body := `{"touser":"oWXEMU_alice","msgtype":"text","text":{"content":"` + strings.Repeat("x", 2<<10) + `"}}`
	send := func() wxAnswer {
		_, a, _ := do(t, mustReq(http.MethodPost, e.srv.URL+"/cgi-bin/message/custom/send?access_token="+tok, body))
		return a
	}
	if a := send(); a.ErrCode == nil || a.code() != 0 {
		t.Fatalf("first send: %+v", a)
	}
	do(t, mustReq(http.MethodPost, e.emu.URL+"/emu/void-token", ""))
	if a := send(); a.code() != 40001 {
		t.Fatalf("streamed send after the void: %+v, want WeChat's 40001", a)
	}
	if a := send(); a.ErrCode == nil || a.code() != 0 {
		t.Fatalf("next send: %+v, want success with the refreshed token", a)
	}
}

func TestProxy_BearerJWT(t *testing.T) {
	verifier := VerifierFunc(func(_ context.Context, raw string) (string, error) {
		if raw == "good.jwt.svc" {
			return "svc", nil
		}
		return "", errors.New("bad token")
	})
	e := newEnv(t, func(c *Config) { c.Verifier = verifier })
	for _, tc := range []struct {
		token string
		code  int
	}{{"good.jwt.svc", 0}, {"bad.jwt.svc", 40001}} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/cgi-bin/user/info?openid=oWXEMU_alice", nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		_, a, b := do(t, req)
		if a.code() != tc.code {
			t.Fatalf("%s: %s, want %d", tc.token, b, tc.code)
		}
	}
}

func TestWithToken(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "access_token=T%2B1"},
		{"access_token=old&openid=o1&lang=zh_CN", "openid=o1&lang=zh_CN&access_token=T%2B1"},
		{"b=2&a=1&access%5Ftoken=x&access_token", "b=2&a=1&access_token=T%2B1"},
		{"q=a%26b", "q=a%26b&access_token=T%2B1"},
	} {
		if got := withToken(tc.in, "T+1"); got != tc.want {
			t.Errorf("withToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidAPI(t *testing.T) {
	for api, want := range map[string]bool{
		"message/custom/send": true, "media/upload": true, "ticket/getticket": true,
		"": false, "user//info": false, "user/../token": false, "./x": false, "a b": false, "user/info%2F": false,
	} {
		if got := validAPI(api); got != want {
			t.Errorf("validAPI(%q) = %v", api, got)
		}
	}
}
