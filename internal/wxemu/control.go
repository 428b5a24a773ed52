package wxemu

import (
	"bytes"
	"context"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// The control API under /emu/: users, the virtual clock, call counts,
// faults, token voiding, follows and the callback settings.

// fault is a scripted failure of a WeChat path (POST /emu/faults).
type fault struct {
	// Path is the WeChat path, e.g. "/cgi-bin/stable_token".
	Path string `json:"path"`
	// ErrCode, when not 0, answers HTTP 200 {"errcode":ErrCode,...}; on
	// /connect/oauth2/authorize it shows the authorize error page with that
	// code instead (10006, 10009, 10016, ...), as WeChat does.
	ErrCode int `json:"errcode"`
	// Status, when not 0, answers that HTTP status (it wins over ErrCode).
	Status int `json:"status"`
	// DelayMS sleeps this many milliseconds first (or until the request's
	// context ends); alone it only slows the call down.
	DelayMS int `json:"delay_ms"`
	// DropAnswer serves the call for real (a code is consumed, a token
	// issued) and then closes the connection without an answer: WeChat did
	// the work and its answer was lost on the way.
	DropAnswer bool `json:"drop_answer"`
	// DoubleRedirect, on /connect/oauth2/authorize only, makes the next
	// authorizations redirect to redirect_uri twice with two different
	// codes (Android X5 webview, page refresh). It is counted down when a
	// code is issued, not per call; see the package documentation.
	DoubleRedirect bool `json:"double_redirect"`
	// OmitSnapshot, on /sns/oauth2/access_token only, leaves
	// is_snapshotuser out of a snapshot user's exchange, as first
	// exchanges have been seen to do.
	OmitSnapshot bool `json:"omit_snapshot"`
	// Times is how many of the next calls fail; 0 means 1, -1 means until
	// DELETE /emu/faults.
	Times int `json:"times"`
}

// faultKey carries the fault a call is played with in its context.
type faultKey struct{}

// faultOf returns the fault r is played with, or the zero fault.
func faultOf(r *http.Request) fault {
	f, _ := r.Context().Value(faultKey{}).(fault)
	return f
}

// wechat wraps a WeChat path: it counts the call (GET /emu/calls) and
// applies any scripted fault.
func (e *Emulator) wechat(path string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.calls[path]++
		f, ok := e.faults[path]
		var cur fault
		if ok {
			cur = *f
			if f.Times > 0 {
				f.Times--
				if f.Times == 0 {
					delete(e.faults, path)
				}
			}
		}
		e.mu.Unlock()
		if !ok {
			h(w, r)
			return
		}
		ctx := r.Context()
		if cur.DelayMS > 0 {
			e.fault(ctx, "delay", "WeChat answers slowly", slog.String("path", path), slog.Int("delay_ms", cur.DelayMS))
			if err := sleepCtx(ctx, time.Duration(cur.DelayMS)*time.Millisecond); err != nil {
				return
			}
		}
		switch {
		case cur.Status != 0:
			e.fault(ctx, "status", "WeChat's gateway answers an HTTP error", slog.String("path", path), slog.Int("status", cur.Status))
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(cur.Status)
			_, _ = w.Write([]byte("<html><body>" + strconv.Itoa(cur.Status) + " " + http.StatusText(cur.Status) + "</body></html>"))
		case cur.ErrCode != 0 && path == "/connect/oauth2/authorize":
			e.fault(ctx, "authorize_error", "the authorize page shows an error", slog.Int("errcode", cur.ErrCode))
			e.render(w, http.StatusOK, "error.html", authPageData{Problem: &authProblem{cur.ErrCode, authorizeErrMsg(cur.ErrCode)}})
		case cur.ErrCode != 0:
			e.fault(ctx, "errcode", "WeChat answers an errcode", slog.String("path", path), slog.Int("errcode", cur.ErrCode))
			e.wxError(w, cur.ErrCode, faultErrMsg(cur.ErrCode))
		case cur.DropAnswer:
			h(discardWriter{h: http.Header{}}, r.WithContext(context.WithValue(ctx, faultKey{}, cur)))
			e.fault(ctx, "drop_answer", "WeChat served the call and the answer was lost: connection closed", slog.String("path", path))
			// net/http closes the connection (HTTP/2: resets the stream)
			// without an answer and logs nothing for ErrAbortHandler.
			panic(http.ErrAbortHandler)
		default:
			h(w, r.WithContext(context.WithValue(ctx, faultKey{}, cur)))
		}
	}
}

// discardWriter is the ResponseWriter of a call whose answer is dropped.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

