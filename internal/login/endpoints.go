package login

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// Discovery answers GET /.well-known/openid-configuration ([op.Server]).
func (s *Service) Discovery(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	return op.NewResponse(s.disco), nil
}

// discovery is the OpenID Provider metadata, also served as RFC 8414
// authorization server metadata: only what the endpoints do.
func (s *Service) discovery() map[string]any {
	u := s.cfg.PublicURL
	return map[string]any{
		"issuer":                                        s.cfg.Issuer,
		"authorization_endpoint":                        u + PathAuthorize,
		"token_endpoint":                                u + PathToken,
		"userinfo_endpoint":                             u + PathUserInfo,
		"jwks_uri":                                      u + PathJWKS,
		"revocation_endpoint":                           u + PathRevoke,
		"introspection_endpoint":                        u + PathIntrospect,
		"end_session_endpoint":                          u + PathLogout,
		"scopes_supported":                              clients.KnownScopes(),
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         s.cfg.Sessions.Algs(),
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":              []string{"S256"},
		"prompt_values_supported":                       []string{"none", "login"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr", "azp", "sid",
			"name", "nickname", "picture", "openid", "unionid", "sex", "province", "city", "country", "privilege"},
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     false,
		"frontchannel_logout_supported":                  false,
		"backchannel_logout_supported":                   false,
		"ui_locales_supported":                           []string{"zh-CN", "en"},
		"authorization_response_iss_parameter_supported": false,
	}
}

// Metadata serves the discovery document (GET
// /.well-known/openid-configuration and RFC 8414's
// /.well-known/oauth-authorization-server), cacheable for an hour.
func (s *Service) Metadata() http.Handler {
	b, _ := json.Marshal(s.disco)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Access-Control-Allow-Origin", "*")
		w.Write(b)
	})
}

// UserInfo answers GET|POST /userinfo ([op.Server]) for a valid access JWT
// of a user: "sub", and with the profile scope (or a first-party
// snsapi_userinfo login) name, nickname, picture and WeChat's sns/userinfo
// fields openid, unionid, sex, province, city, country, privilege. Errors:
// invalid_token (401).
func (s *Service) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	info, err := s.userInfo(ctx, r.Data.AccessToken)
	if errors.Is(err, errInvalidToken) {
		// RFC 6750 section 3.1: invalid_token, 401.
		return nil, op.NewStatusError(&oidc.Error{ErrorType: "invalid_token",
			Description: "the access token is invalid, expired, revoked or names no user"}, http.StatusUnauthorized)
	} else if err != nil {
		return nil, s.serverError(ctx, "userinfo", err)
	}
	resp := op.NewResponse(info)
	resp.Header = http.Header{"Cache-Control": {"no-store"}}
	return resp, nil
}

// errInvalidToken is userInfo's answer for a token that does not name a
// live user.
var errInvalidToken = errors.New("login: invalid token")

// userInfo builds the claims of /userinfo (and /me). Errors:
// errInvalidToken; a store error.
func (s *Service) userInfo(ctx context.Context, token string) (map[string]any, error) {
	c, err := s.cfg.Sessions.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		return nil, errInvalidToken
	}
	if c.OpenID == "" { // a client_credentials token names no user
		return nil, errInvalidToken
	}
	u, err := s.cfg.Users.GetUser(ctx, c.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken
	} else if err != nil {
		return nil, err
	}
	out := map[string]any{"sub": u.ID}
	scopes := strings.Fields(c.Scope)
	legacy := !slices.Contains(scopes, oidc.ScopeOpenID) // a first-party login's token: snsapi_*
	if slices.Contains(scopes, oidc.ScopeProfile) || legacy {
		priv := u.Privilege
		if priv == nil {
			priv = []string{}
		}
		out["name"], out["nickname"], out["picture"] = u.Nickname, u.Nickname, u.HeadImgURL
		out["openid"], out["sex"], out["province"], out["city"], out["country"], out["privilege"] =
			c.OpenID, u.Sex, u.Province, u.City, u.Country, priv
		out["headimgurl"], out["updated_at"] = u.HeadImgURL, u.UpdatedAt.Unix()
		if u.UnionID != "" {
			out["unionid"] = u.UnionID
		}
	}
	out["scope"] = c.Scope
	return out, nil
}

