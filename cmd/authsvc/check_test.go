package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/internal/config"
	"github.com/wxauth/wxauth/internal/wechat"
	"github.com/wxauth/wxauth/internal/wxemu"
)

const (
	checkAppID  = "wx5e0a1b2c3d4e5f61"
	checkSecret = "check-appsecret-0123456789abcdef"
)

// checkEnv starts an emulator and returns its URL and a getenv for a valid
// configuration against it; edit may change variables.
func checkEnv(t *testing.T, edit map[string]string) (string, func(string) string) {
	t.Helper()
	emu, err := wxemu.New(wxemu.Config{AppID: checkAppID, AppSecret: checkSecret, OAuthDomains: []string{"auth.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	env := map[string]string{
		"WXAUTH_PUBLIC_URL": "https://auth.example.com", "WXAUTH_APPID": checkAppID, "WXAUTH_APPSECRET": checkSecret,
		"WXAUTH_SECRET_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "WXAUTH_ALLOWED_REDIRECTS": "https://h5.example.com",
		"WXAUTH_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "wxauth.db"), "WXAUTH_WECHAT_API_BASE": srv.URL,
		"WXAUTH_WECHAT_OPEN_BASE": srv.URL, "WXAUTH_WECHAT_MP_BASE": srv.URL,
	}
	for k, v := range edit {
		env[k] = v
	}
	return srv.URL, func(k string) string { return env[k] }
}

// runCheckTest runs `authsvc check args...` in-process and returns its
// error and stdout.
func runCheckTest(t *testing.T, getenv func(string) string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), append([]string{"authsvc", "check"}, args...), getenv, strings.NewReader(""), &out, &errOut)
	if strings.Contains(out.String(), checkSecret) || strings.Contains(errOut.String(), checkSecret) {
		t.Errorf("the AppSecret appears in the output:\n%s%s", out.String(), errOut.String())
	}
	return out.String(), err
}

