package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

// clientFamily is what a client's login keeps beside its refresh-token
// family, under "family:<sid>" (JSON) for the family's life: the client it
// belongs to and what its ID tokens say.
type clientFamily struct {
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	AuthTime int64    `json:"auth_time"`
	AMR      string   `json:"amr"`
}

// invalidClient is RFC 6749's invalid_client, 401. It never says whether
// the client is unknown or the secret wrong.
func invalidClient() error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized)
}

// VerifyClient authenticates the client of a token, revocation or
// introspection request ([op.Server]): a confidential client by
// client_secret_basic or client_secret_post, a public one by its client_id
// alone (no secret may be sent). Errors: invalid_client (401).
func (s *Service) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	cc := r.Data
	if cc.ClientAssertion != "" {
		return nil, op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client assertions are not supported"), http.StatusUnauthorized)
	}
	c, ok := s.cfg.Clients.Lookup(cc.ClientID)
	if !ok {
		return nil, invalidClient()
	}
	if c.Public {
		if cc.ClientSecret != "" {
			return nil, invalidClient()
		}
		return &opClient{c: c}, nil
	}
	var err error
	if c, err = s.cfg.Clients.Authenticate(cc.ClientID, cc.ClientSecret); err != nil {
		return nil, invalidClient()
	}
	return &opClient{c: c}, nil
}

// CodeExchange redeems an authorization code (grant_type=authorization_code,
// [op.Server]). The code must be live (CodeTTL), issued to this client for
// this exact redirect_uri, and match the PKCE code_verifier when a
// challenge was sent; it works once: a second redemption revokes the
// tokens the first one issued (RFC 6749 section 4.1.2). Answers the access
// JWT, the ID token, and a refresh token when offline_access was granted.
func (s *Service) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	c := r.Client.(*opClient).c
	h := hashOf(r.Data.Code)
	raw, err := s.cfg.Records.Get(ctx, keyCode+h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.codeReused(ctx, h)
	} else if err != nil {
		return nil, s.serverError(ctx, "load code", err)
	}
	var g grant
	if json.Unmarshal(raw, &g) != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	if g.ClientID != c.ID {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code was issued to another client")
	}
	if r.Data.RedirectURI != g.RedirectURI {
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
	}
	var challenge *oidc.CodeChallenge
	if g.Challenge != "" {
		challenge = &oidc.CodeChallenge{Challenge: g.Challenge, Method: oidc.CodeChallengeMethodS256}
	}
	if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, challenge); err != nil {
		return nil, err
	}
	if _, err := s.cfg.Records.Take(ctx, keyCode+h); errors.Is(err, store.ErrNotFound) {
		// Another redemption won the race: give it a moment to record what
		// it issued, so that this one revokes it.
		s.awaitRecord(ctx, keyCodeUsed+h, 20*duplicatePoll)
		return nil, s.codeReused(ctx, h)
	} else if err != nil {
		return nil, s.serverError(ctx, "take code", err)
	}
	subject := session.Subject{UserID: g.UserID, OpenID: g.OpenID, UnionID: g.UnionID, AppID: s.cfg.AppID,
		Scope: strings.Join(g.Scopes, " "), ClientID: c.ID}
	fam := clientFamily{ClientID: c.ID, Scopes: g.Scopes, AuthTime: g.AuthTime, AMR: g.AMR}
	var t session.Tokens
	if slices.Contains(g.Scopes, oidc.ScopeOfflineAccess) {
		if t, err = s.cfg.Sessions.Issue(ctx, subject); err != nil {
			return nil, s.serverError(ctx, "issue tokens", err)
		}
		// The refresh grant and introspection read who the family is for.
		b, _ := json.Marshal(fam)
		if err := s.cfg.Records.Put(ctx, keyFamily+t.SessionID, b, max(t.RefreshExpires.Sub(s.now()), time.Minute)); err != nil {
			return nil, s.serverError(ctx, "save family", err)
		}
	} else if t, err = s.cfg.Sessions.IssueAccess(ctx, subject); err != nil {
		// No refresh token: nothing to store beyond the code's record.
		return nil, s.serverError(ctx, "issue tokens", err)
	}
	if err := s.cfg.Records.Put(ctx, keyCodeUsed+h, []byte(t.SessionID), codeUsedTTL); err != nil {
		s.log.WarnContext(ctx, "remember redeemed code", "err", err)
	}
	return s.tokenResponse(ctx, c, fam, g.Nonce, t)
}