// faultErrMsg is the errmsg of a scripted errcode: WeChat's own text for
// the codes it documents, else "injected fault".
func faultErrMsg(code int) string {
	if m, ok := errMsgs[code]; ok {
		return m
	}
	return "injected fault"
}

// errMsgs are WeChat's errmsg texts (without the rid suffix) of the codes
// the emulator plays as faults. 40164 is not among them: its text names the
// caller's IP, which POST /emu/ip-whitelist plays (a scripted 40164 says
// "injected fault" and names none).
// https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
var errMsgs = map[int]string{
	-1:    "system error",
	40001: msgInvalidCredential,
	40029: "invalid code",
	40030: "invalid refresh_token",
	40163: "code been used",
	42001: "access_token expired",
	42002: "refresh_token expired",
	42007: "access_token and refresh_token exception",
	45009: "reach max api daily quota limit",
	45011: "api minute-quota reach limit  mustslower  retry next minute",
	48001: "api unauthorized",
	89501: "此IP正在等待管理员确认,请联系管理员",
	89503: "此IP调用需要管理员确认,请联系管理员",
	89506: "24小时内该IP被管理员拒绝调用两次，24小时内不可再使用该IP调用",
	89507: "1小时内该IP被管理员拒绝调用一次，1小时内不可再使用该IP调用",
}

// msgInvalidCredential is WeChat's errmsg for 40001 since 2023.
const msgInvalidCredential = "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r"

// authorizeErrMsg is the text of the authorize error page for code.
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func authorizeErrMsg(code int) string {
	switch code {
	case 10003:
		return "redirect_uri 域名与后台配置不一致"
	case 10004:
		return "此公众号被封禁"
	case 10005:
		return "此公众号并没有这些 scope 的权限"
	case 10006:
		return "必须关注此测试号"
	case 10009:
		return "操作太频繁了，请稍后重试"
	case 10010:
		return "scope 不能为空"
	case 10011:
		return "redirect_uri 不能为空"
	case 10012:
		return "appid 不能为空"
	case 10013:
		return "state 不能为空"
	case 10015:
		return "公众号未授权第三方平台，请检查授权状态"
	case 10016:
		return "不支持微信开放平台的 Appid，请使用公众号 Appid"
	}
	return "injected fault"
}

// userJSON is a User as the control API shows it, headimgurl filled in.
func (e *Emulator) usersLocked() []User {
	out := make([]User, 0, len(e.order))
	for _, id := range e.order {
		u := e.users[id]
		u.HeadImgURL = e.avatarLocked(u)
		out = append(out, u)
	}
	return out
}

// handleUsers serves GET /emu/users: the users as a JSON array.
func (e *Emulator) handleUsers(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	out := e.usersLocked()
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handlePutUser serves POST /emu/users {User}: adds or replaces a user.
func (e *Emulator) handlePutUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if err := decodeJSON(r, &u); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	e.mu.Lock()
	err := e.putUser(u, e.now())
	u = e.users[u.OpenID]
	e.mu.Unlock()
	if err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// handleClock serves GET and POST /emu/clock {"advance_seconds": N}:
// {"now": unix seconds}. Negative advances are refused.
func (e *Emulator) handleClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			AdvanceSeconds int64 `json:"advance_seconds"`
		}
		if err := decodeJSON(r, &req); err != nil || req.AdvanceSeconds < 0 {
			ctlError(w, http.StatusBadRequest, "want {\"advance_seconds\": N >= 0}")
			return
		}
		e.mu.Lock()
		e.offset += time.Duration(req.AdvanceSeconds) * time.Second
		e.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, map[string]int64{"now": e.virtualNow().Unix()})
}

