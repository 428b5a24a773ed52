package test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wxauth/wxauth/test/e2e"
)

// oidcEnv is `authsvc dev` seen by OpenID Connect relying parties: its
// issuer, the example page's public client h5-demo and the confidential
// demo-backend (secret from the dev directory's secrets.json).
type oidcEnv struct {
	t        *testing.T
	proc     *e2e.Proc
	svc, h5  string
	emu      string
	provider *oidc.Provider
	secret   string // demo-backend's client_secret
}

func startOIDC(t *testing.T) *oidcEnv {
	t.Helper()
	dir := t.TempDir()
	p := start(t, nil, 3, "dev", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0",
		"--h5-listen", "127.0.0.1:0", "--dir", dir, "--log-level", "warn")
	e := &oidcEnv{t: t, proc: p, svc: p.URL("service"), h5: p.URL("h5"), emu: p.URL("emulator")}
	e2e.WaitReady(t, e.svc)
	b, err := os.ReadFile(filepath.Join(dir, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		DemoBackendSecret string `json:"demo_backend_secret"`
	}
	json.Unmarshal(b, &s)
	e.secret = s.DemoBackendSecret
	// The banner's client lines follow the listening lines Start waited for.
	for i := 0; i < 200 && !strings.Contains(p.Output(), "demo-backend"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if e.secret == "" || !strings.Contains(p.Output(), e.secret) || !strings.Contains(p.Output(), "h5-demo") {
		t.Fatalf("dev banner does not print the clients:\n%s", p.Output())
	}
	// go-oidc accepts the discovery document: the issuer matches and the
	// endpoints are there.
	e.provider, err = oidc.NewProvider(context.Background(), e.svc)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	return e
}

// public is the h5-demo client as golang.org/x/oauth2 sees it.
func (e *oidcEnv) public(scopes ...string) *oauth2.Config {
	ep := e.provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{ClientID: "h5-demo", Endpoint: ep, RedirectURL: e.h5 + "/", Scopes: scopes}
}

// confidential is demo-backend (client_secret_basic).
func (e *oidcEnv) confidential(scopes ...string) *oauth2.Config {
	ep := e.provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return &oauth2.Config{ClientID: "demo-backend", ClientSecret: e.secret, Endpoint: ep,
		RedirectURL: "http://127.0.0.1:4180/oauth2/callback", Scopes: scopes}
}

// toClient follows redirects from u in browser b (a WeChat user agent with
// a cookie jar), answering the emulator's authorize page as user (consent
// allowed), until the browser is sent to a URL starting with prefix; it
// returns that URL. The /oauth/callback URL WeChat sent is returned too.
func (b *browser) toClient(u, user, prefix string) (final, callback string) {
	b.T.Helper()
	for range 10 {
		resp, body := b.Get(u, "X-Wxemu-User", user, "X-Wxemu-Consent", "allow")
		if resp.StatusCode != http.StatusFound {
			b.T.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
		}
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.T.Fatal(err)
		}
		u = next.String()
		if strings.Contains(u, "/oauth/callback?") {
			callback = u
		}
		if strings.HasPrefix(u, prefix) {
			return u, callback
		}
	}
	b.T.Fatalf("too many redirects, last %s", u)
	return "", ""
}

// login runs the code flow with PKCE and a nonce for cfg in a new WeChat
// browser as user, and returns the browser, the code URL's query, the
// verifier and the nonce.
func (e *oidcEnv) login(cfg *oauth2.Config, user string) (*browser, url.Values, string, string) {
	e.t.Helper()
	b := newBrowser(e.t)
	verifier, nonce, state := oauth2.GenerateVerifier(), "n-"+oauth2.GenerateVerifier()[:16], "s-"+oauth2.GenerateVerifier()[:16]
	final, _ := b.toClient(cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), user, cfg.RedirectURL)
	fu, _ := url.Parse(final)
	q := fu.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		e.t.Fatalf("back at the client with %s", final)
	}
	return b, q, verifier, nonce
}

