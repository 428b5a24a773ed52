package wxemu

import "net/http"

// wechatRoutes lists every emulated WeChat path and its handler; each is
// counted by GET /emu/calls and can be faulted with POST /emu/faults.
func (e *Emulator) wechatRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		// open.weixin.qq.com
		"/connect/oauth2/authorize":         e.handleAuthorize,
		"/connect/oauth2/authorize/confirm": e.postOnly(e.handleConfirm),
		"/connect/oauth2/authorize/consent": e.postOnly(e.handleConsent),
		// api.weixin.qq.com/sns
		"/sns/oauth2/access_token":  e.handleSNSAccessToken,
		"/sns/oauth2/refresh_token": e.handleSNSRefresh,
		"/sns/userinfo":             e.handleSNSUserInfo,
		"/sns/auth":                 e.handleSNSAuth,
		// api.weixin.qq.com/cgi-bin
		"/cgi-bin/token":               e.handleToken,
		"/cgi-bin/stable_token":        e.postOnly(e.handleStableToken),
		"/cgi-bin/ticket/getticket":    e.withToken(e.handleTicket),
		"/cgi-bin/qrcode/create":       e.postOnly(e.withToken(e.handleQRCreate)),
		"/cgi-bin/menu/create":         e.postOnly(e.withToken(e.handleMenuCreate)),
		"/cgi-bin/menu/get":            e.withToken(e.handleMenuGet),
		"/cgi-bin/menu/delete":         e.withToken(e.handleMenuDelete),
		"/cgi-bin/user/info":           e.withToken(e.handleUserInfo),
		"/cgi-bin/media/upload":        e.postOnly(e.withToken(e.handleMediaUpload)),
		"/cgi-bin/media/get":           e.withToken(e.handleMediaGet),
		"/cgi-bin/message/custom/send": e.postOnly(e.withToken(e.handleCustomSend)),
		// mp.weixin.qq.com
		"/cgi-bin/showqrcode": e.handleShowQR,
	}
}

// wechatPaths returns the emulated WeChat paths.
func wechatPaths() []string {
	var e Emulator
	out := make([]string, 0, 16)
	for p := range e.wechatRoutes() {
		out = append(out, p)
	}
	return out
}

// wechatPath reports whether p is an emulated WeChat path.
func wechatPath(p string) bool {
	for _, q := range wechatPaths() {
		if p == q {
			return true
		}
	}
	return false
}

// routes builds the mux: WeChat's paths, the QR content page, and the
// control API under /emu/.
func (e *Emulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for path, h := range e.wechatRoutes() {
		mux.Handle(path, e.wechat(path, h))
	}
	mux.HandleFunc("GET /q/{id}", e.handleQRContent)

	mux.HandleFunc("GET /emu/{$}", e.handleIndex)
	mux.HandleFunc("GET /{$}", e.handleIndex)
	mux.HandleFunc("GET /emu/users", e.handleUsers)
	mux.HandleFunc("POST /emu/users", e.handlePutUser)
	mux.HandleFunc("GET /emu/clock", e.handleClock)
	mux.HandleFunc("POST /emu/clock", e.handleClock)
	mux.HandleFunc("GET /emu/calls", e.handleCalls)
	mux.HandleFunc("POST /emu/calls/reset", e.handleCallsReset)
	mux.HandleFunc("POST /emu/faults", e.handleFault)
	mux.HandleFunc("DELETE /emu/faults", e.handleClearFaults)
	mux.HandleFunc("POST /emu/void-token", e.handleVoidToken)
	mux.HandleFunc("GET /emu/media", e.handleMedia)
	mux.HandleFunc("POST /emu/void-web-tokens", e.handleVoidWebTokens)
	mux.HandleFunc("POST /emu/ip-whitelist", e.handleIPWhitelist)
	mux.HandleFunc("POST /emu/ip-whitelist/confirm", e.handleIPConfirm)
	mux.HandleFunc("POST /emu/follow", e.handleFollow)
	mux.HandleFunc("GET /emu/callback", e.handleCallback)
	mux.HandleFunc("POST /emu/callback", e.handleCallback)
	mux.HandleFunc("GET /emu/avatar/{openid}/{size}", e.handleAvatar)
	mux.HandleFunc("GET /emu/chat", e.handleChat)
	mux.HandleFunc("GET /emu/jssdk/check", e.handleJSSDKCheck)

	mux.HandleFunc("POST /emu/send", e.handleSend)
	mux.HandleFunc("POST /emu/menu/click", e.handleClick)
	mux.HandleFunc("POST /emu/subscribe", e.handleSubscribe)
	mux.HandleFunc("POST /emu/unsubscribe", e.handleUnsubscribe)
	mux.HandleFunc("POST /emu/location", e.handleLocation)
	mux.HandleFunc("POST /emu/scan", e.handleScan)
	mux.HandleFunc("GET /wx-verify", e.handleVerifyURL)
	mux.HandleFunc("POST /emu/verify-url", e.handleVerifyURL)
	return mux
}