// codeReused answers a code that is not live: when it was redeemed before,
// the tokens of that redemption are revoked.
func (s *Service) codeReused(ctx context.Context, h string) error {
	sid, err := s.cfg.Records.Get(ctx, keyCodeUsed+h)
	if err == nil && len(sid) > 0 {
		if err := s.cfg.Sessions.RevokeSession(ctx, string(sid)); err != nil {
			return s.serverError(ctx, "revoke reused code", err)
		}
		s.log.WarnContext(ctx, "authorization code reused; its tokens are revoked", "sid", string(sid))
		return oidc.ErrInvalidGrant().WithDescription("the code was already used; the tokens it issued are revoked")
	}
	return oidc.ErrInvalidGrant().WithDescription("unknown or expired code")
}

// RefreshToken rotates a refresh token (grant_type=refresh_token,
// [op.Server]): the token must belong to this client; a token used before
// (outside WXAUTH_REFRESH_GRACE) revokes its whole family. Answers a new
// access JWT, refresh token and ID token.
func (s *Service) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	c := r.Client.(*opClient).c
	var fam clientFamily
	t, err := s.cfg.Sessions.RefreshWith(ctx, r.Data.RefreshToken, func(old store.RefreshToken) (string, error) {
		var err error
		fam, err = s.family(ctx, old.FamilyID)
		if errors.Is(err, store.ErrNotFound) || err == nil && (fam.ClientID != c.ID || !slices.Contains(fam.Scopes, oidc.ScopeOfflineAccess)) {
			return "", oidc.ErrInvalidGrant().WithDescription("invalid refresh token")
		}
		return c.ID, err
	})
	var oe *oidc.Error
	switch {
	case errors.As(err, &oe):
		return nil, err
	case errors.Is(err, session.ErrInvalidRefreshToken), errors.Is(err, session.ErrRefreshTokenReused):
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is invalid, expired, revoked or already used")
	case err != nil:
		return nil, s.serverError(ctx, "refresh", err)
	}
	return s.tokenResponse(ctx, c, fam, "", t)
}

// ClientCredentialsExchange issues an access JWT to a confidential client
// for itself (grant_type=client_credentials, [op.Server]): "sub" and
// "client_id" are the client_id, no openid, no refresh or ID token. The
// scopes asked for must be among the client's.
func (s *Service) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	c := r.Client.(*opClient).c
	for _, sc := range r.Data.Scope {
		if !c.HasScope(sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not registered for this client", sc)
		}
	}
	scope := strings.Join(r.Data.Scope, " ")
	t, err := s.cfg.Sessions.IssueClient(ctx, c.ID, s.cfg.AppID, scope)
	if err != nil {
		return nil, s.serverError(ctx, "issue client token", err)
	}
	return noStore(&oidc.AccessTokenResponse{AccessToken: t.AccessToken, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(t.ExpiresIn), Scope: r.Data.Scope}), nil
}

// tokenResponse is the token endpoint's answer for a user's login.
func (s *Service) tokenResponse(ctx context.Context, c *clients.Client, fam clientFamily, nonce string, t session.Tokens) (*op.Response, error) {
	idt, err := s.idToken(c, fam, nonce, t)
	if err != nil {
		return nil, s.serverError(ctx, "sign id token", err)
	}
	resp := &oidc.AccessTokenResponse{AccessToken: t.AccessToken, TokenType: oidc.BearerToken, ExpiresIn: uint64(t.ExpiresIn),
		IDToken: idt, Scope: fam.Scopes}
	if slices.Contains(fam.Scopes, oidc.ScopeOfflineAccess) {
		resp.RefreshToken = t.RefreshToken
	}
	return noStore(resp), nil
}

