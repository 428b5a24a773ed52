package test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/test/e2e"
)

// jwksKids returns the kids of the JWKS's ES256 keys (WXAUTH_JWT_ALG's).
func jwksKids(t *testing.T, svc string) []string {
	t.Helper()
	resp, err := http.Get(svc + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	json.NewDecoder(resp.Body).Decode(&set)
	var kids []string
	for _, k := range set.Keys {
		if k.Alg != "ES256" {
			continue // the RS256 key of ID tokens rotates beside it
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

// TestKeys_Rotate: `authsvc keys rotate` publishes a second key; after a
// restart the JWKS shows both and a token signed by the old key verifies.
func TestKeys_Rotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	svcAddr, emuAddr := e2e.FreeAddr(t), e2e.FreeAddr(t)
	svc, emu := "http://"+svcAddr, "http://"+emuAddr
	start(t, nil, 1, "emulate", "--listen", emuAddr, "--appid", e2eAppID, "--appsecret", e2eAppSecret, "--oauth-domain", svcAddr)
	env := map[string]string{
		"WXAUTH_LISTEN": svcAddr, "WXAUTH_PUBLIC_URL": svc, "WXAUTH_APPID": e2eAppID, "WXAUTH_APPSECRET": e2eAppSecret,
		"WXAUTH_SECRET_KEY": e2eSecretKey, "WXAUTH_ALLOWED_REDIRECTS": "http://127.0.0.1:8082",
		"WXAUTH_DATABASE_URL": "sqlite:" + filepath.Join(dir, "wxauth.db"), "WXAUTH_WECHAT_API_BASE": emu,
		"WXAUTH_WECHAT_OPEN_BASE": emu, "WXAUTH_WECHAT_MP_BASE": emu, "WXAUTH_LOG_LEVEL": "warn",
	}
	first := start(t, env, 1, "serve")
	e2e.WaitReady(t, svc)
	before := jwksKids(t, svc)
	if len(before) != 1 {
		t.Fatalf("a new service publishes %v, want one key", before)
	}
	b := newBrowser(t)
	cb, _ := b.Authorize(svc, "http://127.0.0.1:8082/", "snsapi_base", "oWXEMU_bob", "allow")
	if resp, body := b.Get(cb); resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	token := b.SessionJWT(svc)

	first.Stop()
	cmd := exec.Command(binary, "keys", "rotate")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "new signing key") || strings.Count(string(out), "ES256") != 2 || strings.Count(string(out), "RS256") != 2 {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}

	start(t, env, 1, "serve")
	e2e.WaitReady(t, svc)
	after := jwksKids(t, svc)
	if len(after) != 2 || (after[0] != before[0] && after[1] != before[0]) {
		t.Fatalf("JWKS after rotation %v, want the old %v and a new key", after, before)
	}
	if resp, _ := b.Get(svc+"/verify", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusOK {
		t.Errorf("a token of the old key after rotation: %d", resp.StatusCode)
	}
}
