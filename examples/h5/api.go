package h5

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of wxauth's access token that the example API reads.
type Claims struct {
	jwt.RegisteredClaims
	OpenID   string `json:"openid"`
	UnionID  string `json:"unionid,omitempty"`
	Scope    string `json:"scope"`
	ClientID string `json:"client_id,omitempty"`
}

// NewAPI is the example downstream API: GET /api/hello answers
// {"hello": openid, "sub", "scope", "client_id"} for a request whose Bearer
// token is one of wxauth's access tokens, verified offline: a signature by
// a key of keys (wxauth's JWKS) with an algorithm of algs (pinned: a token
// naming any other, "none" or HS256 among them, is refused before any key
// is looked up), iss = issuer, aud containing audience, exp required and in
// the future (30 s of leeway for clock skew). Anything else is 401 with
// WWW-Authenticate (RFC 6750). Nothing here is specific to WeChat.
func NewAPI(keys jwt.Keyfunc, issuer, audience string, algs ...string) http.Handler {
	if len(algs) == 0 {
		algs = []string{"ES256"}
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_token","error_description":"no Bearer token"}` + "\n"))
			return
		}
		var c Claims
		if _, err := parser.ParseWithClaims(raw, &c, keys); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_token"}` + "\n"))
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"hello": c.OpenID, "sub": c.Subject, "scope": c.Scope, "client_id": c.ClientID})
	})
	return mux
}
