package login

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

// flow is one login in progress, kept under "state:<state>" for each WeChat
// leg it starts (JSON). ClientID empty is a first-party cookie login.
type flow struct {
	ClientID    string   `json:"client_id,omitempty"`
	RedirectURI string   `json:"redirect_uri,omitempty"`
	State       string   `json:"state,omitempty"` // the client's state, returned as is
	Nonce       string   `json:"nonce,omitempty"`
	Challenge   string   `json:"code_challenge,omitempty"` // PKCE S256; empty for a confidential client without PKCE
	Scopes      []string `json:"scopes,omitempty"`         // granted OIDC scopes
	Redirect    string   `json:"redirect,omitempty"`       // cookie mode: the allowlisted page to return to
	WeChatScope string   `json:"wechat_scope"`             // snsapi_base or snsapi_userinfo
	Restarts    int      `json:"restarts,omitempty"`       // transparent restarts so far (<= maxRestarts)
	// AutoScope marks a cookie login that asked for no scope: it starts
	// with a silent snsapi_base and is upgraded to snsapi_userinfo in the
	// callback only when the user's profile is missing or older than
	// ProfileMaxAge.
	AutoScope bool `json:"auto_scope,omitempty"`
}

// oidcMode reports whether f answers a client (else it sets the cookie).
func (f *flow) oidcMode() bool { return f.ClientID != "" }

// identity is who logged in and how: what a code grants and what the
// wxauth_browser cookie remembers (JSON).
type identity struct {
	UserID      string `json:"uid"`
	OpenID      string `json:"oid"`
	UnionID     string `json:"uni,omitempty"`
	WeChatScope string `json:"ws"`  // the WeChat scope granted
	AuthTime    int64  `json:"at"`  // unix seconds of the WeChat authentication
	AMR         string `json:"amr"` // AMRWeChatOAuth or AMRWeChatQR
}

// inWeChat reports whether the User-Agent is WeChat's in-app browser.
func inWeChat(h http.Header) bool { return strings.Contains(h.Get("User-Agent"), "MicroMessenger") }

// inWeChat reports whether a request with header h comes from WeChat's
// in-app browser: its User-Agent, or (authsvc dev only)
// Config.InsideWeChatCookie set to "1".
func (s *Service) inWeChat(h http.Header) bool {
	if inWeChat(h) {
		return true
	}
	if s.cfg.InsideWeChatCookie == "" {
		return false
	}
	c, err := (&http.Request{Header: h}).Cookie(s.cfg.InsideWeChatCookie)
	return err == nil && c.Value == "1"
}

// VerifyAuthRequest looks up the client of an authorization request
// ([op.Server]). Errors (answered as a page, never a redirect):
// invalid_request for a missing or unknown client_id or a request object.
func (s *Service) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	if r.Data.RequestParam != "" {
		return nil, oidc.ErrRequestNotSupported().WithDescription("request objects are not supported")
	}
	if r.Data.ClientID == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("client_id is required")
	}
	c, ok := s.client(r.Data.ClientID)
	if !ok {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown client_id")
	}
	if !c.c.HasGrant(clients.GrantAuthorizationCode) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use the authorization code grant")
	}
	return &op.ClientRequest[oidc.AuthRequest]{Request: r, Client: c}, nil
}

