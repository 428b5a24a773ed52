package test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

const (
	e2eAppID     = "wx5e0a1b2c3d4e5f60"
	e2eAppSecret = "e2e-appsecret-0123456789abcdef0"
	e2eToken     = "e2eCallbackToken"
	e2eAESKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	e2eSecretKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// startPair runs `authsvc emulate` and `authsvc serve` wired to each other
// with the callback in mode; it returns the service and emulator URLs.
func startPair(t *testing.T, mode string, extraEnv map[string]string) (svc, emu string) {
	t.Helper()
	svcAddr, emuAddr := e2e.FreeAddr(t), e2e.FreeAddr(t)
	svc, emu = "http://"+svcAddr, "http://"+emuAddr
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	sample, err := os.ReadFile("../internal/callback/testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(rules, sample, 0o644)
	aes := ""
	if mode != "plain" {
		aes = e2eAESKey
	}
	start(t, nil, 1, "emulate", "--listen", emuAddr, "--appid", e2eAppID, "--appsecret", e2eAppSecret,
		"--oauth-domain", svcAddr, "--callback-url", svc+"/wx", "--callback-token", e2eToken, "--aes-key", aes, "--mode", mode)
	env := map[string]string{
		"WXAUTH_LISTEN": svcAddr, "WXAUTH_PUBLIC_URL": svc, "WXAUTH_APPID": e2eAppID, "WXAUTH_APPSECRET": e2eAppSecret,
		"WXAUTH_SECRET_KEY": e2eSecretKey, "WXAUTH_ALLOWED_REDIRECTS": "https://h5.example.com",
		"WXAUTH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "wxauth.db"), "WXAUTH_WECHAT_API_BASE": emu,
		"WXAUTH_WECHAT_OPEN_BASE": emu, "WXAUTH_WECHAT_MP_BASE": emu, "WXAUTH_CALLBACK_TOKEN": e2eToken,
		"WXAUTH_ENCODING_AES_KEY": aes, "WXAUTH_CALLBACK_MODE": mode, "WXAUTH_ORIGINAL_ID": "gh_wxemu00000000",
		"WXAUTH_CALLBACK_RULES": rules, "WXAUTH_LOG_LEVEL": "warn",
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	start(t, env, 1, "serve")
	e2e.WaitReady(t, svc)
	return svc, emu
}

// sendResult is the emulator's answer to POST /emu/send.
type sendResult struct {
	Deliveries int            `json:"deliveries"`
	Status     int            `json:"status"`
	Reply      map[string]any `json:"reply"`
	Raw        string         `json:"raw"`
	Plain      string         `json:"plain"`
	Valid      bool           `json:"valid"`
	Error      string         `json:"error"`
	Replies    []sendResult   `json:"replies"`
}

func emuSend(t *testing.T, emu, body string) sendResult {
	t.Helper()
	resp, err := http.Post(emu+"/emu/send", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r sendResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("/emu/send: %d %v", resp.StatusCode, err)
	}
	return r
}

func TestCallback_Modes(t *testing.T) {
	for _, mode := range []string{"plain", "compat", "safe"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			svc, emu := startPair(t, mode, nil)

			r := emuSend(t, emu, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"hi"}}`)
			if !r.Valid || r.Reply["MsgType"] != "text" || !strings.Contains(r.Reply["Content"].(string), "Hello") {
				t.Fatalf("text in %s mode: %+v", mode, r)
			}
			if mode != "plain" && !strings.Contains(r.Raw, "<Encrypt>") {
				t.Errorf("%s mode reply is not encrypted: %s", mode, r.Raw)
			}

			// Three deliveries of the same message: handled once, three identical replies.
			r = emuSend(t, emu, `{"from":"oWXEMU_bob","message":{"MsgType":"text","Content":"news"},"repeat":3}`)
			if len(r.Replies) != 3 {
				t.Fatalf("repeat: %+v", r)
			}
			for i, rep := range r.Replies {
				if !rep.Valid || rep.Reply["MsgType"] != "news" || rep.Plain != r.Replies[0].Plain {
					t.Errorf("delivery %d: %+v", i, rep)
				}
			}

			// A replayed old timestamp is refused.
			old := time.Now().Add(-time.Hour).Unix()
			r = emuSend(t, emu, `{"from":"oWXEMU_bob","message":{"MsgType":"text","Content":"hi"},"timestamp":`+itoa(old)+`}`)
			if r.Status != http.StatusForbidden || r.Valid {
				t.Errorf("replayed timestamp: %+v", r)
			}

			// Bad inputs: each a 4xx, and the service keeps serving.
			for name, req := range map[string]struct {
				method, query, body string
				status              int
			}{
				"NoSignature":  {"POST", "", "<xml></xml>", http.StatusForbidden},
				"BadEcho":      {"GET", "?signature=0&timestamp=1&nonce=1&echostr=x", "", http.StatusForbidden},
				"TooLarge":     {"POST", "?signature=0&timestamp=1&nonce=1", strings.Repeat("a", 1<<20+1), http.StatusRequestEntityTooLarge},
				"UnknownRoute": {"PUT", "", "", http.StatusMethodNotAllowed},
			} {
				hreq, _ := http.NewRequest(req.method, svc+"/wx"+req.query, strings.NewReader(req.body))
				resp, err := http.DefaultClient.Do(hreq)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				resp.Body.Close()
				if resp.StatusCode != req.status {
					t.Errorf("%s: %d, want %d", name, resp.StatusCode, req.status)
				}
			}
			r = emuSend(t, emu, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"你好"}}`)
			if !r.Valid || r.Reply["MsgType"] != "text" {
				t.Errorf("after bad inputs: %+v", r)
			}
		})
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
