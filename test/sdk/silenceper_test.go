// Package sdk drives real WeChat SDKs against wxauth's API proxy, each
// pointed at wxauth with a client id and secret in place of an appid and
// AppSecret. It is a module of its own (test/sdk/go.mod) so that the SDKs
// stay out of wxauth's go.mod; test/sdk_test.go runs it.
package sdk

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silenceper/wechat/v2"
	"github.com/silenceper/wechat/v2/cache"
	offconfig "github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/material"
	"github.com/silenceper/wechat/v2/util"

	"github.com/wxauth/wxauth/test/e2e"
)

const (
	appID     = "wx5d4c3b2a10f0e0d0"
	appSecret = "sdk-appsecret-0123456789abcdef"
	secretKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	adminTok  = "sdk-admin-token-0123456789"
	svcID     = "billing"
	svcSecret = "billing-secret-0123456789abcdef"
)

var binary string

func TestMain(m *testing.M) {
	b, cleanup, err := e2e.Build("../..")
	if err != nil {
		panic(err)
	}
	binary = b
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// startWxauth runs the emulator and authsvc serve with one client, billing,
// allowed user/ and media/ APIs.
func startWxauth(t *testing.T) (svc, emu string) {
	t.Helper()
	svcAddr, emuAddr := e2e.FreeAddr(t), e2e.FreeAddr(t)
	svc, emu = "http://"+svcAddr, "http://"+emuAddr
	file := filepath.Join(t.TempDir(), "clients.yaml")
	yaml := "- client_id: " + svcID + "\n  client_secret: " + svcSecret + "\n  apis: [\"user/\", \"media/\"]\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e2e.Start(t, binary, nil, 1, "emulate", "--listen", emuAddr, "--appid", appID, "--appsecret", appSecret,
		"--oauth-domain", svcAddr)
	e2e.Start(t, binary, map[string]string{
		"WXAUTH_LISTEN": svcAddr, "WXAUTH_PUBLIC_URL": svc, "WXAUTH_APPID": appID, "WXAUTH_APPSECRET": appSecret,
		"WXAUTH_SECRET_KEY": secretKey, "WXAUTH_ALLOWED_REDIRECTS": "https://h5.example.com",
		"WXAUTH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "wxauth.db"), "WXAUTH_WECHAT_API_BASE": emu,
		"WXAUTH_WECHAT_OPEN_BASE": emu, "WXAUTH_WECHAT_MP_BASE": emu, "WXAUTH_ADMIN_TOKEN": adminTok,
		"WXAUTH_CLIENTS": file, "WXAUTH_LOG_LEVEL": "warn",
	}, 1, "serve")
	e2e.WaitReady(t, svc)
	return svc, emu
}

func realToken(t *testing.T, svc string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, svc+"/internal/access-token", nil)
	req.Header.Set("Authorization", "Bearer "+adminTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return out.AccessToken
}

func emuCalls(t *testing.T, emu string) map[string]int {
	t.Helper()
	resp, err := http.Get(emu + "/emu/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var calls map[string]int
	json.NewDecoder(resp.Body).Decode(&calls)
	return calls
}

// TestSilenceper drives github.com/silenceper/wechat/v2 through its own
// token fetch (cgi-bin/token, then cgi-bin/stable_token), a cgi-bin call
// (user/info), a media upload, and a 40001 recovery. The SDK's code is
// unchanged: its Config gets the client id and secret as AppID and
// AppSecret, and its API host, a constant https://api.weixin.qq.com, is
// rewritten by util.SetURIModifier, the hook the SDK offers for that.
func TestSilenceper(t *testing.T) {
	svc, emu := startWxauth(t)
	util.SetURIModifier(func(uri string) string {
		return strings.Replace(uri, "https://api.weixin.qq.com", svc, 1)
	})
	t.Cleanup(func() { util.SetURIModifier(nil) })

	for _, stable := range []bool{false, true} {
		name := "ClassicToken"
		if stable {
			name = "StableToken"
		}
		t.Run(name, func(t *testing.T) {
			oa := wechat.NewWechat().GetOfficialAccount(&offconfig.Config{
				AppID: svcID, AppSecret: svcSecret, Token: "unused", Cache: cache.NewMemory(), UseStableAK: stable,
			})
			// Token fetch: the SDK gets and caches an opaque proxy token.
			tok, err := oa.GetAccessToken()
			if err != nil {
				t.Fatalf("GetAccessToken: %v", err)
			}
			real := realToken(t, svc)
			if !strings.HasPrefix(tok, "wxp_") || tok == real {
				t.Fatalf("the SDK holds %q: want a proxy token, never the real access_token", tok)
			}
			// A cgi-bin call.
			info, err := oa.GetUser().GetUserInfo("oWXEMU_alice")
			if err != nil || info.OpenID != "oWXEMU_alice" || info.Subscribe != 1 {
				t.Fatalf("GetUserInfo: %+v %v", info, err)
			}
			// 40001 recovery: WeChat voids the access_token; the SDK's next
			// calls succeed with the token it cached, and wxauth fetched one
			// new access_token.
			// (WeChat allows a forced refresh every 30 s: move its clock.)
			before := emuCalls(t, emu)
			for _, ctl := range []struct{ path, body string }{{"/emu/clock", `{"advance_seconds":60}`}, {"/emu/void-token", ""}} {
				resp, err := http.Post(emu+ctl.path, "application/json", strings.NewReader(ctl.body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			for range 3 {
				info, err = oa.GetUser().GetUserInfo("oWXEMU_alice")
				if err != nil || info.OpenID != "oWXEMU_alice" {
					t.Fatalf("GetUserInfo after WeChat voided the token: %+v %v", info, err)
				}
			}
			after := emuCalls(t, emu)
			if n := after["/cgi-bin/stable_token"] - before["/cgi-bin/stable_token"]; n != 1 {
				t.Errorf("access_token fetches after the void: %d, want 1", n)
			}
			if again, _ := oa.GetAccessToken(); again != tok {
				t.Errorf("the SDK's cached token changed: it saw an error")
			}
			if realToken(t, svc) == real {
				t.Errorf("the access_token was not replaced")
			}
			// A media upload (multipart) through the SDK.
			file := filepath.Join(t.TempDir(), "photo.jpg")
			os.WriteFile(file, []byte(strings.Repeat("jpeg", 4096)), 0o600)
			media, err := oa.GetMaterial().MediaUpload(material.MediaTypeImage, file)
			if err != nil || media.MediaID == "" {
				t.Fatalf("MediaUpload: %+v %v", media, err)
			}
			// A refused call surfaces as the SDK's usual error.
			_, err = oa.GetMenu().GetMenu()
			if err == nil || !strings.Contains(err.Error(), "48001") {
				t.Errorf("menu/get outside the allowlist: %v, want an error with 48001", err)
			}
		})
	}
}