// Authorize runs the login step of a validated authorization request
// ([op.Server]; op has checked the client, the exact redirect_uri, prompt,
// response_type=code). It checks PKCE (S256, required for public clients)
// and the scopes, then answers from the browser's wxauth login when one
// suffices, or starts WeChat: web authorization inside WeChat, the QR page
// on a desktop browser. Errors are answered on the redirect_uri.
func (s *Service) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	c := r.Client.(*opClient).c
	a := r.Data
	if a.ResponseMode != "" && a.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode must be query")
	}
	switch {
	case a.CodeChallenge == "" && c.Public:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required: public clients must use PKCE with S256")
	case a.CodeChallenge != "" && a.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256 (plain is refused)")
	}
	scopes, wscope, err := grantScopes(c, a.Scopes)
	if err != nil {
		return nil, err
	}
	f := flow{ClientID: c.ID, RedirectURI: a.RedirectURI, State: a.State, Nonce: a.Nonce, Challenge: a.CodeChallenge,
		Scopes: scopes, WeChatScope: wscope}
	hr := &http.Request{Header: r.Header}
	fresh := slices.Contains(a.Prompt, oidc.PromptLogin) || (a.MaxAge != nil && *a.MaxAge == 0)
	if !fresh {
		if id, ok := s.browser(hr); ok && s.suffices(id, wscope, a.MaxAge) {
			u, err := s.issueCode(ctx, f, id)
			if err != nil {
				s.log.WarnContext(ctx, "issue code", "err", err)
				return nil, oidc.ErrServerError().WithDescription("could not issue the code")
			}
			return &op.Redirect{URL: u, Header: noStoreHeader()}, nil
		}
	}
	hw := headerWriter(noStoreHeader())
	if slices.Contains(a.Prompt, oidc.PromptNone) {
		if !s.inWeChat(r.Header) || wscope != wechat.ScopeBase {
			return nil, oidc.ErrLoginRequired().WithDescription("a WeChat login with a page is needed")
		}
		// Inside WeChat snsapi_base is silent: no page is shown.
	} else if s.cfg.QR && !s.inWeChat(r.Header) {
		handle, err := s.saveFlow(ctx, f)
		if err != nil {
			s.log.WarnContext(ctx, "save flow", "err", err)
			return nil, oidc.ErrServerError().WithDescription("could not save the login")
		}
		return &op.Redirect{URL: s.cfg.PublicURL + PathAuthorize + "/qr?flow=" + handle, Header: noStoreHeader()}, nil
	}
	u, _, err := s.startWeChat(ctx, hw, f)
	if err != nil {
		s.log.WarnContext(ctx, "start wechat login", "err", err)
		return nil, oidc.ErrServerError().WithDescription("could not start the WeChat login")
	}
	return &op.Redirect{URL: u, Header: hw.Header()}, nil
}

// grantScopes maps the requested scopes (op has dropped those the client
// may not use) to the granted OIDC scopes and the WeChat scope: openid is
// required; snsapi_base means openid, snsapi_userinfo openid and profile;
// profile needs snsapi_userinfo; offline_access needs the refresh_token
// grant; email, phone and address are ignored.
func grantScopes(c *clients.Client, requested []string) (granted []string, wscope string, err error) {
	has := map[string]bool{}
	for _, sc := range requested {
		if !c.HasScope(sc) {
			continue
		}
		switch sc {
		case clients.ScopeSnsapiBase:
			has[oidc.ScopeOpenID] = true
		case clients.ScopeSnsapiUserinfo:
			has[oidc.ScopeOpenID], has[oidc.ScopeProfile] = true, true
		case oidc.ScopeOfflineAccess:
			has[sc] = c.HasGrant(clients.GrantRefreshToken)
		default:
			has[sc] = true
		}
	}
	if !has[oidc.ScopeOpenID] {
		return nil, "", oidc.ErrInvalidScope().WithDescription("scope must include openid (or snsapi_base, snsapi_userinfo)")
	}
	for _, sc := range []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeOfflineAccess} {
		if has[sc] {
			granted = append(granted, sc)
		}
	}
	wscope = wechat.ScopeBase
	if has[oidc.ScopeProfile] {
		wscope = wechat.ScopeUserInfo
	}
	return granted, wscope, nil
}

// suffices reports whether a browser login id answers a request for
// wscope without WeChat: the profile scope needs a snsapi_userinfo login,
// and max_age (seconds) bounds its age.
func (s *Service) suffices(id identity, wscope string, maxAge *uint) bool {
	if wscope == wechat.ScopeUserInfo && id.WeChatScope != wechat.ScopeUserInfo {
		return false
	}
	if maxAge != nil && s.now().Unix()-id.AuthTime > int64(*maxAge) {
		return false
	}
	return true
}

