// Command api is the downstream example of wxauth: a small JSON API that
// accepts wxauth's access tokens, verified offline against wxauth's JWKS
// with standard libraries (github.com/MicahParks/keyfunc/v3 and
// github.com/golang-jwt/jwt/v5): algorithm pinned, iss, aud and exp
// required. The handler is [h5.NewAPI]; `authsvc dev` serves the same API
// beside the example page. Nothing here is specific to WeChat.
//
//	go run ./examples/h5/api --jwks http://127.0.0.1:8080/.well-known/jwks.json --issuer http://127.0.0.1:8080
//	curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8090/api/hello
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/MicahParks/keyfunc/v3"

	"github.com/wxauth/wxauth/examples/h5"
)

func main() {
	jwksURL := flag.String("jwks", "http://127.0.0.1:8080/.well-known/jwks.json", "wxauth's JWKS URL")
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "wxauth's issuer (WXAUTH_ISSUER)")
	audience := flag.String("audience", "wxauth", "the audience of access tokens (WXAUTH_AUDIENCE)")
	algs := flag.String("algs", "ES256", "comma-separated signing algorithms accepted (WXAUTH_JWT_ALG)")
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
	srv := &http.Server{Addr: *listen, Handler: h5.NewAPI(kf.Keyfunc, *issuer, *audience, strings.Split(*algs, ",")...)}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	fmt.Printf("listening on http://%s\n", *listen)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
