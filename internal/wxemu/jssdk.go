package wxemu

import (
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strings"
)

// handleJSSDKCheck answers what WeChat's wx.config decides: GET
// /emu/jssdk/check?url=&timestamp=&nonceStr=&signature= -> {"valid": bool,
// "error": "..."}: valid when the signature is the sha1 of
// jsapi_ticket=T&noncestr=N&timestamp=TS&url=U (U without #fragment) for a
// live jsapi_ticket this emulator issued (JS-SDK 附录1). CORS is open so the
// example H5 page can ask.
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
func (e *Emulator) handleJSSDKCheck(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	q := r.URL.Query()
	pageURL, _, _ := strings.Cut(q.Get("url"), "#")
	ts, nonce, sig := q.Get("timestamp"), q.Get("nonceStr"), strings.ToLower(q.Get("signature"))
	if pageURL == "" || ts == "" || nonce == "" || sig == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"valid": false, "error": "url, timestamp, nonceStr and signature are required"})
		return
	}
	e.mu.Lock()
	now := e.now()
	var live []string
	for t, exp := range e.tickets {
		if now.Before(exp) {
			live = append(live, t)
		}
	}
	e.mu.Unlock()
	for _, t := range live {
		sum := sha1.Sum([]byte("jsapi_ticket=" + t + "&noncestr=" + nonce + "&timestamp=" + ts + "&url=" + pageURL))
		if hex.EncodeToString(sum[:]) == sig {
			writeJSON(w, http.StatusOK, map[string]any{"valid": true})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": false, "error": "invalid signature"})
}