// Me serves GET /me, the alias of /userinfo: a Bearer access JWT, JSON
// claims, or {"error":"invalid_token"} with 401.
func (s *Service) Me() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.Header.Get("Authorization")
		if len(raw) < 8 || !strings.EqualFold(raw[:7], "bearer ") {
			writeJSONError(w, http.StatusUnauthorized, "invalid_token", "a Bearer access token is required")
			return
		}
		info, err := s.userInfo(r.Context(), raw[7:])
		if errors.Is(err, errInvalidToken) {
			writeJSONError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
			return
		} else if err != nil {
			s.log.WarnContext(r.Context(), "me", "err", err)
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "retry")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(info)
	})
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// Introspect answers POST /oauth/introspect (RFC 7662, [op.Server]) for a
// confidential client: {"active":true, ...claims} for a live access JWT or
// refresh token of any client, {"active":false} otherwise.
func (s *Service) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	cc := r.Data.ClientCredentials
	// Authenticate refuses public clients too (ErrUnknownClient).
	if _, err := s.cfg.Clients.Authenticate(cc.ClientID, cc.ClientSecret); err != nil {
		return nil, invalidClient()
	}
	resp := &oidc.IntrospectionResponse{}
	token := r.Data.Token
	if c, err := s.cfg.Sessions.Verify(ctx, token); err == nil {
		resp.Active, resp.Subject, resp.ClientID, resp.TokenType = true, c.Subject, c.ClientID, oidc.BearerToken
		resp.Scope = strings.Fields(c.Scope)
		resp.Issuer, resp.JWTID, resp.Audience = c.Issuer, c.ID, oidc.Audience(c.Audience)
		resp.Expiration, resp.IssuedAt, resp.NotBefore = oidc.FromTime(c.ExpiresAt.Time), oidc.FromTime(c.IssuedAt.Time), oidc.FromTime(c.NotBefore.Time)
		if c.OpenID != "" {
			resp.Claims = map[string]any{"openid": c.OpenID, "sid": c.SessionID}
		}
	} else if rt, err := s.cfg.Sessions.LookupRefresh(ctx, token); err == nil && rt.UsedAt.IsZero() {
		if fam, err := s.family(ctx, rt.FamilyID); err == nil {
			resp.Active, resp.Subject, resp.ClientID, resp.TokenType = true, rt.UserID, fam.ClientID, "refresh_token"
			resp.Scope, resp.Expiration = fam.Scopes, oidc.FromTime(rt.ExpiresAt)
		}
	}
	return noStore(resp), nil
}

// Revocation answers POST /oauth/revoke (RFC 7009, [op.Server]): a refresh
// token or access JWT of the authenticated client ends its whole login
// family (every token of it). Unknown tokens and other clients' tokens are
// answered 200 too, and left alone.
func (s *Service) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	c := r.Client.(*opClient).c
	token := r.Data.Token
	sid := ""
	if r.Data.TokenTypeHint != "access_token" {
		if rt, err := s.cfg.Sessions.LookupRefresh(ctx, token); err == nil {
			if fam, err := s.family(ctx, rt.FamilyID); err == nil && fam.ClientID == c.ID {
				sid = rt.FamilyID
			}
		}
	}
	if sid == "" {
		if cl, err := s.cfg.Sessions.Verify(ctx, token); err == nil && cl.ClientID == c.ID {
			sid = cl.SessionID
		}
	}
	if sid != "" {
		if err := s.cfg.Sessions.RevokeSession(ctx, sid); err != nil {
			return nil, s.serverError(ctx, "revoke", err)
		}
	}
	return noStore(struct{}{}), nil
}

