package cluster

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCluster_CodeFlow: one OpenID Connect login across the instances: the
// authorization request on A, WeChat's callback on B, the token endpoint on
// C; userinfo, refresh and revocation each on another instance; a code
// reused on A revokes what C issued.
func TestCluster_CodeFlow(t *testing.T) {
	cl := newCluster(t)
	c := newClient(t)
	verifier := "cluster-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"page"}, "redirect_uri": {page}, "response_type": {"code"},
		"scope": {"openid profile offline_access"}, "state": {"st"}, "nonce": {"nn"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, body := c.Do("GET", cl.urls[0]+"/login?"+q.Encode(), "")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize on A: %d %s", resp.StatusCode, body)
	}
	resp, body = c.Do("GET", resp.Header.Get("Location"), "", "X-Wxemu-User", "oWXEMU_alice", "X-Wxemu-Consent", "allow")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("emulator: %d %s", resp.StatusCode, body)
	}
	resp, body = c.Do("GET", cl.onInstance(resp.Header.Get("Location"), 1), "")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" {
		t.Fatalf("callback on B: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	code := loc.Query().Get("code")
	token := func(i int, form url.Values) (int, map[string]any) {
		t.Helper()
		resp, body := c.Do("POST", cl.urls[i]+"/oauth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		var out map[string]any
		json.Unmarshal([]byte(body), &out)
		return resp.StatusCode, out
	}
	redeem := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {page}, "client_id": {"page"}, "code_verifier": {verifier}}
	st, tok := token(2, redeem)
	if st != http.StatusOK || tok["id_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("token on C: %d %v", st, tok)
	}
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	bearer := func(i int, path, tk string) int {
		resp, _ := c.Do("GET", cl.urls[i]+path, "", "Authorization", "Bearer "+tk)
		return resp.StatusCode
	}
	if st := bearer(0, "/userinfo", access); st != http.StatusOK {
		t.Errorf("userinfo on A: %d", st)
	}
	st, tok2 := token(1, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"page"}})
	if st != http.StatusOK || tok2["refresh_token"] == refresh {
		t.Fatalf("refresh on B: %d %v", st, tok2)
	}
	// The code again, on A: refused, and C's tokens are revoked everywhere.
	if st, out := token(0, redeem); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("reused code on A: %d %v", st, out)
	}
	for i := range cl.urls {
		if st := bearer(i, "/verify", tok2["access_token"].(string)); st != http.StatusUnauthorized {
			t.Errorf("/verify on %d after the code reuse: %d", i, st)
		}
	}

	// A second login; revoked on C, its token fails on A and B.
	resp, _ = c.Do("GET", cl.urls[1]+"/login?"+strings.Replace(q.Encode(), "state=st", "state=s2", 1), "")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("second login: %d", resp.StatusCode)
	}
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), page) { // the browser's wxauth login answers without WeChat
		t.Fatalf("second login went to %s", loc)
	}
	redeem.Set("code", loc.Query().Get("code"))
	st, tok3 := token(0, redeem)
	if st != http.StatusOK {
		t.Fatalf("second token: %d %v", st, tok3)
	}
	resp, _ = c.Do("POST", cl.urls[2]+"/oauth/revoke", url.Values{"token": {tok3["refresh_token"].(string)}, "client_id": {"page"}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke on C: %d", resp.StatusCode)
	}
	for i := range 2 {
		if st := bearer(i, "/verify", tok3["access_token"].(string)); st != http.StatusUnauthorized {
			t.Errorf("/verify on %d after revocation: %d", i, st)
		}
	}
}
