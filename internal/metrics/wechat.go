package metrics

import (
	"context"
	"strconv"
	"sync"

	"github.com/wxauth/wxauth/internal/wechat"
)

// WeChat returns the [wechat.Observer] that counts each call to WeChat's API
// in wxauth_wechat_calls_total{api,errcode} and
// wxauth_wechat_call_duration_seconds{api}, and each refresh of the global
// credentials in wxauth_token_refreshes_total{token,cause}. api is the URL
// path without its leading slash ("sns/oauth2/access_token"), never the
// query. errcode is WeChat's errcode ("0" for success), "http_<status>" for
// a non-200 answer and "transport" when no complete answer came. cause is
// "force_refresh" for a stable_token fetch with force_refresh true, else
// "fetch".
//
// When the call's context carries a [Trace] (see [ContextWithTrace]), the last
// errcode other than "0" is also recorded there for the access log.
//
// A nil m returns nil (the wechat client then reports nothing).
//
// https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
func (m *Metrics) WeChat() wechat.Observer {
	if m == nil {
		return nil
	}
	return wechatObserver{m}
}

type wechatObserver struct{ m *Metrics }

var _ wechat.Observer = wechatObserver{}

// Call implements [wechat.Observer].
func (o wechatObserver) Call(ctx context.Context, c wechat.Call) {
	code := errcodeLabel(c)
	o.m.WeChatCalls.WithLabelValues(c.API, code).Inc()
	o.m.WeChatDuration.WithLabelValues(c.API).Observe(c.Duration.Seconds())
	if code != "0" {
		if tr, ok := ctx.Value(traceKey{}).(*Trace); ok {
			tr.set(code)
		}
	}
}

// CredentialRefreshed implements [wechat.Observer].
func (o wechatObserver) CredentialRefreshed(_ context.Context, name string, forced bool) {
	cause := "fetch"
	if forced {
		cause = "force_refresh"
	}
	o.m.TokenRefreshes.WithLabelValues(name, cause).Inc()
}

// errcodeLabel is the errcode label of c; see [Metrics.WeChat].
func errcodeLabel(c wechat.Call) string {
	switch {
	case c.StatusCode == 0:
		return "transport"
	case c.StatusCode != 200:
		return "http_" + strconv.Itoa(c.StatusCode)
	case c.ErrCode == 0:
		return "0"
	}
	return strconv.Itoa(c.ErrCode)
}

// Trace collects, for one incoming request, the WeChat errcode of the
// calls made on its behalf, for the access log line. Safe for concurrent
// use.
type Trace struct {
	mu      sync.Mutex
	errcode string
}

type traceKey struct{}

// ContextWithTrace returns ctx carrying t, a zero Trace the caller
// allocated (inside a larger per-request value, to save an allocation):
// the observer of [Metrics.WeChat] fills it for calls made with ctx (or a
// context derived from it).
func ContextWithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

func (t *Trace) set(code string) {
	t.mu.Lock()
	t.errcode = code
	t.mu.Unlock()
}

// ErrCode returns the last non-success errcode label seen ("-1", "40029",
// "http_502", "transport"), or "" when every call succeeded or none was
// made. A nil Trace returns "".
func (t *Trace) ErrCode() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.errcode
}
