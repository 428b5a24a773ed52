package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

// oauth2ProxyModule is the oauth2-proxy release the test builds (go
// install, into the test's temporary directory; the Go build cache keeps
// it between runs).
const oauth2ProxyModule = "github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6"

// buildOAuth2Proxy installs oauth2-proxy from its Go module, or skips the
// test when it cannot (no module proxy, no network).
func buildOAuth2Proxy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", oauth2ProxyModule)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build %s: %v\n%s", oauth2ProxyModule, err, out)
	}
	return filepath.Join(dir, "oauth2-proxy")
}

// TestOAuth2Proxy: oauth2-proxy, unmodified, with --provider=oidc and
// wxauth as its issuer in front of a test upstream: a WeChat user opening
// the protected site goes through wxauth (code flow with PKCE, client
// secret) and reaches the upstream as their wxauth sub.
func TestOAuth2Proxy(t *testing.T) {
	t.Parallel()
	proxyBin := buildOAuth2Proxy(t)
	dir := t.TempDir()
	svcAddr, emuAddr, proxyAddr := e2e.FreeAddr(t), e2e.FreeAddr(t), e2e.FreeAddr(t)
	svc, emu, proxy := "http://"+svcAddr, "http://"+emuAddr, "http://"+proxyAddr
	const secret = "oauth2-proxy-client-secret-0123456789"
	clientsFile := filepath.Join(dir, "clients.yaml")
	os.WriteFile(clientsFile, []byte(`- client_id: oauth2-proxy
  client_secret: `+secret+`
  redirect_uris: ["`+proxy+`/oauth2/callback"]
`), 0o600)
	start(t, nil, 1, "emulate", "--listen", emuAddr, "--appid", e2eAppID, "--appsecret", e2eAppSecret, "--oauth-domain", svcAddr)
	start(t, map[string]string{
		"WXAUTH_LISTEN": svcAddr, "WXAUTH_PUBLIC_URL": svc, "WXAUTH_APPID": e2eAppID, "WXAUTH_APPSECRET": e2eAppSecret,
		"WXAUTH_SECRET_KEY": e2eSecretKey, "WXAUTH_ALLOWED_REDIRECTS": proxy, "WXAUTH_CLIENTS": clientsFile,
		"WXAUTH_DATABASE_URL": "sqlite:" + filepath.Join(dir, "wxauth.db"), "WXAUTH_WECHAT_API_BASE": emu,
		"WXAUTH_WECHAT_OPEN_BASE": emu, "WXAUTH_WECHAT_MP_BASE": emu, "WXAUTH_LOG_LEVEL": "warn",
	}, 1, "serve")
	e2e.WaitReady(t, svc)

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream: user=%s email=%s", r.Header.Get("X-Forwarded-User"), r.Header.Get("X-Forwarded-Email"))
	}))
	t.Cleanup(upstream.Close)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, proxyBin,
		"--provider=oidc", "--oidc-issuer-url="+svc, "--client-id=oauth2-proxy", "--client-secret="+secret,
		"--redirect-url="+proxy+"/oauth2/callback", "--http-address="+proxyAddr, "--upstream="+upstream.URL,
		"--email-domain=*", "--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false",
		"--skip-provider-button", "--scope=openid profile", "--code-challenge-method=S256",
		"--oidc-email-claim=sub", "--insecure-oidc-allow-unverified-email")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	for i := 0; ; i++ {
		if resp, err := http.Get(proxy + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 200 {
			t.Fatalf("oauth2-proxy never answered /ping:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A WeChat browser that follows redirects; the emulator's authorize
	// page answers as alice.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, proxy+"/private", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50")
	req.Header.Set("X-Wxemu-User", "oWXEMU_alice")
	req.Header.Set("X-Wxemu-Consent", "allow")
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatalf("%v\noauth2-proxy:\n%s", err, logs.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "upstream: user=u_") {
		t.Fatalf("through oauth2-proxy: %d %s\noauth2-proxy:\n%s", resp.StatusCode, body, logs.String())
	}
	// The session cookie of oauth2-proxy now lets the browser in directly.
	resp, err = browser.Get(proxy + "/again")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "upstream: user=u_") {
		t.Errorf("second request: %d %s", resp.StatusCode, body)
	}
}
