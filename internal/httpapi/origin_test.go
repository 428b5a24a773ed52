package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/wxauth/wxauth/internal/wechat"
)

// TestSession_CrossOrigin: POST /session/logout and /session/refresh with
// the browser's cookies from a page of another origin are refused (403)
// and the session lives on; from an allowed origin, the service's own, or
// a client sending no Origin they work.
func TestSession_CrossOrigin(t *testing.T) {
	h := newHarness(t, denyRedirect)
	c := newClient(t)
	resp, _ := h.login(c, wechat.ScopeBase, "oWXEMU_alice", "allow")
	jwt := fragment(t, resp).Get("access_token")

	hostile := []struct{ name, header, value string }{
		{"OtherSite", "Origin", "https://evil.example.net"},
		{"SameSiteOtherOrigin", "Origin", "https://blog.example.com"},
		{"Null", "Origin", "null"},
		{"FetchCrossSite", "Sec-Fetch-Site", "cross-site"},
	}
	refused := 0
	for _, path := range []string{"/session/logout", "/session/refresh"} {
		for _, hc := range hostile {
			resp, body := c.do("POST", h.svc.URL+path, "", hc.header, hc.value)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: %d %s, want 403", path, hc.name, resp.StatusCode, body)
				continue
			}
			refused++
		}
	}
	resp, _ = c.do("GET", h.svc.URL+"/verify", "", "Authorization", "Bearer "+jwt)
	t.Logf("%d cross-origin POSTs to /session/logout and /session/refresh -> %d refused; /verify afterwards: %d",
		2*len(hostile), refused, resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the session ended after cross-origin requests: /verify %d", resp.StatusCode)
	}

	if resp, body := c.do("POST", h.svc.URL+"/session/refresh", "", "Origin", "https://h5.example.com"); resp.StatusCode != http.StatusOK {
		t.Errorf("refresh from the allowed origin: %d %s", resp.StatusCode, body)
	}
	if resp, body := c.do("POST", h.svc.URL+"/session/refresh", "", "Origin", h.svc.URL); resp.StatusCode != http.StatusOK {
		t.Errorf("refresh from the service's own origin: %d %s", resp.StatusCode, body)
	}
	if resp, _ := c.do("POST", h.svc.URL+"/session/logout", ""); resp.StatusCode != http.StatusNoContent {
		t.Errorf("logout without Origin (not a browser): %d", resp.StatusCode)
	}
}