// Logout serves GET|POST /logout, OpenID Connect RP-Initiated Logout 1.0:
// id_token_hint (an ID token of this issuer, expired or not) ends that
// login family; client_id, a registered post_logout_redirect_uri and state
// send the browser back; without one a page says the user is signed out.
// The browser's wxauth cookies (browser login, session, refresh) are
// cleared, and a live wxauth_session's family is ended too.
func (s *Service) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if err := r.ParseForm(); err != nil {
			s.cfg.Pages.Problem(w, r, problemBadRequest)
			return
		}
		hint, clientID := r.Form.Get("id_token_hint"), r.Form.Get("client_id")
		back, state := r.Form.Get("post_logout_redirect_uri"), r.Form.Get("state")
		var sids []string
		if hint != "" {
			var c idTokenClaims
			if err := s.cfg.Sessions.ParseJWT(hint, &c); err != nil || c.Issuer != s.cfg.Issuer || len(c.Audience) == 0 {
				p := problemBadRequest
				p.Message, p.MessageZh = "The id_token_hint is not an ID token of this service.", "id_token_hint 不是本服务签发的 ID Token。"
				s.cfg.Pages.Problem(w, r, p)
				return
			}
			if clientID == "" {
				clientID = c.Audience[0]
			} else if !slices.Contains(c.Audience, clientID) {
				p := problemBadRequest
				p.Message, p.MessageZh = "client_id does not match the id_token_hint.", "client_id 与 id_token_hint 不符。"
				s.cfg.Pages.Problem(w, r, p)
				return
			}
			if c.SID != "" {
				sids = append(sids, c.SID)
			}
		}
		if back != "" {
			cl, ok := s.cfg.Clients.Lookup(clientID)
			if !ok || !cl.HasPostLogoutRedirectURI(back) {
				p := problemBadRequest
				p.Message, p.MessageZh = "post_logout_redirect_uri is not registered for this client.", "post_logout_redirect_uri 未在该客户端登记。"
				s.cfg.Pages.Problem(w, r, p)
				return
			}
		}
		if hint == "" && !s.confirmedLogout(r) {
			// RP-Initiated Logout 1.0, section 2: without an id_token_hint
			// the OP must ask the user; a page of another site cannot log
			// the user out by a link or a form of its own.
			s.cfg.Pages.Problem(w, r, s.logoutQuestion(clientID, back, state))
			return
		}
		if raw, ok := s.cfg.Cookies.Session(r); ok {
			if c, err := s.cfg.Sessions.Verify(ctx, raw); err == nil {
				sids = append(sids, c.SessionID)
			}
		}
		for _, sid := range sids {
			if err := s.cfg.Sessions.RevokeSession(ctx, sid); err != nil {
				s.cfg.Pages.Problem(w, r, s.cfg.Pages.FromError(ctx, "logout", err))
				return
			}
		}
		s.cfg.Cookies.ClearBrowser(w)
		s.cfg.Cookies.ClearSession(w)
		s.cfg.Cookies.ClearRefresh(w)
		w.Header().Set("Cache-Control", "no-store")
		if back != "" {
			if state != "" {
				back = withQuery(back, url.Values{"state": {state}})
			}
			http.Redirect(w, r, back, http.StatusFound)
			return
		}
		s.cfg.Pages.Problem(w, r, Problem{Status: http.StatusOK, Code: "signed_out", Title: "Signed out", TitleZh: "已退出登录",
			Message: "You are signed out. You may close this page.", MessageZh: "您已退出登录，可以关闭此页面。"})
	})
}

// confirmedLogout reports whether r is the answer to the logout question
// ([Service.logoutQuestion]): a POST with confirm=1 whose Origin (or, when a
// browser sends none, Referer) is this service's own page.
func (s *Service) confirmedLogout(r *http.Request) bool {
	if r.Method != http.MethodPost || r.PostForm.Get("confirm") != "1" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		return o == s.origin
	}
	ref := r.Header.Get("Referer")
	return ref != "" && strings.HasPrefix(ref, s.cfg.PublicURL+"/")
}

// logoutQuestion is the page that asks whether to log out, with the
// request's client_id, post_logout_redirect_uri and state carried into the
// answer.
func (s *Service) logoutQuestion(clientID, back, state string) Problem {
	fields := []Field{{"confirm", "1"}}
	for _, f := range []Field{{"client_id", clientID}, {"post_logout_redirect_uri", back}, {"state", state}} {
		if f.Value != "" {
			fields = append(fields, f)
		}
	}
	return Problem{Status: http.StatusOK, Code: "logout_confirmation", Title: "Log out?", TitleZh: "退出登录？",
		Message:   "You will be logged out of this service in this browser.",
		MessageZh: "您将在此浏览器中退出本服务的登录。",
		Confirm:   &Confirm{Action: s.cfg.PublicURL + "/logout", Fields: fields, Label: "Log out", LabelZh: "退出登录"}}
}

// Login serves the authorization endpoint, GET and POST /login: with a
// client_id, the OpenID Connect authorization request (op parses and
// validates it, [Service.Authorize] runs the login); without one, the
// first-party cookie login GET /login?redirect=R[&scope=S]. Errors that
// cannot go back to a client's redirect_uri are the H5 page.
func (s *Service) Login() http.Handler {
	cookie := s.cookieLogin()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				s.cfg.Pages.Problem(w, r, problemBadRequest)
				return
			}
		}
		if r.FormValue("client_id") == "" && r.FormValue("redirect") != "" {
			cookie.ServeHTTP(w, r)
			return
		}
		bw := &bufferedError{ResponseWriter: w}
		s.handler.ServeHTTP(bw, r)
		if bw.status >= 400 {
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			json.Unmarshal(bw.buf.Bytes(), &e)
			p := problemBadRequest
			if bw.status >= 500 {
				p = Problem{Status: bw.status, Code: "server_error", Title: "Something went wrong", TitleZh: "出错了"}
			}
			p.Code = e.Error
			p.Message = "The login request was refused: " + e.Description + "."
			p.MessageZh = "登录请求无效：" + e.Description + "。"
			s.cfg.Pages.Problem(w, r, p)
		}
	})
}

// bufferedError passes a response through unless its status is >= 400, in
// which case it keeps the body for [Service.Authorize] to render as a page.
type bufferedError struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (b *bufferedError) WriteHeader(code int) {
	b.status = code
	if code < 400 {
		b.ResponseWriter.WriteHeader(code)
	}
}

