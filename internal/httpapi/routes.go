package httpapi

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// addRoutes is the whole HTTP surface, one line per endpoint.
func addRoutes(r *mux.Router, o Options, b built, p *pages) {
	cors := corsFor(o.Allow)
	sameOrigin := sameOriginOnly(p, o.Allow, o.PublicURL)

	// The OpenID Provider (package login) and its WeChat ways in.
	lg := b.login
	op := lg.Handler() // routed by zitadel/oidc's op, with CORS for the registered clients' origins
	r.Handle("/login", lg.Login()).Methods(http.MethodGet, http.MethodHead, http.MethodPost)
	r.Handle("/login/qr", handleLoginQR(p, lg)).Methods(http.MethodGet)
	r.Handle("/oauth/callback", lg.Callback()).Methods(http.MethodGet)
	r.Handle("/oauth/token", limitBody(64<<10, op)).Methods(http.MethodPost, http.MethodOptions)
	r.Handle("/oauth/revoke", limitBody(64<<10, op)).Methods(http.MethodPost, http.MethodOptions)
	r.Handle("/oauth/introspect", limitBody(64<<10, op)).Methods(http.MethodPost, http.MethodOptions)
	r.Handle("/userinfo", limitBody(64<<10, op)).Methods(http.MethodGet, http.MethodPost, http.MethodOptions)
	r.Handle("/me", cors(lg.Me())).Methods(http.MethodGet, http.MethodOptions)
	r.Handle("/logout", limitBody(64<<10, lg.Logout())).Methods(http.MethodGet, http.MethodPost)
	r.Handle("/.well-known/openid-configuration", lg.Metadata()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/.well-known/oauth-authorization-server", lg.Metadata()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/.well-known/jwks.json", handleJWKS(o.Sessions)).Methods(http.MethodGet, http.MethodHead)

	// First-party cookie sessions (/login?redirect=R) and nginx auth_request.
	r.Handle("/session/refresh", cors(sameOrigin(handleSessionRefresh(p, o.Sessions, o.Cookies, lg, o.Now)))).Methods(http.MethodPost, http.MethodOptions)
	r.Handle("/session/logout", cors(sameOrigin(handleSessionLogout(p, o.Sessions, o.Cookies)))).Methods(http.MethodPost, http.MethodOptions)
	r.Handle("/verify", handleVerify(o.Sessions, o.Cookies)).Methods(http.MethodGet, http.MethodHead)

	// The Official Account's message callback (服务器配置 URL).
	if o.Callback != nil {
		r.Handle("/wx", limitBody(1<<20, o.Callback)).Methods(http.MethodGet, http.MethodPost)
	}

	// Desktop login by scanning the Official Account's QR code.
	if o.QR != nil {
		secure := strings.HasPrefix(o.PublicURL, "https://")
		qc := qrCreator{svc: o.QR, allow: o.Allow, login: lg, budget: b.budget, publicURL: o.PublicURL, secure: secure, now: o.Now}
		r.Handle("/qr/login", handleQRLogin(p, qc)).Methods(http.MethodGet)
		r.Handle("/qr/sessions", handleQRCreate(p, qc)).Methods(http.MethodPost)
		r.Handle("/qr/sessions/{id}", handleQRStatus(p, o.QR, o.Now)).Methods(http.MethodGet)
		r.Handle("/qr/sessions/{id}/qr.png", handleQRImage(p, o.QR)).Methods(http.MethodGet)
		r.Handle("/qr/sessions/{id}/events", handleQREvents(p, o.QR, b.streams, o.Limits.TrustedProxies, o.Now)).Methods(http.MethodGet)
		r.Handle("/qr/sessions/{id}/complete", handleQRComplete(p, o.QR, lg, secure)).Methods(http.MethodGet)
	}

	// Official Account credentials: JS-SDK signature and the internal token API.
	if o.Tokens != nil {
		r.Handle("/jssdk/config", cors(handleJSSDKConfig(p, o.Allow, o.Tokens, o.AppID, o.Now))).Methods(http.MethodGet, http.MethodOptions)
		if o.AdminToken != "" || o.Proxy != nil {
			admin := rawTokenAccess(p, o.AdminToken, o.Proxy)
			r.Handle("/internal/access-token", admin(handleAccessToken(p, o.Tokens))).Methods(http.MethodGet)
			r.Handle("/internal/access-token/invalidate", admin(handleAccessTokenInvalidate(p, o.Tokens))).Methods(http.MethodPost)
		}
	}

	// The WeChat API proxy: the owner's services call WeChat's cgi-bin API
	// as registered clients and never hold the access_token.
	if o.Proxy != nil {
		r.PathPrefix("/cgi-bin/").Handler(o.Proxy)
	}

	r.Handle("/wxauth.js", handleScript()).Methods(http.MethodGet, http.MethodHead) // the script H5 pages include (code + PKCE)

	// Health.
	r.Handle("/healthz", handleHealthz()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", handleReadyz(o.Stores.Ping, o.WeChat.Healthy)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/", handleHome(p, o.PublicURL)).Methods(http.MethodGet, http.MethodHead) // the landing page (home.go)
	if o.MetricsHandler != nil {
		r.Handle("/metrics", o.MetricsHandler).Methods(http.MethodGet)
	}
}

// limitBody caps request bodies at n bytes; reads past it fail with
// *http.MaxBytesError, which handlers answer with 413.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}
