package httpapi

import (
	"net/http"

	"github.com/wxauth/wxauth/internal/redirect"
)

// corsFor returns a middleware that lets H5 pages on allowed origins call an
// endpoint with credentials (cookies, Authorization), and answers their
// preflight requests. Other origins get no CORS headers, so browsers refuse.
func corsFor(allow *redirect.Allowlist) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			h := w.Header()
			if origin != "" {
				h.Add("Vary", "Origin")
				if allow.AllowedOrigin(origin) {
					h.Set("Access-Control-Allow-Origin", origin)
					h.Set("Access-Control-Allow-Credentials", "true")
				}
			}
			if r.Method == http.MethodOptions {
				if h.Get("Access-Control-Allow-Origin") != "" {
					h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
					h.Set("Access-Control-Max-Age", "600")
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