func (b *bufferedError) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.WriteHeader(http.StatusOK)
	}
	if b.status >= 400 {
		if b.buf.Len() < 4<<10 {
			b.buf.Write(p)
		}
		return len(p), nil
	}
	return b.ResponseWriter.Write(p)
}

// cookieLogin is GET /login?redirect=R[&scope=S] without client_id: the
// first-party login of same-site pages. R must pass WXAUTH_ALLOWED_REDIRECTS;
// S is snsapi_base, snsapi_userinfo or empty (snsapi_base for a returning
// user whose profile is fresh, else snsapi_userinfo). After WeChat the
// browser gets the HttpOnly wxauth_session cookie (domain
// WXAUTH_COOKIE_DOMAIN) and a 302 to R; no token is put in any URL. A
// desktop browser goes to the QR login page when QR login is on.
func (s *Service) cookieLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Allow == nil {
			s.cfg.Pages.Problem(w, r, problemBadRequest)
			return
		}
		target, err := s.cfg.Allow.Check(r.FormValue("redirect"), true)
		if err != nil {
			s.cfg.Pages.Problem(w, r, s.cfg.Pages.RedirectRefused(r.Context(), r.FormValue("redirect"), err))
			return
		}
		if s.cfg.QR && !s.inWeChat(r.Header) {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, "/qr/login?redirect="+url.QueryEscape(target.String()), http.StatusFound)
			return
		}
		scope := r.FormValue("scope")
		switch scope {
		case wechat.ScopeBase, wechat.ScopeUserInfo:
		case "":
			// Who the user is is known only after WeChat: a silent
			// snsapi_base first; the callback asks for the profile when it
			// is missing or older than ProfileMaxAge.
			scope = wechat.ScopeBase
		default:
			p := problemBadRequest
			p.Message, p.MessageZh = "scope must be snsapi_base or snsapi_userinfo.", "scope 只能是 snsapi_base 或 snsapi_userinfo。"
			s.cfg.Pages.Problem(w, r, p)
			return
		}
		u, _, err := s.startWeChat(r.Context(), w, flow{Redirect: target.String(), WeChatScope: scope, AutoScope: r.FormValue("scope") == ""})
		if err != nil {
			s.cfg.Pages.Problem(w, r, s.cfg.Pages.FromError(r.Context(), "start login", err))
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Location", u)
		w.WriteHeader(http.StatusFound)
	})
}

// QRFlow reports whether handle names a client's login waiting for the QR
// way in (GET /login/qr?flow=HANDLE, where [Service.Authorize] sends a
// desktop browser).
func (s *Service) QRFlow(ctx context.Context, handle string) bool {
	if !wechat.ValidState(handle) {
		return false
	}
	_, err := s.cfg.Records.Get(ctx, keyState+handle)
	return err == nil
}

// CompleteQR ends the client's login handle for the user who scanned the
// QR code (a confirmed qrlogin attempt of this browser): a code on the
// client's redirect_uri, amr wechat_qr, snsapi_base (no profile). The flow
// works once.
func (s *Service) CompleteQR(w http.ResponseWriter, r *http.Request, handle, userID, openID, unionID string) {
	ctx := r.Context()
	raw, err := s.cfg.Records.Take(ctx, keyState+handle)
	var f flow
	if err != nil || json.Unmarshal(raw, &f) != nil || !f.oidcMode() {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.cfg.Pages.Problem(w, r, s.cfg.Pages.FromError(ctx, "load flow", err))
			return
		}
		s.cfg.Pages.Problem(w, r, ProblemExpired)
		return
	}
	id := identity{UserID: userID, OpenID: openID, UnionID: unionID, WeChatScope: wechat.ScopeBase, AuthTime: s.now().Unix(), AMR: AMRWeChatQR}
	o, err := s.finish(ctx, f, id)
	if err != nil {
		s.cfg.Pages.Problem(w, r, s.cfg.Pages.FromError(ctx, "finish qr login", err))
		return
	}
	s.write(w, r, o)
}

// IssueCookieSession issues a first-party session for a QR login of the
// cookie mode: the wxauth_session and refresh cookies, then a 302 to
// target (no token in the URL).
func (s *Service) IssueCookieSession(w http.ResponseWriter, r *http.Request, target, userID, openID, unionID string) {
	id := identity{UserID: userID, OpenID: openID, UnionID: unionID, WeChatScope: wechat.ScopeBase, AuthTime: s.now().Unix(), AMR: AMRWeChatQR}
	o, err := s.finish(r.Context(), flow{Redirect: target, WeChatScope: wechat.ScopeBase}, id)
	if err != nil {
		s.cfg.Pages.Problem(w, r, s.cfg.Pages.FromError(r.Context(), "issue session", err))
		return
	}
	s.write(w, r, o)
}
