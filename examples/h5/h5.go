// Package h5 is the example H5 page that uses wxauth: plain HTML and
// JavaScript with no build step. It sends the browser to wxauth's /login
// when it has no session, reads the access token from the URL fragment and
// removes it with history.replaceState, shows the profile from /me,
// refreshes on 401, asks /jssdk/config for a wx.config signature, and logs
// out. `authsvc dev` serves it; Handler is how.
package h5

import (
	"embed"
	"encoding/json"
	"net/http"
)

//go:embed index.html app.js
var files embed.FS

// Handler serves the page, plus /config.js telling it where wxauth
// (wxauthURL) and, in development, the WeChat emulator (emulatorURL, may be
// empty) are.
func Handler(wxauthURL, emulatorURL string) http.Handler {
	cfg, _ := json.Marshal(map[string]string{"wxauth": wxauthURL, "emulator": emulatorURL})
	configJS := []byte("window.WXAUTH = " + string(cfg) + ";\n")
	static := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/config.js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(configJS)
			return
		}
		static.ServeHTTP(w, r)
	})
}
