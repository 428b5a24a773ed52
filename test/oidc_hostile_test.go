package test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestOIDC_Hostile: what a thief of a callback URL, a code or a client id
// can do gives him nothing.
func TestOIDC_Hostile(t *testing.T) {
	t.Parallel()
	e := startOIDC(t)
	ctx := context.Background()
	cfg := e.public(oidc.ScopeOpenID, oidc.ScopeOfflineAccess)

	t.Run("StolenCallbackURL", func(t *testing.T) {
		// The attacker authorizes as himself and stops at WeChat's
		// redirect; a victim's browser opening that URL is not logged in
		// as him and gets no code: it is sent to a fresh, bound WeChat
		// authorization.
		attacker := newBrowser(t)
		verifier := oauth2.GenerateVerifier()
		_, cb := attacker.toClient(cfg.AuthCodeURL("st", oidc.Nonce("n"), oauth2.S256ChallengeOption(verifier)), "oWXEMU_bob", e.svc+"/oauth/callback?")
		victim := newBrowser(t)
		resp, _ := victim.Get(cb)
		if resp.StatusCode != http.StatusFound || strings.HasPrefix(resp.Header.Get("Location"), e.h5) || strings.Contains(resp.Header.Get("Location"), "code=") {
			t.Fatalf("stolen callback in the victim's browser: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(resp.Header.Get("Location"), "/connect/oauth2/authorize?") {
			t.Errorf("not restarted through WeChat: %s", resp.Header.Get("Location"))
		}
	})

	t.Run("ReplayedCallback", func(t *testing.T) {
		// A callback URL already used by its browser, replayed from
		// another browser, gets neither the code nor a session.
		b := newBrowser(t)
		verifier := oauth2.GenerateVerifier()
		final, cb := b.toClient(cfg.AuthCodeURL("rp", oidc.Nonce("n"), oauth2.S256ChallengeOption(verifier)), "oWXEMU_alice", e.h5)
		other := newBrowser(t)
		resp, _ := other.Get(cb)
		if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && (strings.HasPrefix(loc, e.h5) || loc == final) {
			t.Fatalf("replayed callback gave the code: %s", loc)
		}
		for _, ck := range resp.Cookies() {
			if ck.Name == "wxauth_session" || ck.Name == "wxauth_browser" {
				t.Errorf("replayed callback set %s", ck.Name)
			}
		}
		// The same browser's duplicate (WeChat calling twice) lands on the
		// same answer.
		resp, _ = b.Get(cb)
		if resp.Header.Get("Location") != final {
			t.Errorf("duplicate callback: %s, want %s", resp.Header.Get("Location"), final)
		}
	})

	t.Run("CodeWithoutVerifier", func(t *testing.T) {
		_, q, verifier, _ := e.login(cfg, "oWXEMU_bob")
		if _, err := cfg.Exchange(ctx, q.Get("code")); err == nil {
			t.Fatal("code without verifier accepted")
		}
		if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Fatal("code with the wrong verifier accepted")
		}
		if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("the owner's exchange after the failed attempts: %v", err)
		}
	})

	t.Run("ReusedCodeRevokes", func(t *testing.T) {
		_, q, verifier, _ := e.login(cfg, "oWXEMU_bob")
		tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("reused code: %v", err)
		}
		if st := e.verify(tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("/verify of the first redemption's token: %d, want 401", st)
		}
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Errorf("refresh token of a reused code still works")
		}
	})

	t.Run("WrongRedirectURIAtToken", func(t *testing.T) {
		_, q, verifier, _ := e.login(cfg, "oWXEMU_bob")
		other := *cfg
		other.RedirectURL = e.h5 + "/index.html"
		if _, err := other.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("wrong redirect_uri: %v", err)
		}
	})

	t.Run("WrongRedirectURIAtAuthorize", func(t *testing.T) {
		other := *cfg
		other.RedirectURL = "https://evil.example/cb"
		resp, body := newBrowser(t).Get(other.AuthCodeURL("x", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "<html") && !strings.Contains(body, "<!doctype") {
			t.Fatalf("unregistered redirect_uri: %d %s %.200s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})

	t.Run("PlainPKCERefused", func(t *testing.T) {
		u := cfg.AuthCodeURL("pl", oauth2.SetAuthURLParam("code_challenge", "abcdefghijklmnopqrstuvwxyz0123456789abcdefgh"),
			oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		resp, _ := newBrowser(t).Get(u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "pl" {
			t.Fatalf("plain PKCE: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = newBrowser(t).Get(cfg.AuthCodeURL("np"))
		if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("public client without PKCE: %s", resp.Header.Get("Location"))
		}
	})

	t.Run("ClientCredentials", func(t *testing.T) {
		cc := e.confidential()
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest(http.MethodPost, cc.Endpoint.TokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("demo-backend", e.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			AccessToken string `json:"access_token"`
			IDToken     string `json:"id_token"`
			Refresh     string `json:"refresh_token"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || out.AccessToken == "" || out.IDToken != "" || out.Refresh != "" {
			t.Fatalf("client_credentials: %d %+v", resp.StatusCode, out)
		}
		c := jwtClaims(t, out.AccessToken)
		if c["sub"] != "demo-backend" || c["client_id"] != "demo-backend" || c["openid"] != nil {
			t.Errorf("client_credentials claims %v", c)
		}
		if st := e.verify(out.AccessToken); st != http.StatusOK {
			t.Errorf("/verify of a client token: %d", st)
		}
		// Wrong secret, and a public client: refused.
		req, _ = http.NewRequest(http.MethodPost, cc.Endpoint.TokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("demo-backend", "wrong-secret-0123456789")
		if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("wrong secret: %d", resp.StatusCode)
		}
		resp, _ = http.PostForm(cc.Endpoint.TokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {"h5-demo"}})
		if resp.StatusCode == http.StatusOK {
			t.Errorf("public client got a client_credentials token")
		}
	})

	t.Run("ConfidentialCodeFlow", func(t *testing.T) {
		cc := e.confidential(oidc.ScopeOpenID, "profile")
		_, q, verifier, _ := e.login(cc, "oWXEMU_alice")
		tok, err := cc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("confidential exchange: %v", err)
		}
		if tok.RefreshToken != "" {
			t.Errorf("refresh token without offline_access")
		}
		if _, err := e.provider.Verifier(&oidc.Config{ClientID: "demo-backend"}).Verify(ctx, tok.Extra("id_token").(string)); err != nil {
			t.Errorf("id token: %v", err)
		}
	})
}
