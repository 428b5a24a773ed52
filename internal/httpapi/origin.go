package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/wxauth/wxauth/internal/redirect"
)

var errCrossOrigin = apiError{Status: http.StatusForbidden, Code: "invalid_request",
	Title: "Request from another site refused", TitleZh: "已拒绝来自其他网站的请求",
	Message:   "This request came from a page that is not allowed to end or renew your session.",
	MessageZh: "该请求来自未被允许的网页，无法结束或续期您的登录。"}

// sameOriginOnly refuses (403 JSON) a request that a browser sent from a
// page whose origin is neither this service's (publicURL) nor allowed
// (allow, WXAUTH_ALLOWED_REDIRECTS): session-ending and session-renewing
// endpoints act on a cookie the browser attaches on its own, and SameSite=Lax
// still lets same-site pages on other origins send it. The browser's Origin
// header decides; "null" (sandboxed frames, data: URLs) is refused; without
// Origin, Sec-Fetch-Site "cross-site" or "same-site" is refused. A request
// with neither header (curl, a back-end) is not a browser's and passes.
// OPTIONS (the CORS preflight) passes to the CORS middleware.
func sameOriginOnly(p *pages, allow *redirect.Allowlist, publicURL string) func(http.Handler) http.Handler {
	self := ""
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		self = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodOptions {
				next.ServeHTTP(w, r)
				return
			}
			if origin := r.Header.Get("Origin"); origin != "" {
				if o := strings.ToLower(origin); o == "null" || (o != self && !allow.AllowedOrigin(o)) {
					w.Header().Add("Vary", "Origin")
					p.error(w, r, errCrossOrigin)
					return
				}
			} else if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
				p.error(w, r, errCrossOrigin)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