// handleCalls serves GET /emu/calls: {"/path": count, ...}.
func (e *Emulator) handleCalls(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	out := make(map[string]int, len(e.calls))
	for k, v := range e.calls {
		out[k] = v
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handleCallsReset serves POST /emu/calls/reset.
func (e *Emulator) handleCallsReset(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.calls = map[string]int{}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleFault serves POST /emu/faults {fault}.
func (e *Emulator) handleFault(w http.ResponseWriter, r *http.Request) {
	var f fault
	if err := decodeJSON(r, &f); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !wechatPath(f.Path) {
		ctlError(w, http.StatusBadRequest, "path %q is not an emulated WeChat path", f.Path)
		return
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		ctlError(w, http.StatusBadRequest, "status: want an HTTP status")
		return
	}
	if f.DelayMS < 0 || f.Times < -1 {
		ctlError(w, http.StatusBadRequest, "delay_ms >= 0 and times >= -1")
		return
	}
	if f.Times == 0 {
		f.Times = 1
	}
	if f.DoubleRedirect {
		if f.Path != "/connect/oauth2/authorize" || f.ErrCode != 0 || f.Status != 0 || f.DelayMS != 0 || f.DropAnswer || f.OmitSnapshot {
			ctlError(w, http.StatusBadRequest, "double_redirect: path /connect/oauth2/authorize, alone")
			return
		}
		e.mu.Lock()
		e.doubles = f.Times
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, f)
		return
	}
	if f.OmitSnapshot && f.Path != "/sns/oauth2/access_token" {
		ctlError(w, http.StatusBadRequest, "omit_snapshot: path /sns/oauth2/access_token only")
		return
	}
	e.mu.Lock()
	e.faults[f.Path] = &f
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, f)
}

// handleClearFaults serves DELETE /emu/faults: every scripted fault, the
// double redirect included, is cleared.
func (e *Emulator) handleClearFaults(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.faults = map[string]*fault{}
	e.doubles = 0
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleVoidToken serves POST /emu/void-token: the current cgi-bin/token and
// stable_token tokens answer 40001 from now on.
func (e *Emulator) handleVoidToken(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	now := e.now()
	for _, tok := range []string{e.current, e.stable} {
		if tok != "" {
			e.voidLocked(tok, now)
		}
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleVoidWebTokens serves POST /emu/void-web-tokens {"openid"}: the web
// access_tokens and refresh_tokens issued so far to that user (to every
// user when openid is empty, as after an AppSecret reset) answer 42007 from
// now on, as after the user changed the WeChat password.
func (e *Emulator) handleVoidWebTokens(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID string `json:"openid"`
	}
	if err := decodeJSON(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	n := 0
	e.mu.Lock()
	for _, t := range e.webTokens {
		if req.OpenID == "" || t.openID == req.OpenID {
			t.voided = true
			n++
		}
	}
	for _, g := range e.refreshes {
		if req.OpenID == "" || g.openID == req.OpenID {
			g.voided = true
			n++
		}
	}
	e.mu.Unlock()
	e.behaviour(r.Context(), "tokens_voided", "web access_tokens and refresh_tokens voided (42007)", slog.String("openid", req.OpenID), slog.Int("tokens", n))
	writeJSON(w, http.StatusOK, map[string]int{"voided": n})
}

// handleIPWhitelist serves POST /emu/ip-whitelist {"ips":[...],
// "risk_confirm":bool}: with ips, cgi-bin/token and cgi-bin/stable_token
// from any other IP answer 40164; an empty list turns the check off. With
// risk_confirm (IP risk control), an IP outside the list answers 89503 the
// first time and 89501 after, until POST /emu/ip-whitelist/confirm adds it.
// The answer is the settings: {"ips","risk_confirm"}.
func (e *Emulator) handleIPWhitelist(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IPs         []string `json:"ips"`
		RiskConfirm bool     `json:"risk_confirm"`
	}
	if err := decodeJSON(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	for _, ip := range req.IPs {
		if net.ParseIP(ip) == nil {
			ctlError(w, http.StatusBadRequest, "ips: %q is not an IP address", ip)
			return
		}
	}
	e.mu.Lock()
	e.whitelist = append([]string(nil), req.IPs...)
	e.ipRisk = req.RiskConfirm
	e.ipSeen = map[string]bool{}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ips": req.IPs, "risk_confirm": req.RiskConfirm})
}

// handleIPConfirm serves POST /emu/ip-whitelist/confirm {"ip"}: the
// administrator confirms the IP; it joins the whitelist.
func (e *Emulator) handleIPConfirm(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IP string `json:"ip"`
	}
	if err := decodeJSON(r, &req); err != nil || net.ParseIP(req.IP) == nil {
		ctlError(w, http.StatusBadRequest, "want {\"ip\": address}")
		return
	}
	e.mu.Lock()
	e.whitelist = append(e.whitelist, req.IP)
	delete(e.ipSeen, req.IP)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"ip": req.IP})
}

// checkIP applies the IP whitelist and risk control to a credential call
// from r; it returns WeChat's errcode and errmsg, or 0.
func (e *Emulator) checkIP(r *http.Request) (int, string) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.whitelist) == 0 && !e.ipRisk {
		return 0, ""
	}
	for _, w := range e.whitelist {
		if w == ip {
			return 0, ""
		}
	}
	ctx := r.Context()
	if e.ipRisk {
		if e.ipSeen[ip] {
			e.behaviour(ctx, "ip_pending", "IP risk control: the IP still awaits the administrator, 89501", slog.String("ip", ip))
			return 89501, errMsgs[89501]
		}
		e.ipSeen[ip] = true
		e.behaviour(ctx, "ip_confirm", "IP risk control: a new IP needs the administrator's confirmation, 89503", slog.String("ip", ip))
		return 89503, errMsgs[89503]
	}
	v6 := ip
	if p := net.ParseIP(ip); p != nil && p.To4() != nil {
		v6 = "::ffff:" + ip
	}
	e.behaviour(ctx, "ip_whitelist", "the caller's IP is not in the API IP whitelist, 40164", slog.String("ip", ip))
	return 40164, "invalid ip " + ip + " ipv6 " + v6 + ", not in whitelist"
}

