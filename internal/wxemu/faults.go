package wxemu

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Scripted faults (POST /emu/faults): the wrapper of every WeChat path that
// counts calls and plays the fault a test asked for.

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
