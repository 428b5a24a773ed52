package wxemu

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	testAppID  = "wxemu0000000001"
	testSecret = "s3cr3tAppSecretValue0000000000000"
	testDomain = "h5.example.com"
)

// t0 is the base clock of every test: the official vector's timestamp.
var t0 = time.Unix(1714112445, 0)

// ridPattern is WeChat's errmsg suffix: a space, "rid: ", three hex groups,
// and no comma before it.
var ridPattern = regexp.MustCompile(`[^,] rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)

// wechatUA is the User-Agent of WeChat's in-app browser on iOS: the
// authorize page refuses browsers without MicroMessenger.
const wechatUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN"

// newTestEmulator starts an emulator on loopback with a fixed base clock;
// edit adjusts the Config first.
func newTestEmulator(tb testing.TB, edit func(*Config)) (*Emulator, *httptest.Server) {
	tb.Helper()
	cfg := Config{
		AppID:        testAppID,
		AppSecret:    testSecret,
		OAuthDomains: []string{testDomain, "127.0.0.1:8080"},
		Now:          func() time.Time { return t0 },
	}
	if edit != nil {
		edit(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(e)
	tb.Cleanup(srv.Close)
	e.SetPublicURL(srv.URL)
	return e, srv
}

// noRedirect is a client that returns 302s instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// getJSON GETs u and decodes a JSON object.
func getJSON(tb testing.TB, u string) map[string]any {
	tb.Helper()
	resp, err := http.Get(u)
	if err != nil {
		tb.Fatalf("GET: %v", err)
	}
	return decodeResp(tb, resp)
}

// postJSON POSTs body (a JSON string) and decodes a JSON object.
func postJSON(tb testing.TB, u, body string) map[string]any {
	tb.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatalf("POST: %v", err)
	}
	return decodeResp(tb, resp)
}

func decodeResp(tb testing.TB, resp *http.Response) map[string]any {
	tb.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decode %q: %v", b, err)
	}
	m["_status"] = float64(resp.StatusCode)
	return m
}

// errcode returns a response's errcode (0 when absent) and checks that any
// error's errmsg carries WeChat's rid suffix.
func errcode(tb testing.TB, m map[string]any) int {
	tb.Helper()
	c, _ := m["errcode"].(float64)
	if c != 0 {
		msg, _ := m["errmsg"].(string)
		if !ridPattern.MatchString(msg) {
			tb.Errorf("errmsg %q lacks the rid suffix", msg)
		}
	}
	return int(c)
}

// wantCode fails unless m carries errcode want.
func wantCode(tb testing.TB, m map[string]any, want int) {
	tb.Helper()
	if got := errcode(tb, m); got != want {
		tb.Fatalf("errcode = %d, want %d (%v)", got, want, m)
	}
}

// authorizeURL builds an order-exact authorize URL on srv.
func authorizeURL(srv *httptest.Server, redirect, scope, state string) string {
	return srv.URL + "/connect/oauth2/authorize?appid=" + testAppID + "&redirect_uri=" + url.QueryEscape(redirect) +
		"&response_type=code&scope=" + scope + "&state=" + state + "&connect_redirect=1"
}

// scriptedCode runs a scripted authorization for openid and returns the code.
func scriptedCode(tb testing.TB, srv *httptest.Server, openid, scope string) string {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, authorizeURL(srv, "https://"+testDomain+"/cb", scope, "st1"), nil)
	req.Header.Set("X-Wxemu-User", openid)
	req.Header.Set("User-Agent", wechatUA)
	resp, err := noRedirect().Do(req)
	if err != nil {
		tb.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		tb.Fatalf("authorize status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		tb.Fatalf("Location: %v", err)
	}
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != "st1" {
		tb.Fatalf("Location %q lacks code or state", loc)
	}
	return code
}

// exchange trades a code at sns/oauth2/access_token.
func exchange(tb testing.TB, srv *httptest.Server, code string) map[string]any {
	tb.Helper()
	return getJSON(tb, srv.URL+"/sns/oauth2/access_token?appid="+testAppID+"&secret="+testSecret+
		"&code="+url.QueryEscape(code)+"&grant_type=authorization_code")
}

// advance moves the virtual clock.
func advance(tb testing.TB, srv *httptest.Server, seconds int) {
	tb.Helper()
	m := postJSON(tb, srv.URL+"/emu/clock", `{"advance_seconds":`+itoa(seconds)+`}`)
	if _, ok := m["now"]; !ok {
		tb.Fatalf("clock: %v", m)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
