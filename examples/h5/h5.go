// Package h5 is the example H5 page that uses wxauth: plain HTML and
// JavaScript with no build step. The page includes wxauth's /wxauth.js with
// one tag (data-client-id="h5-demo"), which logs the user in through the
// code flow with PKCE and keeps the tokens in memory; the page shows the
// profile from /userinfo, calls its own API (/api/hello, [NewAPI], the
// access token verified against wxauth's JWKS), refreshes, asks
// /jssdk/config for a wx.config signature, and logs out. `authsvc dev`
// serves it; [Handler] is how. Command api (./api) runs the same API alone.
package h5

import (
	"context"
	"embed"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/MicahParks/keyfunc/v3"
)

//go:embed index.html app.js
var files embed.FS

// ClientID is the client_id of the example page in wxauth's client
// registry (`authsvc dev` registers it).
const ClientID = "h5-demo"

// InsideWeChatCookie is the cookie the page's "as inside WeChat (emulated)"
// switch sets (value "1", Path /, on the page's host, which loopback ports
// share): `authsvc dev` tells the service and the emulator to treat a
// browser carrying it as WeChat's in-app browser, so a desktop browser sees
// the user picker and the consent page instead of the QR login.
const InsideWeChatCookie = "wxauth_dev_wechat"

// Handler serves the page (index.html, which includes wxauthURL/wxauth.js),
// /config.js telling it where wxauth (wxauthURL) and, in development, the
// WeChat emulator (emulatorURL, may be empty) are, and the example API at
// /api/, on the page's own origin, which verifies wxauth's access tokens
// (iss wxauthURL, aud "wxauth", ES256) against wxauthURL's JWKS. The JWKS is
// first fetched by the first API request and then kept fresh for the life
// of the process.
func Handler(wxauthURL, emulatorURL string) http.Handler {
	cfg, _ := json.Marshal(map[string]string{"wxauth": wxauthURL, "emulator": emulatorURL, "insideCookie": InsideWeChatCookie})
	configJS := []byte("window.WXAUTH_DEMO = " + string(cfg) + ";\n")
	page, _ := files.ReadFile("index.html")
	index := strings.NewReplacer("{{wxauth}}", html.EscapeString(wxauthURL), "{{client_id}}", ClientID).Replace(string(page))
	static := http.FileServerFS(files)
	api := lazyAPI(wxauthURL)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/", "/index.html":
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Referrer-Policy", "no-referrer")
			io.WriteString(w, index)
		case "/config.js":
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(configJS)
		case "/api/hello":
			api.ServeHTTP(w, r)
		default:
			w.Header().Set("Cache-Control", "no-store")
			static.ServeHTTP(w, r)
		}
	})
}

// lazyAPI is NewAPI for wxauthURL whose JWKS client starts at the first
// request: Handler is built before wxauth listens.
func lazyAPI(wxauthURL string) http.Handler {
	var (
		once sync.Once
		api  http.Handler
		err  error
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			var kf keyfunc.Keyfunc
			kf, err = keyfunc.NewDefaultCtx(context.Background(), []string{wxauthURL + "/.well-known/jwks.json"})
			if err == nil {
				api = NewAPI(kf.Keyfunc, wxauthURL, "wxauth", "ES256")
			}
		})
		if err != nil {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		api.ServeHTTP(w, r)
	})
}