// verify asks /verify about an access token.
func (e *oidcEnv) verify(token string) int {
	req, _ := http.NewRequest(http.MethodGet, e.svc+"/verify", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// jwtClaims decodes the payload of a JWT without checking it.
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// TestOIDC_CodeFlow drives `authsvc dev` with go-oidc and x/oauth2 as an
// OpenID Connect relying party: discovery, code + PKCE + nonce through
// WeChat web authorization, ID token, userinfo, refresh rotation and
// reuse, revocation and RP-initiated logout.
func TestOIDC_CodeFlow(t *testing.T) {
	t.Parallel()
	e := startOIDC(t)
	ctx := context.Background()
	cfg := e.public(oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess)
	_, q, verifier, nonce := e.login(cfg, "oWXEMU_alice")
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token response: %+v", tok)
	}

	// ID token: signature (JWKS), iss, aud, exp, nonce, at_hash, amr.
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: "h5-demo"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var idc struct {
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
		SID      string   `json:"sid"`
	}
	idt.Claims(&idc)
	if len(idc.AMR) != 1 || idc.AMR[0] != "wechat_oauth" || idc.AuthTime == 0 || idc.SID == "" {
		t.Errorf("id token claims %+v", idc)
	}

	// The access token is today's JWT plus client_id: /verify accepts it.
	ac := jwtClaims(t, tok.AccessToken)
	if ac["client_id"] != "h5-demo" || ac["aud"].([]any)[0] != "wxauth" || ac["openid"] != "oWXEMU_alice" || ac["sub"] != idt.Subject {
		t.Errorf("access token claims %v", ac)
	}
	if st := e.verify(tok.AccessToken); st != http.StatusOK {
		t.Errorf("/verify: %d", st)
	}

	// Userinfo: profile claims.
	ui, err := e.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uic map[string]any
	ui.Claims(&uic)
	if ui.Subject != idt.Subject || uic["nickname"] != "Alice 爱丽丝" || uic["openid"] != "oWXEMU_alice" || uic["unionid"] != "uWXEMU_alice" {
		t.Errorf("userinfo %v", uic)
	}

	// Refresh rotates; the old refresh token reused revokes the family.
	old := tok.RefreshToken
	tok2, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == old || tok2.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", tok2)
	}
	if jwtClaims(t, tok2.AccessToken)["client_id"] != "h5-demo" {
		t.Errorf("refreshed access token lacks client_id")
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("reused refresh token: %v", err)
	}
	if st := e.verify(tok2.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("/verify after refresh-token reuse: %d, want 401", st)
	}

	// Revocation (RFC 7009) of a refresh token ends its login.
	_, q, verifier, _ = e.login(cfg, "oWXEMU_bob")
	tok3, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(e.svc+"/oauth/revoke", url.Values{"token": {tok3.RefreshToken}, "client_id": {"h5-demo"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	resp.Body.Close()
	if st := e.verify(tok3.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("/verify after revocation: %d", st)
	}

	// RP-Initiated Logout with id_token_hint and a registered
	// post_logout_redirect_uri.
	b, q, verifier, _ := e.login(cfg, "oWXEMU_alice")
	tok4, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.Get(e.svc + "/logout?" + url.Values{"id_token_hint": {tok4.Extra("id_token").(string)},
		"post_logout_redirect_uri": {e.h5 + "/"}, "state": {"bye"}}.Encode())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != e.h5+"/?state=bye" {
		t.Fatalf("logout: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if st := e.verify(tok4.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("/verify after logout: %d", st)
	}
	resp, _ = b.Get(e.svc + "/logout?" + url.Values{"client_id": {"h5-demo"}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("logout to an unregistered uri: %d", resp.StatusCode)
	}

	// No code, verifier or token reached a log line.
	for name, secret := range map[string]string{"code": q.Get("code"), "verifier": verifier, "access token": tok4.AccessToken,
		"refresh token": tok4.RefreshToken, "id token": tok4.Extra("id_token").(string)} {
		if strings.Contains(e.proc.Output(), secret) {
			t.Errorf("the %s is in the log", name)
		}
	}
}

// TestOIDC_DesktopQR: a desktop browser's authorization request gets the
// QR login page; a scan logs it in with a code on the client's
// redirect_uri; the ID token says amr wechat_qr, and sub is the same as the
// person's web authorization.
func TestOIDC_DesktopQR(t *testing.T) {
	t.Parallel()
	e := startOIDC(t)
	ctx := context.Background()
	cfg := e.public(oidc.ScopeOpenID)
	verifier := oauth2.GenerateVerifier()
	d := newDesktop(t)
	resp, body := d.do("GET", cfg.AuthCodeURL("qr", oidc.Nonce("nq"), oauth2.S256ChallengeOption(verifier)), "", "")
	for i := 0; resp.StatusCode == http.StatusFound && i < 3; i++ {
		next, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
		resp, body = d.do("GET", next.String(), "", "")
	}
	m, tk := qrPageIDRE.FindStringSubmatch(body), qrPageTicketRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || tk == nil {
		t.Fatalf("desktop authorization request: %d %s", resp.StatusCode, body)
	}
	id, ticket := m[1], html.UnescapeString(tk[1])
	if code, reply := qrEmuPost(t, e.emu, "/emu/scan", `{"openid":"oWXEMU_alice","ticket":"`+ticket+`"}`); code != http.StatusOK || reply != qrConfirmText {
		t.Fatalf("/emu/scan: %d %q", code, reply)
	}
	resp, body = d.do("GET", e.svc+"/qr/sessions/"+id+"/complete", "", "")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), e.h5+"/?") || loc.Query().Get("state") != "qr" {
		t.Fatalf("complete: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: "h5-demo"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
	}
	idt.Claims(&c)
	if len(c.AMR) != 1 || c.AMR[0] != "wechat_qr" || idt.Nonce != "nq" {
		t.Errorf("amr %v nonce %q", c.AMR, idt.Nonce)
	}
	// The same person inside WeChat: the same sub.
	_, q, v2, _ := e.login(cfg, "oWXEMU_alice")
	tok2, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v2))
	if err != nil {
		t.Fatal(err)
	}
	if sub := jwtClaims(t, tok2.AccessToken)["sub"]; sub != idt.Subject {
		t.Errorf("web authorization sub %v, QR sub %v", sub, idt.Subject)
	}
}

// TestOIDC_ClientCredentialsToProxy: a back end gets an access token from
// the token endpoint (client_credentials, client_secret_post) and calls
// WeChat's API through the proxy with it as a Bearer token.
func TestOIDC_ClientCredentialsToProxy(t *testing.T) {
	t.Parallel()
	svc, _, _ := startProxyPair(t)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {proxySvcSecret}}
	treq, _ := http.NewRequest(http.MethodPost, svc+"/oauth/token", strings.NewReader(form.Encode()))
	treq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := e2e.DoJSON(t, treq, &tok); code != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, svc+"/cgi-bin/user/info?openid=oWXEMU_alice", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	_, r, body := wxDo(t, req)
	if r.code() != 0 || r.OpenID != "oWXEMU_alice" {
		t.Fatalf("proxied user/info with the token endpoint's token: %s", body)
	}
}