// idTokenClaims are the claims of an ID token (OpenID Connect Core 1.0
// section 2): amr names the WeChat way in (AMRWeChatOAuth, AMRWeChatQR),
// sid the login family (what RP-Initiated Logout ends).
type idTokenClaims struct {
	jwt.RegisteredClaims
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce,omitempty"`
	AtHash   string   `json:"at_hash,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AZP      string   `json:"azp,omitempty"`
	SID      string   `json:"sid,omitempty"`
}

// idToken signs the ID token of t for client c with the client's
// id_token_signed_response_alg (else Config.IDTokenAlg).
func (s *Service) idToken(c *clients.Client, fam clientFamily, nonce string, t session.Tokens) (string, error) {
	alg := c.IDTokenAlg
	if alg == "" {
		alg = s.cfg.IDTokenAlg
	}
	atHash, err := oidc.ClaimHash(t.AccessToken, jose.SignatureAlgorithm(alg))
	if err != nil {
		return "", err
	}
	now := s.now().Truncate(time.Second)
	claims := idTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   t.Claims.Subject,
			Audience:  jwt.ClaimStrings{c.ID},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.IDTokenTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
		},
		AuthTime: fam.AuthTime,
		Nonce:    nonce,
		AtHash:   atHash,
		AMR:      []string{fam.AMR},
		AZP:      c.ID,
		SID:      t.SessionID,
	}
	return s.cfg.Sessions.SignJWT(alg, claims)
}

// serverError logs err (never a secret: store and signing errors carry
// none) and answers server_error without its detail.
func (s *Service) serverError(ctx context.Context, step string, err error) error {
	if errors.Is(err, store.ErrUnavailable) || wechat.Temporary(err) {
		s.log.WarnContext(ctx, "unavailable", "step", step, "err", err)
		e := &oidc.Error{ErrorType: "temporarily_unavailable", Description: "temporarily unavailable, retry"}
		return op.NewStatusError(e, http.StatusServiceUnavailable)
	}
	s.log.ErrorContext(ctx, "oidc request failed", "step", step, "err", err)
	return op.NewStatusError(oidc.ErrServerError().WithDescription("internal error"), http.StatusInternalServerError)
}

// noStore wraps a token response with Cache-Control: no-store (RFC 6749
// section 5.1).
func noStore(data any) *op.Response {
	resp := op.NewResponse(data)
	resp.Header = http.Header{"Cache-Control": {"no-store"}, "Pragma": {"no-cache"}}
	return resp
}

// ClientLogin reports whether the login sid was made through the
// authorization endpoint for an OpenID client: its refresh tokens belong to
// that client and are redeemed at the token endpoint only, never at the
// first-party /session/refresh. Errors: the records store's (wrapped).
func (s *Service) ClientLogin(ctx context.Context, sid string) (bool, error) {
	_, err := s.family(ctx, sid)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("login: read the login's client: %w", err)
}

// family reads who the login sid is for (the client, its scopes, auth_time,
// amr), written when a client redeemed its code with offline_access.
// Errors: store.ErrNotFound for no such record (a first-party login, or
// one that ended); the store's; a record that does not decode.
func (s *Service) family(ctx context.Context, sid string) (clientFamily, error) {
	var fam clientFamily
	raw, err := s.cfg.Records.Get(ctx, keyFamily+sid)
	if err != nil {
		return fam, err
	}
	if err := json.Unmarshal(raw, &fam); err != nil {
		return fam, fmt.Errorf("login: family record of %s: %w", sid, err)
	}
	return fam, nil
}

// awaitRecord polls key every duplicatePoll until it exists, ctx ends or
// most has passed.
func (s *Service) awaitRecord(ctx context.Context, key string, most time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, most)
	defer cancel()
	t := time.NewTicker(duplicatePoll)
	defer t.Stop()
	for {
		if _, err := s.cfg.Records.Get(ctx, key); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
