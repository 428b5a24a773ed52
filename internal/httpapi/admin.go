package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/wxauth/wxauth/internal/proxy"
	"github.com/wxauth/wxauth/internal/wechat"
)

var errAdmin = apiError{Status: http.StatusUnauthorized, Code: "invalid_token",
	Title: "Not allowed", TitleZh: "无权访问", Message: "A valid admin bearer token (WXAUTH_ADMIN_TOKEN), or the credentials of a client allowed raw_access_token, is required.", MessageZh: "需要有效的管理令牌或具有 raw_access_token 权限的客户端凭据。"}

// rawTokenAccess admits the callers of /internal/access-token*: the admin
// token ("Authorization: Bearer <token>", when token is not empty; compared
// in constant time over SHA-256 digests, so neither content nor length
// leaks), or a registered client
// with raw_access_token: true, authenticated by px (HTTP Basic, or a Bearer
// client_credentials JWT or proxy token). It is the documented exception
// to the proxy: every other service calls WeChat through /cgi-bin/.
func rawTokenAccess(p *pages, token string, px *proxy.Proxy) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token != "" {
				got, _ := bearer(r)
				sum := sha256.Sum256([]byte(got))
				if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
					next.ServeHTTP(w, r)
					return
				}
			}
			if px != nil && r.Header.Get("Authorization") != "" {
				if c, err := px.Client(r); err == nil && c.RawAccessToken {
					next.ServeHTTP(w, r)
					return
				}
			}
			p.error(w, r, errAdmin)
		})
	}
}

// accessTokenResponse is the JSON of the /internal/access-token endpoints.
type accessTokenResponse struct {
	AccessToken string `json:"access_token"`
}

// handleAccessToken gives the owner's other services the global
// access_token: GET /internal/access-token -> {"access_token": "..."}. They
// must never call cgi-bin/token themselves (that voids ours).
func handleAccessToken(p *pages, tokens *wechat.TokenManager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeAccessToken(w, r, p, tokens)
	})
}

// handleAccessTokenInvalidate is compare-and-refresh for other services:
// POST /internal/access-token/invalidate {"access_token": "<the one WeChat
// refused with 40001/42001>"} refreshes only if that token is still the
// current one, and answers the current token.
func handleAccessTokenInvalidate(p *pages, tokens *wechat.TokenManager) http.Handler {
	type request struct {
		AccessToken string `json:"access_token"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if !p.readJSON(w, r, &req) {
			return
		}
		if req.AccessToken == "" {
			p.error(w, r, errBadRequest.withMessage(`The body must be {"access_token": "<the token that failed>"}.`, "请求体须包含失效的 access_token。"))
			return
		}
		if err := tokens.Invalidate(r.Context(), req.AccessToken); err != nil {
			p.error(w, r, p.fromError(r.Context(), "invalidate access_token", err))
			return
		}
		writeAccessToken(w, r, p, tokens)
	})
}

// writeAccessToken answers the current access_token (uncached).
func writeAccessToken(w http.ResponseWriter, r *http.Request, p *pages, tokens *wechat.TokenManager) {
	t, err := tokens.AccessToken(r.Context())
	if err != nil {
		p.error(w, r, p.fromError(r.Context(), "access_token", err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, accessTokenResponse{t})
}
