package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/wxauth/test/e2e"
)

// TestOAuth2Proxy puts oauth2-proxy (built from its Go module, pinned in
// test/oauth2proxy/go.mod) with --provider=oidc and wxauth as its issuer in
// front of a test upstream, and logs WeChat users in through it with a
// plain HTTP client that follows redirects with WeChat's user agent and
// fills the emulator's pages the way a user taps them. It proves that an
// unmodified OIDC gateway discovers wxauth, runs the code flow (S256 PKCE,
// nonce checked, client_secret at the token endpoint), verifies the ID
// token, and hands the upstream wxauth's user and access token.
func TestOAuth2Proxy(t *testing.T) {
	t.Parallel()
	proxyBin := buildOAuth2Proxy(t)

	proxyAddr := e2e.FreeAddr(t)
	proxyURL := "http://" + proxyAddr
	secret := randomText(t, 32)
	clientsFile := filepath.Join(t.TempDir(), "clients.yaml")
	writeFile(t, clientsFile, fmt.Sprintf(`clients:
  - client_id: demo-backend
    client_name: oauth2-proxy in the tests
    client_secret: %q
    redirect_uris: [%q]
`, secret, proxyURL+"/oauth2/callback"))
	svc, emu := startPair(t, "plain", map[string]string{"WXAUTH_CLIENTS": clientsFile})

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"upstream": true, "path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(upstream.Close)

	startOAuth2Proxy(t, proxyBin, proxyAddr,
		"--provider=oidc",
		"--oidc-issuer-url="+svc,
		"--client-id=demo-backend",
		"--client-secret="+secret,
		"--redirect-url="+proxyURL+"/oauth2/callback",
		"--upstream="+upstream.URL,
		"--cookie-secret="+randomText(t, 32),
		"--cookie-secure=false",
		// WeChat knows no e-mail address: the stable wxauth user id stands in.
		"--oidc-email-claim=sub",
		"--email-domain=*",
		"--scope=openid profile offline_access",
		"--skip-provider-button",
		"--code-challenge-method=S256",
		"--insecure-oidc-skip-nonce=false",
		"--pass-access-token",
		"--set-xauthrequest",
		"--cookie-refresh=1s",
	)

	// The JWKS, to check what reaches the upstream the way an API would.
	resp, err := http.Get(svc + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	kf, err := keyfunc.NewJWKSetJSON(json.RawMessage(jwks))
	if err != nil {
		t.Fatalf("JWKS: %v: %s", err, jwks)
	}

	t.Run("RedirectsToWxauth", func(t *testing.T) {
		c := newWeChatClient(t, emu)
		c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, body := c.do(http.MethodGet, proxyURL+"/private", nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		q := loc.Query()
		if got := loc.Scheme + "://" + loc.Host + loc.Path; got != svc+"/login" || q.Get("client_id") != "demo-backend" ||
			q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" {
			t.Errorf("oauth2-proxy sends the browser to %s", loc)
		}
	})

	subs := map[string]string{}
	for _, user := range []string{"oWXEMU_alice", "oWXEMU_bob"} {
		t.Run("Login/"+user, func(t *testing.T) {
			c := newWeChatClient(t, emu)
			resp, body := c.login(proxyURL+"/private?x=1", user)
			var got struct {
				Upstream bool
				Path     string
				Headers  http.Header
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || !got.Upstream {
				t.Fatalf("did not reach the upstream: %d %s %.500s", resp.StatusCode, resp.Request.URL, body)
			}
			sub := got.Headers.Get("X-Forwarded-User")
			if got.Path != "/private" || sub == "" || got.Headers.Get("X-Forwarded-Email") != sub {
				t.Errorf("upstream got path %q, X-Forwarded-User %q, X-Forwarded-Email %q", got.Path, sub, got.Headers.Get("X-Forwarded-Email"))
			}
			subs[user] = sub

			// The access token oauth2-proxy passes on is wxauth's JWT, for this
			// user and this client, verifiable offline.
			raw := got.Headers.Get("X-Forwarded-Access-Token")
			tok, err := jwt.Parse(raw, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(svc),
				jwt.WithAudience("wxauth"), jwt.WithExpirationRequired())
			if err != nil {
				t.Fatalf("X-Forwarded-Access-Token does not verify: %v", err)
			}
			claims := tok.Claims.(jwt.MapClaims)
			if claims["sub"] != sub || claims["openid"] != user || claims["client_id"] != "demo-backend" {
				t.Errorf("access token claims %v", claims)
			}

			// oauth2-proxy refreshes a session older than --cookie-refresh with
			// the refresh token (refresh_token grant, client_secret): the
			// upstream then gets a new access token of the same user.
			if user == "oWXEMU_alice" {
				time.Sleep(2 * time.Second) // oauth2-proxy counts whole seconds of age
				resp, body := c.do(http.MethodGet, proxyURL+"/private", nil)
				var again struct{ Headers http.Header }
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &again) != nil {
					t.Fatalf("after the refresh: %d %.300s", resp.StatusCode, body)
				}
				fresh := again.Headers.Get("X-Forwarded-Access-Token")
				tok, err := jwt.Parse(fresh, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(svc),
					jwt.WithAudience("wxauth"), jwt.WithExpirationRequired())
				if fresh == raw || err != nil || tok.Claims.(jwt.MapClaims)["sub"] != sub {
					t.Errorf("oauth2-proxy's refreshed access token: same %v, err %v", fresh == raw, err)
				}
			}

			// auth_request mode: the session cookie alone is enough, and the
			// X-Auth-Request headers name the user.
			resp, body = c.do(http.MethodGet, proxyURL+"/oauth2/auth", nil)
			if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Auth-Request-User") != sub ||
				resp.Header.Get("X-Auth-Request-Access-Token") == "" {
				t.Errorf("/oauth2/auth: %d X-Auth-Request-User %q: %s", resp.StatusCode, resp.Header.Get("X-Auth-Request-User"), body)
			}

			// Signed out of oauth2-proxy, the next request starts a new login
			// at wxauth (which its own browser-login cookie may answer at once).
			c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			c.do(http.MethodGet, proxyURL+"/oauth2/sign_out", nil)
			if resp, _ := c.do(http.MethodGet, proxyURL+"/private", nil); resp.StatusCode != http.StatusFound ||
				!strings.HasPrefix(resp.Header.Get("Location"), svc+"/login?") {
				t.Errorf("after sign_out: %d to %q, want 302 to a new login", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	if subs["oWXEMU_alice"] == subs["oWXEMU_bob"] {
		t.Errorf("alice and bob have the same sub %q", subs["oWXEMU_alice"])
	}

	t.Run("SnapshotUser", func(t *testing.T) {
		c := newWeChatClient(t, emu)
		resp, body := c.login(proxyURL+"/private", "oWXEMU_snap")
		if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"upstream":true`)) {
			t.Fatalf("a snapshot-page user reached the upstream")
		}
	})
}

// buildOAuth2Proxy builds oauth2-proxy from the module pinned in
// test/oauth2proxy (its own go.mod, so wxauth's stays clean). With the
// module and build caches warm it is a link step; on a fresh machine it
// needs the Go module proxy once.
func buildOAuth2Proxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "oauth2-proxy")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/oauth2-proxy/oauth2-proxy/v7")
	cmd.Dir = "oauth2proxy"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building oauth2-proxy: %v\n%s", err, out)
	}
	return bin
}

// startOAuth2Proxy runs oauth2-proxy on addr with args, waits until its
// /ping answers, and stops it when the test ends (its output is logged when
// the test failed).
func startOAuth2Proxy(t *testing.T, bin, addr string, args ...string) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(bin, append([]string{"--http-address=" + addr}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", out.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/ping", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("oauth2-proxy exited:\n%s", out.String())
		case <-ctx.Done():
			t.Fatalf("oauth2-proxy did not answer /ping:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wechatClient is a phone's in-app browser as plain HTTP: a cookie jar,
// WeChat's user agent on every request, redirects followed, and the
// emulator's picker and consent pages filled in as a user taps them.
type wechatClient struct {
	t    *testing.T
	http *http.Client
	emu  *url.URL
}

func newWeChatClient(t *testing.T, emulator string) *wechatClient {
	jar, _ := cookiejar.New(nil)
	emu, _ := url.Parse(emulator)
	return &wechatClient{t: t, emu: emu, http: &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: uaTransport{}}}
}

// uaTransport sets WeChat's user agent on every request, redirects included.
type uaTransport struct{}

func (uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", wechatUA)
	return http.DefaultTransport.RoundTrip(r)
}

// do sends a request (a form POST when form is not nil) and returns the
// final response with its body read.
func (c *wechatClient) do(method, u string, form url.Values) (*http.Response, []byte) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

var (
	formRE   = regexp.MustCompile(`(?s)<form method="post" action="([^"]+)">(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// login opens u and, while the browser sits on the emulator's user picker
// or consent page, taps openid, then 允许 (allow). It returns where the
// redirects end.
func (c *wechatClient) login(u, openid string) (*http.Response, []byte) {
	c.t.Helper()
	resp, body := c.do(http.MethodGet, u, nil)
	for range 3 {
		if resp.Request.URL.Host != c.emu.Host {
			return resp, body
		}
		var action string
		form := url.Values{}
		for _, m := range formRE.FindAllSubmatch(body, -1) {
			inner := string(m[2])
			switch {
			case strings.Contains(inner, `id="user-`+openid+`"`): // the picker
			case strings.Contains(inner, `id="allow"`): // the consent page
				form.Set("decision", "allow")
			default:
				continue
			}
			action = html.UnescapeString(string(m[1]))
			for _, in := range hiddenRE.FindAllStringSubmatch(inner, -1) {
				form.Set(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
			}
			break
		}
		if action == "" {
			c.t.Fatalf("the emulator's page at %s has no form for %s: %.1000s", resp.Request.URL, openid, body)
		}
		resp, body = c.do(http.MethodPost, resp.Request.URL.ResolveReference(&url.URL{Path: action}).String(), form)
	}
	c.t.Fatalf("still on the emulator's pages after three taps: %s", resp.Request.URL)
	return nil, nil
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// randomText returns n random characters of [A-Za-z0-9].
func randomText(t *testing.T, n int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
