package httpapi

import (
	"net/http"
)

// handleHome serves GET / : a small bilingual page saying what this service
// is, for whoever opens its address (a newcomer following the dev banner, an
// operator checking a deployment), with links to the discovery document,
// the JWKS and the health endpoints under publicURL. It shows nothing that
// is not already public: no configuration, no clients, no secrets.
func handleHome(p *pages, publicURL string) http.Handler {
	data := struct{ PublicURL string }{publicURL}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		if err := p.tmpl.ExecuteTemplate(w, "home.html", data); err != nil {
			p.logger.ErrorContext(r.Context(), "render home page", "err", err, "request_id", RequestID(r.Context()))
		}
	})
}