func TestRunCheck(t *testing.T) {
	t.Run("Passing", func(t *testing.T) {
		_, getenv := checkEnv(t, nil)
		out, err := runCheckTest(t, getenv)
		if err != nil {
			t.Fatalf("check failed: %v\n%s", err, out)
		}
		for _, want := range []string{"[ok]   configuration", "[ok]   stores: sqlite:", "[ok]   WeChat API: cgi-bin/stable_token answered", "all checks passed"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "[FAIL]") {
			t.Errorf("passing check prints a failure:\n%s", out)
		}
	})
	t.Run("WrongSecret40125", func(t *testing.T) {
		_, getenv := checkEnv(t, map[string]string{"WXAUTH_APPSECRET": "wrong-appsecret-0000000000000000"})
		out, err := runCheckTest(t, getenv)
		if !errors.Is(err, errCheckFailed) {
			t.Fatalf("err = %v, want errCheckFailed\n%s", err, out)
		}
		if !strings.Contains(out, "[FAIL] WeChat API: 40125: the AppSecret is wrong") || strings.Contains(out, "wrong-appsecret") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("WrongAppID40013", func(t *testing.T) {
		_, getenv := checkEnv(t, map[string]string{"WXAUTH_APPID": "wx0000000000000000"})
		out, err := runCheckTest(t, getenv)
		if !errors.Is(err, errCheckFailed) || !strings.Contains(out, `[FAIL] WeChat API: 40013: the AppID "wx0000000000000000" is not valid`) {
			t.Errorf("err = %v, output:\n%s", err, out)
		}
	})
	t.Run("Whitelist40164", func(t *testing.T) {
		emu, getenv := checkEnv(t, nil)
		resp, err := http.Post(emu+"/emu/faults", "application/json",
			strings.NewReader(`{"path":"/cgi-bin/stable_token","errcode":40164,"times":-1}`))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/emu/faults: %v %v", err, resp)
		}
		resp.Body.Close()
		out, err := runCheckTest(t, getenv)
		if !errors.Is(err, errCheckFailed) || !strings.Contains(out, "[FAIL] WeChat API: 40164: add this server's outbound IP to the IP whitelist") {
			t.Errorf("err = %v, output:\n%s", err, out)
		}
	})
	t.Run("Offline", func(t *testing.T) {
		_, getenv := checkEnv(t, map[string]string{"WXAUTH_WECHAT_API_BASE": "http://127.0.0.1:1"})
		out, err := runCheckTest(t, getenv, "--offline")
		if err != nil || !strings.Contains(out, "[skip] WeChat API: --offline") {
			t.Errorf("err = %v, output:\n%s", err, out)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		_, getenv := checkEnv(t, map[string]string{"WXAUTH_WECHAT_API_BASE": "http://127.0.0.1:1"})
		out, err := runCheckTest(t, getenv)
		if !errors.Is(err, errCheckFailed) || !strings.Contains(out, "[FAIL] WeChat API: cannot reach http://127.0.0.1:1") {
			t.Errorf("err = %v, output:\n%s", err, out)
		}
	})
	t.Run("DefaultDatabaseNotCreated", func(t *testing.T) {
		// Without WXAUTH_DATABASE_URL (here: a --config file that does not
		// set it either), check opens nothing that does not exist yet.
		dir := t.TempDir()
		t.Chdir(dir)
		cfgFile := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(cfgFile, []byte("WXAUTH_LOG_LEVEL: warn\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, getenv := checkEnv(t, map[string]string{"WXAUTH_DATABASE_URL": ""})
		out, err := runCheckTest(t, getenv, "--offline", "--config", cfgFile)
		if err != nil || !strings.Contains(out, "[skip] stores: the default "+config.DefaultDatabaseURL+" does not exist here") {
			t.Errorf("err = %v, output:\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "wxauth.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("check created the default database: %v", err)
		}
	})
	t.Run("BadConfiguration", func(t *testing.T) {
		_, getenv := checkEnv(t, map[string]string{"WXAUTH_SECRET_KEY": "short", "WXAUTH_PUBLIC_URL": "ftp://x"})
		out, err := runCheckTest(t, getenv, "--offline")
		if !errors.Is(err, errCheckFailed) {
			t.Fatalf("err = %v\n%s", err, out)
		}
		for _, want := range []string{"[FAIL] configuration: WXAUTH_PUBLIC_URL: must be an absolute http or https URL",
			"[FAIL] configuration: WXAUTH_SECRET_KEY: must be base64", "[ok]   stores"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
}

// TestExplainWeChat_40164 reads the address out of WeChat's real errmsg.
func TestExplainWeChat_40164(t *testing.T) {
	cfg := &config.Config{AppID: checkAppID, WeChatAPIBase: "https://api.weixin.qq.com"}
	for name, tc := range map[string]struct{ msg, want string }{
		"IPv4":       {"invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 6650a1b2-1c2d3e4f-5a6b7c8d", "add 203.0.113.7 to the IP whitelist"},
		"IPv6":       {"invalid ip 2001:db8::7, not in whitelist rid: 6650a1b2-1c2d3e4f-5a6b7c8d", "add 2001:db8::7 to the IP whitelist"},
		"Mapped":     {"invalid ip ::ffff:198.51.100.9, not in whitelist", "add 198.51.100.9 to the IP whitelist"},
		"NoAddress":  {"not in whitelist", "add this server's outbound IP"},
		"GarbageIP":  {"invalid ip 999.1.1.1 ipv6", "add this server's outbound IP"},
		"EmptyMsg":   {"", "add this server's outbound IP"},
		"HostileMsg": {"invalid ip <script>", "add this server's outbound IP"},
	} {
		t.Run(name, func(t *testing.T) {
			got := explainWeChat(&wechat.Error{API: "cgi-bin/stable_token", Code: 40164, Msg: tc.msg}, cfg)
			if !strings.HasPrefix(got, "40164: ") || !strings.Contains(got, tc.want) {
				t.Errorf("explain = %q, want %q", got, tc.want)
			}
		})
	}
}
