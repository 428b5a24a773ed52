package wxemu

import (
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strings"
)

// jssdkSignature is the JS-SDK config signature: the SHA-1, in lowercase
// hex, of "jsapi_ticket=T&noncestr=N&timestamp=TS&url=U" with raw values and
// the url cut at '#'.
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html (附录1)
func jssdkSignature(ticket, nonceStr, timestamp, pageURL string) string {
	pageURL, _, _ = strings.Cut(pageURL, "#")
	sum := sha1.Sum([]byte("jsapi_ticket=" + ticket + "&noncestr=" + nonceStr + "&timestamp=" + timestamp + "&url=" + pageURL))
	return hex.EncodeToString(sum[:])
}

// handleJSSDKCheck answers what WeChat's wx.config decides: GET
// /emu/jssdk/check?url=&timestamp=&nonceStr=&signature= -> {"valid": bool,
// "error": "..."}: valid when the signature is [jssdkSignature] of a live
// jsapi_ticket this emulator issued. Missing parameters answer 400. CORS is
// open so the example H5 page can ask.
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
func (e *Emulator) handleJSSDKCheck(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	q := r.URL.Query()
	page, ts, nonce, sig := q.Get("url"), q.Get("timestamp"), q.Get("nonceStr"), strings.ToLower(q.Get("signature"))
	if page == "" || ts == "" || nonce == "" || sig == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"valid": false, "error": "url, timestamp, nonceStr and signature are required"})
		return
	}
	e.mu.Lock()
	now := e.now()
	live := make([]string, 0, len(e.tickets))
	for t, exp := range e.tickets {
		if now.Before(exp) {
			live = append(live, t)
		}
	}
	e.mu.Unlock()
	for _, t := range live {
		if equalSignature(sig, jssdkSignature(t, nonce, ts, page)) {
			writeJSON(w, http.StatusOK, map[string]any{"valid": true, "error": ""})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": false, "error": "invalid signature (no live jsapi_ticket gives it for this url, timestamp and nonceStr)"})
}