// handleFollow serves POST /emu/follow {"openid","follows"}: sets the follow
// state without pushing an event.
func (e *Emulator) handleFollow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID  string `json:"openid"`
		Follows bool   `json:"follows"`
	}
	if err := decodeJSON(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, "%v", err)
		return
	}
	e.mu.Lock()
	_, ok := e.users[req.OpenID]
	e.mu.Unlock()
	if !ok {
		ctlError(w, http.StatusNotFound, "unknown openid %q", req.OpenID)
		return
	}
	e.setFollow(req.OpenID, req.Follows, "", "")
	writeJSON(w, http.StatusOK, map[string]any{"openid": req.OpenID, "follows": req.Follows})
}

// handleCallback serves GET and POST /emu/callback {"url","token",
// "aes_key","mode"}: the callback settings (GET shows url and mode only).
func (e *Emulator) handleCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			URL    string `json:"url"`
			Token  string `json:"token"`
			AESKey string `json:"aes_key"`
			Mode   string `json:"mode"`
		}
		if err := decodeJSON(r, &req); err != nil {
			ctlError(w, http.StatusBadRequest, "%v", err)
			return
		}
		if err := e.SetCallback(req.URL, req.Token, req.AESKey, req.Mode); err != nil {
			ctlError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	e.mu.Lock()
	cb := e.cb
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"url": cb.url, "mode": cb.mode})
}

// handleAvatar serves GET /emu/avatar/{openid}/{size}: a square PNG in a
// colour derived from the openid; size 0 is 640 px, else 46, 64, 96 or 132.
func (e *Emulator) handleAvatar(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.Atoi(r.PathValue("size"))
	switch {
	case err != nil:
		http.NotFound(w, r)
		return
	case size == 0:
		size = 640
	case size != 46 && size != 64 && size != 96 && size != 132:
		http.NotFound(w, r)
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(r.PathValue("openid")))
	sum := h.Sum32()
	bg := color.RGBA{uint8(sum), uint8(sum >> 8), uint8(sum >> 16), 255}
	img := image.NewPaletted(image.Rect(0, 0, size, size), color.Palette{bg, color.White})
	// A light circle in the middle, so it reads as a face placeholder.
	c, rad := size/2, size/4
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			if dx, dy := x-c, y-c; dx*dx+dy*dy <= rad*rad {
				img.SetColorIndex(x, y, 1)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		http.Error(w, "avatar", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=86400")
	_, _ = w.Write(buf.Bytes())
}

type chatPageData struct {
	Users []pageUser
}

// handleChat serves GET /emu/chat: chat as a follower (calls /emu/send).
func (e *Emulator) handleChat(w http.ResponseWriter, r *http.Request) {
	var data chatPageData
	e.mu.Lock()
	for _, id := range e.order {
		data.Users = append(data.Users, e.pageUserLocked(e.users[id]))
	}
	e.mu.Unlock()
	e.render(w, http.StatusOK, "chat.html", data)
}

type indexPageData struct {
	AppID, OriginalID, PublicURL, CallbackURL, Mode string
	Domains                                         []string
	Users                                           []pageUser
	Paths                                           []string
}

// handleIndex serves GET /emu/: an overview page.
func (e *Emulator) handleIndex(w http.ResponseWriter, r *http.Request) {
	data := indexPageData{AppID: e.appID, OriginalID: e.originalID, Domains: e.domains, Paths: wechatPaths()}
	e.mu.Lock()
	data.PublicURL, data.CallbackURL, data.Mode = e.publicURL, e.cb.url, e.cb.mode
	for _, id := range e.order {
		data.Users = append(data.Users, e.pageUserLocked(e.users[id]))
	}
	e.mu.Unlock()
	sort.Strings(data.Paths)
	e.render(w, http.StatusOK, "index.html", data)
}
