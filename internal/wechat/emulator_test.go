package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/wxemu"
)

// emuEnv runs the client against wxemu, the independent WeChat emulator.
type emuEnv struct {
	srv *httptest.Server
	c   *Client
	m   *TokenManager
	a   *API
}

func newEmuEnv(tb testing.TB) *emuEnv {
	tb.Helper()
	emu, err := wxemu.New(wxemu.Config{AppID: testAppID, AppSecret: testSecret, OAuthDomains: []string{"h5.example.com"}})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	tb.Cleanup(srv.Close)
	emu.SetPublicURL(srv.URL)
	c, err := NewClient(Config{AppID: testAppID, AppSecret: testSecret, Endpoint: EmulatorEndpoint(srv.URL), HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	c.backoff = func(int) time.Duration { return 0 }
	m, err := NewTokenManager(c, TokenConfig{Cache: newFakeCache(), Locker: newFakeLocker(), Box: newTestBox(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	return &emuEnv{srv: srv, c: c, m: m, a: NewAPI(c, m)}
}

// authorize follows AuthCodeURL as the emulated user openID and returns
// the code of the redirect.
func (e *emuEnv) authorize(tb testing.TB, openID, scope string) string {
	tb.Helper()
	u, err := e.c.AuthCodeURL("http://h5.example.com/oauth/callback?next=%2Fshop", scope, "st4te")
	if err != nil {
		tb.Fatal(err)
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-Wxemu-User", openID)
	req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50")
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		tb.Fatalf("authorize: status %d (the emulator refused the URL)", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		tb.Fatal(err)
	}
	if loc.Host != "h5.example.com" || loc.Path != "/oauth/callback" || loc.Query().Get("next") != "/shop" || loc.Query().Get("state") != "st4te" {
		tb.Fatalf("redirect %s", loc)
	}
	return loc.Query().Get("code")
}

func (e *emuEnv) control(tb testing.TB, method, path string, body any) {
	tb.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(b))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
}

func TestEmulator_WebAuthorization(t *testing.T) {
	e := newEmuEnv(t)
	ctx := context.Background()
	code := e.authorize(t, "oWXEMU_alice", ScopeUserInfo)
	tok, err := e.c.Exchange(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if OpenID(tok) != "oWXEMU_alice" || UnionID(tok) != "uWXEMU_alice" || Scope(tok) != ScopeUserInfo || IsSnapshotUser(tok) {
		t.Fatalf("openid %q unionid %q scope %q", OpenID(tok), UnionID(tok), Scope(tok))
	}
	if _, err := e.c.Exchange(ctx, code); !IsCode(err, CodeCodeUsed, CodeInvalidCode) {
		t.Fatalf("second exchange: %v", err)
	}
	u, err := e.c.UserInfo(ctx, tok.AccessToken, OpenID(tok), "zh_CN")
	if err != nil || u.Nickname != "Alice 爱丽丝" || u.UnionID != "uWXEMU_alice" {
		t.Fatalf("%+v %v", u, err)
	}
	if err := e.c.CheckToken(ctx, tok.AccessToken, OpenID(tok)); err != nil {
		t.Fatal(err)
	}
	tok2, err := e.c.Refresh(ctx, tok.RefreshToken)
	if err != nil || OpenID(tok2) != "oWXEMU_alice" || tok2.AccessToken == "" {
		t.Fatalf("%v %v", tok2, err)
	}
	if _, err := e.c.Refresh(ctx, "not-a-refresh-token"); !IsCode(err, CodeInvalidRefreshToken) {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.c.Exchange(ctx, "not-a-code"); !IsCode(err, CodeInvalidCode) {
		t.Fatalf("err = %v", err)
	}

	base, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_bob", ScopeBase))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.UserInfo(ctx, base.AccessToken, OpenID(base), ""); !IsCode(err, CodeUnauthorized) {
		t.Fatalf("userinfo with snsapi_base: %v", err)
	}
	snap, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_snap", ScopeUserInfo))
	if err != nil || !IsSnapshotUser(snap) {
		t.Fatalf("snapshot user: %v %v", snap, err)
	}
}

func TestEmulator_Credentials(t *testing.T) {
	e := newEmuEnv(t)
	ctx := context.Background()
	ticket, err := e.m.JSAPITicket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	page := "http://h5.example.com/shop?item=42#top"
	ts := time.Now().Unix()
	sig := SignJSSDK(ticket, "Wm3WZYTPz0wzccnW", ts, page)
	q := url.Values{"url": {page}, "timestamp": {strconv.FormatInt(ts, 10)}, "nonceStr": {"Wm3WZYTPz0wzccnW"}, "signature": {sig}}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(e.srv.URL + "/emu/jssdk/check?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var check struct {
		Valid bool   `json:"valid"`
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&check)
	resp.Body.Close()
	if !check.Valid {
		t.Fatalf("emulator rejects the JS-SDK signature: %s", check.Error)
	}

	// A voided token: the next cgi-bin call gets 40001, invalidates and
	// retries with a fresh one.
	if _, err := e.a.Follower(ctx, "oWXEMU_alice", ""); err != nil {
		t.Fatal(err)
	}
	old, _ := e.m.AccessToken(ctx)
	e.control(t, "POST", "/emu/void-token", struct{}{})
	f, err := e.a.Follower(ctx, "oWXEMU_alice", "")
	if err != nil || f.Subscribe != 1 || f.OpenID != "oWXEMU_alice" {
		t.Fatalf("%+v %v", f, err)
	}
	if tok, _ := e.m.AccessToken(ctx); tok == old {
		t.Fatal("token not refreshed after 40001")
	}
}

func TestEmulator_QRAndMenu(t *testing.T) {
	e := newEmuEnv(t)
	ctx := context.Background()
	qr, err := e.a.CreateQRCode(ctx, QRCodeRequest{ActionName: QRStrScene, ExpireSeconds: 300, SceneStr: "login123"})
	if err != nil || qr.Ticket == "" || qr.URL == "" {
		t.Fatalf("%+v %v", qr, err)
	}
	img, err := e.a.ShowQRCode(ctx, qr.Ticket)
	if err != nil || len(img) < 100 {
		t.Fatalf("image of %d bytes, %v", len(img), err)
	}
	var se *StatusError
	if _, err := e.a.ShowQRCode(ctx, "no-such-ticket"); !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("err = %v", err)
	}

	if _, err := e.a.GetMenu(ctx); !IsCode(err, CodeNoMenu) {
		t.Fatalf("err = %v", err)
	}
	if err := e.a.CreateMenu(ctx, validMenu()); err != nil {
		t.Fatal(err)
	}
	m, err := e.a.GetMenu(ctx)
	if err != nil || len(m.Buttons) != 3 || m.Buttons[0].Key != "V1001_TODAY_MUSIC" || len(m.Buttons[1].SubButtons) != 3 {
		t.Fatalf("%+v %v", m, err)
	}
	if err := e.a.DeleteMenu(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.GetMenu(ctx); !IsCode(err, CodeNoMenu) {
		t.Fatalf("err = %v", err)
	}
}
