package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxauth/wxauth/internal/redirect"
	"github.com/wxauth/wxauth/internal/wechat"
)

// handleJSSDKConfig answers GET /jssdk/config?url=<page url> with the
// wx.config fields {"appId","timestamp","nonceStr","signature"}: timestamp in
// unix seconds, a 16-character nonceStr, and the sha1 signature over the
// jsapi_ticket and the page url without its #fragment (JS-SDK 附录1). The url
// must pass the redirect allowlist (400 otherwise); a WeChat failure to give
// a ticket is 503 (transient) or 502.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
func handleJSSDKConfig(p *pages, allow *redirect.Allowlist, tokens *wechat.TokenManager, appID string, now func() time.Time) http.Handler {
	prefix := `{"appId":"` + appID + `","timestamp":`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.URL.Query().Get("url")
		if _, err := allow.Check(raw, true); err != nil {
			// The reason is for the operator's log, not the client.
			p.logRefused(r.Context(), "jssdk url refused", err)
			p.error(w, r, errBadRequest.withMessage("url is not a page on an allowed origin.", "url 不在允许的网页范围内。"))
			return
		}
		if i := strings.IndexByte(raw, '#'); i >= 0 {
			raw = raw[:i]
		}
		ticket, err := tokens.JSAPITicket(r.Context())
		if err != nil {
			p.error(w, r, p.fromError(r.Context(), "jsapi_ticket", err))
			return
		}
		ts := now().Unix()
		nonce := randomString(16)
		sig := wechat.SignJSSDK(ticket, nonce, ts, raw)
		b := make([]byte, 0, len(prefix)+120)
		b = append(b, prefix...)
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, `,"nonceStr":"`...)
		b = append(b, nonce...)
		b = append(b, `","signature":"`...)
		b = append(b, sig...)
		b = append(b, "\"}\n"...)
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.Write(b)
	})
}
