package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wxauth/wxauth/test/e2e"
)

const e2eAdminToken = "e2e-admin-token-0123456789"

func adminRequest(t *testing.T, method, u, body string) (int, map[string]any) {
	t.Helper()
	var out map[string]any
	return e2e.AdminJSON(t, e2eAdminToken, method, u, body, &out), out
}

func emuPost(t *testing.T, emu, path, body string) {
	t.Helper()
	resp, err := http.Post(emu+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
}

// TestCredentials_ColdStorm: 1000 concurrent /jssdk/config on a cold service
// make exactly one token call and one getticket call, and every signature
// passes the emulator's wx.config check.
func TestCredentials_ColdStorm(t *testing.T) {
	t.Parallel()
	svc, emu := startPair(t, "plain", map[string]string{"WXAUTH_ADMIN_TOKEN": e2eAdminToken})
	const n = 1000
	page := "https://h5.example.com/page?x=1"
	type cfg struct {
		AppID     string `json:"appId"`
		Timestamp int64  `json:"timestamp"`
		NonceStr  string `json:"nonceStr"`
		Signature string `json:"signature"`
	}
	results := make([]cfg, n)
	errs := make([]error, n)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Get(svc + "/jssdk/config?url=" + url.QueryEscape(page+"#frag"))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("status %d", resp.StatusCode)
				return
			}
			errs[i] = json.NewDecoder(resp.Body).Decode(&results[i])
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	calls := e2e.EmuCalls(t, emu)
	if calls["/cgi-bin/stable_token"] != 1 || calls["/cgi-bin/ticket/getticket"] != 1 {
		t.Errorf("upstream calls %v, want one stable_token and one getticket", calls)
	}
	for i := 0; i < n; i += 37 {
		r := results[i]
		q := url.Values{"url": {page}, "timestamp": {fmt.Sprint(r.Timestamp)}, "nonceStr": {r.NonceStr}, "signature": {r.Signature}}
		resp, err := http.Get(emu + "/emu/jssdk/check?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var check struct{ Valid bool }
		json.NewDecoder(resp.Body).Decode(&check)
		resp.Body.Close()
		if !check.Valid || r.AppID != e2eAppID {
			t.Errorf("response %d %+v does not verify", i, r)
		}
	}
	// Pages outside the allowlist get no signature.
	if resp, _ := http.Get(svc + "/jssdk/config?url=" + url.QueryEscape("https://evil.example/")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unlisted page: %d", resp.StatusCode)
	}
}

// TestCredentials_Invalidate: a token voided behind the service's back,
// reported by 20 callers at once, is refreshed exactly once.
func TestCredentials_Invalidate(t *testing.T) {
	t.Parallel()
	svc, emu := startPair(t, "plain", map[string]string{"WXAUTH_ADMIN_TOKEN": e2eAdminToken})
	if status, _ := http.Get(svc + "/internal/access-token"); status.StatusCode != http.StatusUnauthorized {
		t.Errorf("no admin token: %d", status.StatusCode)
	}
	status, out := adminRequest(t, "GET", svc+"/internal/access-token", "")
	old, _ := out["access_token"].(string)
	if status != http.StatusOK || old == "" {
		t.Fatalf("/internal/access-token: %d %v", status, out)
	}
	emuPost(t, emu, "/emu/void-token", "")
	before := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"]
	fresh := e2e.InvalidateAtOnce(t, e2eAdminToken, old, 20, svc)
	for i, f := range fresh {
		if f == "" || f == old || f != fresh[0] {
			t.Errorf("caller %d got %q (old %q, first %q)", i, f, old, fresh[0])
		}
	}
	if after := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"]; after-before != 1 {
		t.Errorf("%v stable_token calls for one voided token, want 1", after-before)
	}
}

func TestCredentials_Faults(t *testing.T) {
	t.Parallel()
	t.Run("Busy", func(t *testing.T) {
		t.Parallel()
		svc, emu := startPair(t, "plain", map[string]string{"WXAUTH_ADMIN_TOKEN": e2eAdminToken})
		_, out := adminRequest(t, "GET", svc+"/internal/access-token", "")
		before := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"]
		emuPost(t, emu, "/emu/faults", `{"path":"/cgi-bin/stable_token","errcode":-1,"times":2}`)
		status, out := adminRequest(t, "POST", svc+"/internal/access-token/invalidate", `{"access_token":"`+fmt.Sprint(out["access_token"])+`"}`)
		if status != http.StatusOK {
			t.Fatalf("after two -1: %d %v", status, out)
		}
		if calls := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"] - before; calls != 3 {
			t.Errorf("%v stable_token calls, want 3 (two -1 retried)", calls)
		}
	})
	t.Run("IPWhitelist", func(t *testing.T) {
		t.Parallel()
		svc, emu := startPair(t, "plain", map[string]string{"WXAUTH_ADMIN_TOKEN": e2eAdminToken})
		_, out := adminRequest(t, "GET", svc+"/internal/access-token", "")
		before := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"]
		emuPost(t, emu, "/emu/faults", `{"path":"/cgi-bin/stable_token","errcode":40164,"times":1}`)
		status, out := adminRequest(t, "POST", svc+"/internal/access-token/invalidate", `{"access_token":"`+fmt.Sprint(out["access_token"])+`"}`)
		if status != http.StatusBadGateway || !strings.Contains(fmt.Sprint(out["error_description"]), "IP whitelist") {
			t.Fatalf("40164: %d %v", status, out)
		}
		if calls := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"] - before; calls != 1 {
			t.Errorf("40164 was retried: %v calls", calls)
		}
	})
}

