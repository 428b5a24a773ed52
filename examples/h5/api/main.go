// Command api is the downstream example of wxauth: a small JSON API that
// accepts wxauth's session JWTs, verified offline against wxauth's JWKS with
// standard libraries (github.com/MicahParks/keyfunc/v3 and
// github.com/golang-jwt/jwt/v5). Nothing here is specific to WeChat.
//
//	go run ./examples/h5/api --jwks http://127.0.0.1:8080/.well-known/jwks.json --issuer http://127.0.0.1:8080
//	curl -H "Authorization: Bearer $JWT" http://127.0.0.1:8090/api/hello
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// claims are the wxauth JWT claims this API reads.
type claims struct {
	jwt.RegisteredClaims
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	Scope   string `json:"scope"`
}

// newAPI serves GET /api/hello for requests whose Bearer JWT verifies:
// signature by a key of the JWKS (algorithm pinned to ES256, RS256 or
// EdDSA), issuer, audience and a required exp. Anything else is 401.
func newAPI(keys jwt.Keyfunc, issuer, audience string) http.Handler {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"ES256", "RS256", "EdDSA"}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30e9),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/hello", func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var c claims
		if !ok {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		if _, err := parser.ParseWithClaims(raw, &c, keys); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"hello": c.OpenID, "sub": c.Subject, "scope": c.Scope})
	})
	return mux
}

func main() {
	jwksURL := flag.String("jwks", "http://127.0.0.1:8080/.well-known/jwks.json", "wxauth's JWKS URL")
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "wxauth's issuer (WXAUTH_ISSUER)")
	audience := flag.String("audience", "wxauth", "the audience (WXAUTH_AUDIENCE)")
	listen := flag.String("listen", "127.0.0.1:8090", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// keyfunc fetches the JWKS, refreshes it in the background, and refetches
	// (rate limited) when a token names an unknown kid: key rotation needs
	// nothing more.
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{*jwksURL})
	if err != nil {
		log.Fatalf("jwks: %v", err)
	}
	srv := &http.Server{Addr: *listen, Handler: newAPI(kf.Keyfunc, *issuer, *audience)}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	fmt.Printf("listening on http://%s\n", *listen)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
