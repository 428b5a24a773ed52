package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/wxauth/wxauth/web"
)

// handleScript serves GET /wxauth.js, the script an H5 page includes with
// one tag to log in through the code flow (web/static/wxauth.js). The body
// is fixed for the life of the binary, so its ETag is a hash of it: a page
// that names the version (/wxauth.js?v=ETAG, the value of X-Wxauth-Version)
// gets a year of immutable caching; the plain URL is cached for an hour and
// revalidated with If-None-Match (304). The script may be loaded from any
// origin, like any CDN script.
func handleScript() http.Handler {
	body := web.Script()
	sum := sha256.Sum256(body)
	version := hex.EncodeToString(sum[:8])
	etag := `"` + version + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("ETag", etag)
		h.Set("X-Wxauth-Version", version)
		if r.URL.Query().Get("v") == version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=3600")
		}
		http.ServeContent(w, r, "wxauth.js", time.Time{}, bytes.NewReader(body))
	})
}
