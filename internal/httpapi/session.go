package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wxauth/wxauth/internal/login"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
)

var errInvalidGrant = apiError{Status: http.StatusUnauthorized, Code: "invalid_grant",
	Title: "Session ended", TitleZh: "登录已失效",
	Message: "The refresh token is missing, expired, revoked or already used. Sign in again.", MessageZh: "刷新凭证缺失、过期、已撤销或已使用，请重新登录。"}

// tokenResponse is the JSON of POST /session/refresh.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"` // seconds
	RefreshToken string `json:"refresh_token,omitempty"`
}

// handleSessionRefresh rotates the refresh token: POST /session/refresh with
// the wxauth_refresh cookie (browsers) or {"refresh_token": "..."}
// (non-browser clients, which get the new refresh_token in the body).
// 401 {"error":"invalid_grant"} when the token is unknown, expired, revoked
// or reused (reuse revokes the whole login), or belongs to an OpenID
// client's login (lg.ClientLogin: that client redeems it at /oauth/token).
func handleSessionRefresh(p *pages, sessions *session.Manager, cookies *session.Cookies, lg *login.Service, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, fromBody, ok := refreshToken(w, r, p, cookies)
		if !ok {
			return
		}
		if token == "" {
			p.error(w, r, errInvalidGrant)
			return
		}
		t, err := sessions.RefreshWith(r.Context(), token, func(old store.RefreshToken) (string, error) {
			client, err := lg.ClientLogin(r.Context(), old.FamilyID)
			if err == nil && client {
				err = session.ErrInvalidRefreshToken
			}
			return "", err
		})
		if err != nil {
			if !fromBody {
				cookies.ClearRefresh(w)
				cookies.ClearSession(w)
			}
			if errors.Is(err, session.ErrInvalidRefreshToken) || errors.Is(err, session.ErrRefreshTokenReused) {
				p.error(w, r, errInvalidGrant)
				return
			}
			p.error(w, r, p.fromError(r.Context(), "refresh session", err))
			return
		}
		resp := tokenResponse{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn}
		if fromBody {
			resp.RefreshToken = t.RefreshToken
		} else {
			cookies.SetRefresh(w, t.RefreshToken, t.RefreshExpires)
			cookies.SetSession(w, t.AccessToken, now().Add(time.Duration(t.ExpiresIn)*time.Second))
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, resp)
	})
}

// refreshToken reads the refresh token of POST /session/refresh and
// /session/logout: {"refresh_token": "..."} in the body, else the
// wxauth_refresh cookie ("" when neither). fromBody says it came in the
// body. On a bad body it answers the error and returns ok false.
func refreshToken(w http.ResponseWriter, r *http.Request, p *pages, cookies *session.Cookies) (token string, fromBody, ok bool) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !p.readJSON(w, r, &req) {
		return "", false, false
	}
	if req.RefreshToken != "" {
		return req.RefreshToken, true, true
	}
	token, _ = cookies.Refresh(r)
	return token, false, true
}

// handleSessionLogout ends the login: POST /session/logout with the refresh
// cookie, {"refresh_token"} or a Bearer access token. It revokes the whole
// family (its access JWTs stop passing /verify and /me), clears the cookies
// and answers 204, also when there was nothing to revoke.
func handleSessionLogout(p *pages, sessions *session.Manager, cookies *session.Cookies) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _, ok := refreshToken(w, r, p, cookies)
		if !ok {
			return
		}
		ctx := r.Context()
		if token != "" {
			if err := sessions.Logout(ctx, token); err != nil && !errors.Is(err, session.ErrInvalidRefreshToken) {
				p.error(w, r, p.fromError(ctx, "logout", err))
				return
			}
		}
		if raw, ok := bearer(r); ok {
			if c, err := sessions.Verify(ctx, raw); err == nil {
				if err := sessions.RevokeSession(ctx, c.SessionID); err != nil {
					p.error(w, r, p.fromError(ctx, "logout", err))
					return
				}
			}
		}
		cookies.ClearRefresh(w)
		cookies.ClearSession(w)
		cookies.ClearBrowser(w) // no more silent logins to clients from this browser
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
// The scheme is case-insensitive; exactly one space separates it.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	t := h[7:]
	return t, t != ""
}

// handleVerify is nginx's auth_request target: GET /verify answers 200 with
// X-Auth-Request-User (sub), X-Auth-Request-Openid and
// X-Auth-Request-Unionid for a valid Bearer JWT or wxauth_session cookie,
// 401 otherwise; never cached.
func handleVerify(sessions *session.Manager, cookies *session.Cookies) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		raw, ok := bearer(r)
		if !ok {
			raw, ok = cookies.Session(r)
		}
		if !ok {
			h.Set("WWW-Authenticate", `Bearer`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		c, err := sessions.Verify(r.Context(), raw)
		if err != nil {
			status := http.StatusUnauthorized
			if errors.Is(err, store.ErrUnavailable) {
				status = http.StatusServiceUnavailable
			}
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(status)
			return
		}
		h.Set("X-Auth-Request-User", c.Subject)
		h.Set("X-Auth-Request-Openid", c.OpenID)
		if c.UnionID != "" {
			h.Set("X-Auth-Request-Unionid", c.UnionID)
		}
		w.WriteHeader(http.StatusOK)
	})
}

// handleJWKS serves the public signing keys, cacheable for 10 minutes.
func handleJWKS(sessions *session.Manager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := sessions.JWKS()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=600")
		h.Set("Access-Control-Allow-Origin", "*")
		w.Write(b)
	})
}

// handleHealthz reports that the process serves HTTP.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz reports whether this instance can serve: 503
// {"status":"unavailable"} when a store does not answer (the load balancer
// should drain it), else 200 with "status" "ready", or "degraded" and a
// "wechat" reason while the WeChat client's circuit breaker is open. WeChat
// being down is not a reason to drain: every instance sees the same WeChat,
// and /verify, /me and the JWKS still work without it.
func handleReadyz(ping func(context.Context) error, wechatHealthy func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if ping != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := ping(ctx); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "store unreachable"})
				return
			}
		}
		if err := wechatHealthy(); err != nil {
			writeJSON(w, http.StatusOK, map[string]string{"status": "degraded", "wechat": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "wechat": "ok"})
	})
}