// browser returns who logged in through the authorization endpoint in
// this browser (cookie wxauth_browser), if anyone.
func (s *Service) browser(r *http.Request) (identity, bool) {
	var id identity
	v, ok := s.cfg.Cookies.Browser(r)
	if !ok || json.Unmarshal([]byte(v), &id) != nil || id.UserID == "" {
		return id, false
	}
	return id, true
}

// startWeChat saves f under a new state, binds the state to the browser
// (cookie wxauth_state on w) and returns WeChat's authorize URL and the
// state.
func (s *Service) startWeChat(ctx context.Context, w http.ResponseWriter, f flow) (authURL, state string, err error) {
	if state, err = s.saveFlow(ctx, f); err != nil {
		return "", "", err
	}
	u, err := s.cfg.WeChat.AuthCodeURL(s.cfg.PublicURL+PathCallback, f.WeChatScope, state)
	if err != nil {
		return "", "", fmt.Errorf("login: authorize url: %w", err)
	}
	s.cfg.Cookies.SetState(w, state, s.cfg.StateTTL)
	return u, state, nil
}

// saveFlow keeps f under a fresh handle, a state record: startWeChat's
// state, or for the QR way in a handle no WeChat callback can be bound to
// (no cookie names it). Errors: the store's, wrapped.
func (s *Service) saveFlow(ctx context.Context, f flow) (string, error) {
	handle := store.RandomBase62(22)
	b, _ := json.Marshal(f)
	if err := s.cfg.Records.Put(ctx, keyState+handle, b, s.cfg.StateTTL); err != nil {
		return "", fmt.Errorf("login: save flow: %w", err)
	}
	return handle, nil
}

// grant is what an authorization code stands for, under "code:<sha256>".
type grant struct {
	ClientID    string   `json:"client_id"`
	RedirectURI string   `json:"redirect_uri"`
	Challenge   string   `json:"code_challenge,omitempty"`
	Nonce       string   `json:"nonce,omitempty"`
	Scopes      []string `json:"scopes"`
	identity
}

// issueCode creates a one-time authorization code for f and id, valid for
// CodeTTL, and returns the client's redirect_uri carrying it and state.
func (s *Service) issueCode(ctx context.Context, f flow, id identity) (string, error) {
	code := randomToken()
	b, _ := json.Marshal(grant{ClientID: f.ClientID, RedirectURI: f.RedirectURI, Challenge: f.Challenge, Nonce: f.Nonce,
		Scopes: f.Scopes, identity: id})
	if err := s.cfg.Records.Put(ctx, keyCode+hashOf(code), b, s.cfg.CodeTTL); err != nil {
		return "", fmt.Errorf("login: save code: %w", err)
	}
	v := url.Values{"code": {code}}
	if f.State != "" {
		v.Set("state", f.State)
	}
	return withQuery(f.RedirectURI, v), nil
}

// errorURL is the client's redirect_uri carrying an OAuth error and state.
func errorURL(f flow, code, description string) string {
	v := url.Values{"error": {code}, "error_description": {description}}
	if f.State != "" {
		v.Set("state", f.State)
	}
	return withQuery(f.RedirectURI, v)
}

// withQuery adds v to the query of the absolute URL u (which has no
// fragment: the registry refuses one).
func withQuery(u string, v url.Values) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + v.Encode()
}

// noStoreHeader is the header of every redirect of the authorization
// endpoint: not cached, and no Referer to the next site.
func noStoreHeader() http.Header {
	return http.Header{"Cache-Control": {"no-store"}, "Referrer-Policy": {"no-referrer"}}
}

// headerWriter collects the headers (cookies) of a response that op
// writes: the Redirect of [Service.Authorize].
type headerWriter http.Header

func (h headerWriter) Header() http.Header         { return http.Header(h) }
func (h headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (h headerWriter) WriteHeader(int)             {}
