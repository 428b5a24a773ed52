package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/test/e2e"
)

// WeChat's harder cases outside the login flow, played by the emulator
// (see the wxemu package doc) against the running binary.

// TestFidelity_StableTokenForceTooSoon: a token refused twice within 30 s.
// The second forced stable_token refresh answers the current token without
// refreshing ("否则不会刷新"): the service serves that token instead of
// forcing again on every call.
func TestFidelity_StableTokenForceTooSoon(t *testing.T) {
	t.Parallel()
	svc, emu := startPair(t, "plain", map[string]string{"WXAUTH_ADMIN_TOKEN": e2eAdminToken})
	_, out := adminRequest(t, "GET", svc+"/internal/access-token", "")
	t1, _ := out["access_token"].(string)
	status, out := adminRequest(t, "POST", svc+"/internal/access-token/invalidate", `{"access_token":"`+t1+`"}`)
	t2, _ := out["access_token"].(string)
	if status != http.StatusOK || t2 == "" || t2 == t1 {
		t.Fatalf("first invalidate: %d %v", status, out)
	}
	before := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"]
	status, out = adminRequest(t, "POST", svc+"/internal/access-token/invalidate", `{"access_token":"`+t2+`"}`)
	if status != http.StatusOK || out["access_token"] != t2 {
		t.Fatalf("second invalidate within 30 s: %d %v, want %q again", status, out, t2)
	}
	for range 3 {
		if status, out := adminRequest(t, "GET", svc+"/internal/access-token", ""); status != http.StatusOK || out["access_token"] != t2 {
			t.Fatalf("/internal/access-token: %d %v, want %q", status, out, t2)
		}
	}
	if n := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"] - before; n != 1 {
		t.Errorf("%v stable_token calls after the second report, want 1", n)
	}
}

// TestFidelity_IPRules: the emulator's IP whitelist and IP risk control
// refuse the token fetch; the service reports it and does not retry.
func TestFidelity_IPRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, rules string }{
		{"Whitelist40164", `{"ips":["192.0.2.1"]}`},
		{"RiskConfirm89503", `{"ips":[],"risk_confirm":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svc, emu := startPair(t, "plain", map[string]string{"WXAUTH_ADMIN_TOKEN": e2eAdminToken})
			_, out := adminRequest(t, "GET", svc+"/internal/access-token", "")
			emuPost(t, emu, "/emu/ip-whitelist", tc.rules)
			before := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"]
			status, out := adminRequest(t, "POST", svc+"/internal/access-token/invalidate", `{"access_token":"`+fmt.Sprint(out["access_token"])+`"}`)
			if status < 500 || out["access_token"] != nil {
				t.Fatalf("refused fetch: %d %v", status, out)
			}
			if n := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"] - before; n != 1 {
				t.Errorf("%v stable_token calls, want 1 (a refusal is not retried)", n)
			}
		})
	}
}

// TestFidelity_SubscribeWithScene: a follow through a QR code carries
// EventKey qrscene_<scene> and the code's Ticket; the service answers it.
func TestFidelity_SubscribeWithScene(t *testing.T) {
	t.Parallel()
	_, emu := startPair(t, "safe", nil)
	resp, err := http.Post(emu+"/emu/subscribe", "application/json", strings.NewReader(`{"from":"oWXEMU_bob","scene":"promo"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		sendResult
		Sent string `json:"sent"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Sent, "<EventKey><![CDATA[qrscene_promo]]></EventKey><Ticket><![CDATA[gQ") {
		t.Fatalf("pushed %s", res.Sent)
	}
	if !res.Valid {
		t.Fatalf("the service's answer: %+v", res.sendResult)
	}
}

// TestFidelity_TextReplyTooLong: a rules file with a text reply over
// WeChat's 2048 bytes is loaded with a warning naming the rule, and the
// emulator, like WeChat, refuses that reply.
func TestFidelity_TextReplyTooLong(t *testing.T) {
	t.Parallel()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	long := strings.Repeat("长", 700) // 2100 bytes
	if err := os.WriteFile(rules, []byte("keywords:\n  - exact: long\n    reply: {type: text, content: '"+long+"'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	svcAddr, emuAddr := e2e.FreeAddr(t), e2e.FreeAddr(t)
	svc, emu := "http://"+svcAddr, "http://"+emuAddr
	start(t, nil, 1, "emulate", "--listen", emuAddr, "--appid", e2eAppID, "--appsecret", e2eAppSecret,
		"--oauth-domain", svcAddr, "--callback-url", svc+"/wx", "--callback-token", e2eToken, "--mode", "plain")
	p := start(t, map[string]string{
		"WXAUTH_LISTEN": svcAddr, "WXAUTH_PUBLIC_URL": svc, "WXAUTH_APPID": e2eAppID, "WXAUTH_APPSECRET": e2eAppSecret,
		"WXAUTH_SECRET_KEY": e2eSecretKey, "WXAUTH_ALLOWED_REDIRECTS": "https://h5.example.com",
		"WXAUTH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "wxauth.db"), "WXAUTH_WECHAT_API_BASE": emu,
		"WXAUTH_WECHAT_OPEN_BASE": emu, "WXAUTH_WECHAT_MP_BASE": emu, "WXAUTH_CALLBACK_TOKEN": e2eToken,
		"WXAUTH_CALLBACK_MODE": "plain", "WXAUTH_ORIGINAL_ID": "gh_wxemu00000000",
		"WXAUTH_CALLBACK_RULES": rules, "WXAUTH_LOG_LEVEL": "warn",
	}, 1, "serve")
	e2e.WaitReady(t, svc)
	if out := p.Output(); !strings.Contains(out, "keywords[0]: reply: text content is 2100 bytes") {
		t.Errorf("no load-time warning about the reply:\n%s", out)
	}
	res := emuSend(t, emu, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"long"}}`)
	if res.Valid || !strings.Contains(res.Error, "2048") {
		t.Errorf("the emulator accepted a %d-byte text reply: %+v", len(long), res)
	}
}
