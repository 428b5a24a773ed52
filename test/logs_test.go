package test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

// TestDev_NoSecretsInLogs runs `authsvc dev --log-level debug`, does a full
// login, a refresh, a callback message and a read of the internal
// access_token, and checks that none of the secrets met on the way appears
// in anything the process printed.
func TestDev_NoSecretsInLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, nil, 3, "dev", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0",
		"--h5-listen", "127.0.0.1:0", "--dir", dir, "--log-level", "debug")
	svc, emu, h5 := p.URL("service"), p.URL("emulator"), p.URL("h5")
	e2e.WaitReady(t, svc)

	var dev struct {
		SecretKey     string `json:"secret_key"`
		CallbackToken string `json:"callback_token"`
		AESKey        string `json:"aes_key"`
		AdminToken    string `json:"admin_token"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "secrets.json"))
	if err != nil || json.Unmarshal(raw, &dev) != nil || dev.AESKey == "" {
		t.Fatalf("secrets.json: %v %s", err, raw)
	}
	secrets := map[string]string{
		"appsecret":      "wxemu-dev-appsecret-00000000000",
		"secret key":     dev.SecretKey,
		"callback token": dev.CallbackToken,
		"EncodingAESKey": dev.AESKey,
		"admin token":    dev.AdminToken,
	}

	// Full login with the userinfo scope; WeChat is busy once on the code
	// exchange, which the access line reports.
	emuFault(t, emu, `{"path":"/sns/oauth2/access_token","errcode":-1,"times":1}`)
	b := newBrowser(t)
	cb, resp := b.Authorize(svc, h5+"/", "snsapi_userinfo", "oWXEMU_alice", "allow")
	if cb == "" {
		t.Fatalf("emulator did not redirect: %d", resp.StatusCode)
	}
	u, _ := url.Parse(cb)
	secrets["code"] = u.Query().Get("code")
	resp, body := b.Get(cb)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	addCookies := func(prefix string, cs []*http.Cookie) {
		for _, c := range cs {
			if len(c.Value) >= 8 {
				secrets[prefix+" cookie "+c.Name] = c.Value
			}
		}
	}
	addCookies("login", resp.Cookies())
	jwt := b.SessionJWT(svc)
	secrets["JWT"] = jwt
	if parts := strings.Split(jwt, "."); len(parts) == 3 {
		secrets["JWT signature"] = parts[2]
	}

	// /me with the JWT, then a refresh through the cookie.
	if resp, body := b.Get(svc+"/me", "Authorization", "Bearer "+jwt); resp.StatusCode != http.StatusOK {
		t.Fatalf("/me: %d %s", resp.StatusCode, body)
	}
	resp, body = b.Post(svc+"/session/refresh", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/session/refresh: %d %s", resp.StatusCode, body)
	}
	var refreshed struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(body), &refreshed)
	secrets["refreshed JWT"] = refreshed.AccessToken
	addCookies("refresh", resp.Cookies())

	// A client that puts the JWT in a path: the access line logs paths.
	if resp, _ := b.Get(svc + "/me/" + jwt); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/me/<jwt>: %d, want 404", resp.StatusCode)
	}

	// The global access_token, read through the internal API.
	req, _ := http.NewRequest(http.MethodGet, svc+"/internal/access-token", nil)
	req.Header.Set("Authorization", "Bearer "+dev.AdminToken)
	var at struct {
		AccessToken string `json:"access_token"`
	}
	if code := e2e.DoJSON(t, req, &at); code != http.StatusOK || at.AccessToken == "" {
		t.Fatalf("/internal/access-token: %d", code)
	}
	secrets["global access_token"] = at.AccessToken

	// A callback message whose content is private.
	nonce := make([]byte, 8)
	rand.Read(nonce)
	content := "private-note-" + hex.EncodeToString(nonce)
	secrets["message content"] = content
	r := emuSend(t, emu, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"`+content+`"}}`)
	if r.Status != http.StatusOK || !r.Valid {
		t.Fatalf("/emu/send: %+v", r)
	}

	// A last request with a known id: once its access line is out, every
	// earlier line is too.
	req, _ = http.NewRequest(http.MethodGet, svc+"/healthz", nil)
	req.Header.Set("X-Request-Id", "logs-test-last-request")
	if hr, err := http.DefaultClient.Do(req); err == nil {
		hr.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), "logs-test-last-request") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := p.Output()

	// The log is not empty: debug lines and one access line per request,
	// with route, status and request id.
	for _, want := range []string{"level=DEBUG", "msg=request", "route=/oauth/callback", "route=/session/refresh",
		"route=/wx", "request_id=logs-test-last-request", "route=/oauth/callback path=/oauth/callback status=302"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if !regexp.MustCompile(`route=/oauth/callback .*wechat_errcode=-1`).MatchString(out) {
		t.Error("the access line of /oauth/callback lacks wechat_errcode=-1")
	}
	for name, s := range secrets {
		if s == "" {
			t.Errorf("%s: not captured by the test", name)
			continue
		}
		if strings.Contains(out, s) {
			t.Errorf("the %s appears in the log", name)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", out)
	}
}