// TestCLI_MenuAndQRCode runs `authsvc menu` and `authsvc qrcode` against the
// emulator.
func TestCLI_MenuAndQRCode(t *testing.T) {
	t.Parallel()
	emuAddr := e2e.FreeAddr(t)
	emu := "http://" + emuAddr
	start(t, nil, 1, "emulate", "--listen", emuAddr, "--appid", e2eAppID, "--appsecret", e2eAppSecret)
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "WXAUTH_APPID=" + e2eAppID, "WXAUTH_APPSECRET=" + e2eAppSecret,
		"WXAUTH_SECRET_KEY=" + e2eSecretKey, "WXAUTH_DATABASE_URL=sqlite:" + filepath.Join(dir, "cli.db"),
		"WXAUTH_WECHAT_API_BASE=" + emu, "WXAUTH_WECHAT_OPEN_BASE=" + emu, "WXAUTH_WECHAT_MP_BASE=" + emu}
	authsvc := func(args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	click := func(name string) string { return `{"type":"click","name":"` + name + `","key":"K"}` }

	for name, tc := range map[string]struct{ menu, want string }{
		"FourTopButtons": {`{"button":[` + click("a") + `,` + click("b") + `,` + click("c") + `,` + click("d") + `]}`, "button[3]: at most 3 top-level buttons"},
		"NameTooLong":    {`{"button":[` + click("ABCDEFGHIJKLMNOPQ") + `]}`, `button[0] "ABCDEFGHIJKLMNOPQ": name is 17 bytes, at most 16`},
	} {
		out, err := authsvc("menu", "create", write(name+".json", tc.menu))
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: err %v, output %q lacks %q", name, err, out, tc.want)
		}
	}
	if calls := e2e.EmuCalls(t, emu)["/cgi-bin/menu/create"]; calls != 0 {
		t.Errorf("invalid menus reached WeChat: %v calls", calls)
	}
	valid := `{"button":[{"type":"click","name":"今日歌曲","key":"V1001_TODAY_MUSIC"},{"name":"菜单","sub_button":[{"type":"view","name":"搜索","url":"http://www.soso.com/"}]}]}`
	if out, err := authsvc("menu", "create", write("menu.json", valid)); err != nil {
		t.Fatalf("menu create: %v\n%s", err, out)
	}
	out, err := authsvc("menu", "get")
	if err != nil || !strings.Contains(out, "V1001_TODAY_MUSIC") || !strings.Contains(out, "http://www.soso.com/") {
		t.Fatalf("menu get: %v\n%s", err, out)
	}
	// The emulator's clock passes the cached token's expiry: WeChat answers
	// 42001, the token is refreshed and the call retried; no error reaches
	// the caller.
	before := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"]
	emuPost(t, emu, "/emu/clock", `{"advance_seconds": 7300}`)
	if out, err := authsvc("menu", "get"); err != nil || !strings.Contains(out, "V1001_TODAY_MUSIC") {
		t.Fatalf("menu get after the token expired at WeChat: %v\n%s", err, out)
	}
	if n := e2e.EmuCalls(t, emu)["/cgi-bin/stable_token"] - before; n != 1 {
		t.Errorf("%v stable_token calls after expiry, want 1", n)
	}
	if out, err := authsvc("menu", "delete"); err != nil {
		t.Fatalf("menu delete: %v\n%s", err, out)
	}
	if out, err := authsvc("menu", "get"); err == nil || !strings.Contains(out, "46003") {
		t.Errorf("menu get after delete: %v\n%s", err, out)
	}

	png := filepath.Join(dir, "qr.png")
	out, err = authsvc("qrcode", "create", "--scene", "promo_2026", "--expire", "600", "--out", png)
	if err != nil || !strings.Contains(out, `"ticket"`) {
		t.Fatalf("qrcode create: %v\n%s", err, out)
	}
	img, _ := os.ReadFile(png)
	if len(img) < 8 || string(img[1:4]) != "PNG" {
		t.Errorf("qr.png is not a PNG (%d bytes)", len(img))
	}
	if out, err := authsvc("qrcode", "create", "--scene", strings.Repeat("s", 65)); err == nil || !strings.Contains(out, "scene_str") {
		t.Errorf("65-byte scene: %v\n%s", err, out)
	}
}
