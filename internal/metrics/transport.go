package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxInspect is the largest WeChat response body the [Transport] buffers to
// read its errcode, in bytes (1 MiB, the wechat client's own read limit).
// Larger bodies pass through unread and are labelled errcode "unread".
const maxInspect = 1 << 20

// Transport is an [http.RoundTripper] that counts each call to WeChat's API
// in wxauth_wechat_calls_total{api,errcode} and
// wxauth_wechat_call_duration_seconds{api}, and global token fetches in
// wxauth_token_refreshes_total. api is the URL path without its leading
// slash ("sns/oauth2/access_token"), never the query. errcode is WeChat's
// errcode read from the JSON body ({"errcode":N,"errmsg":"..."}), "0" for a
// 200 answer without one, "http_<status>" for any other status, and
// "transport" when no answer came. The body is buffered (at most 1 MiB) and
// restored, so the caller reads it unchanged.
//
// When the request's context carries a [Trace] (see [WithTrace]), the last
// non-zero errcode is also recorded there for the access log.
//
// https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
type Transport struct {
	// Base makes the request; nil means [http.DefaultTransport].
	Base http.RoundTripper
	// Metrics receives the counts; nil makes Transport a plain pass-through.
	Metrics *Metrics
}

// RoundTrip implements [http.RoundTripper]. It returns Base's error
// unchanged (after counting errcode "transport").
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	api := strings.TrimPrefix(req.URL.Path, "/")
	force := api == "cgi-bin/stable_token" && forceRefresh(req)
	start := time.Now()
	resp, err := base.RoundTrip(req)
	code := "transport"
	if err == nil {
		code = inspect(resp)
	}
	if t.Metrics != nil {
		t.Metrics.WeChatCalls.WithLabelValues(api, code).Inc()
		t.Metrics.WeChatDuration.WithLabelValues(api).Observe(time.Since(start).Seconds())
		if code == "0" {
			if token := tokenName(api); token != "" {
				cause := "fetch"
				if force {
					cause = "force_refresh"
				}
				t.Metrics.TokenRefreshes.WithLabelValues(token, cause).Inc()
			}
		}
	}
	if code != "0" {
		if tr, ok := req.Context().Value(traceKey{}).(*Trace); ok {
			tr.set(code)
		}
	}
	return resp, err
}

// tokenName names the global credential that api fetches, or "".
func tokenName(api string) string {
	switch api {
	case "cgi-bin/stable_token", "cgi-bin/token":
		return "access_token"
	case "cgi-bin/ticket/getticket":
		return "jsapi_ticket"
	}
	return ""
}

// forceRefresh reports whether a stable_token request body asks for
// force_refresh; it restores the body. The body holds the appsecret: it is
// only decoded here, never kept or logged.
func forceRefresh(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return false
	}
	var b []byte
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return false
		}
		b, _ = io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
	} else {
		var err error
		b, err = io.ReadAll(io.LimitReader(req.Body, 4096))
		rest := req.Body
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), rest), rest}
		if err != nil {
			return false
		}
	}
	var v struct {
		ForceRefresh bool `json:"force_refresh"`
	}
	return json.Unmarshal(b, &v) == nil && v.ForceRefresh
}

// inspect returns the errcode label of resp and restores its body.
func inspect(resp *http.Response) string {
	if resp.StatusCode != http.StatusOK {
		return "http_" + strconv.Itoa(resp.StatusCode)
	}
	if resp.Body == nil {
		return "0"
	}
	if resp.ContentLength > maxInspect {
		return "unread"
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxInspect+1))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), rest), rest}
	if err != nil {
		return "transport"
	}
	if len(b) > maxInspect {
		return "unread"
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "0" // an image (showqrcode) or other non-JSON answer
	}
	if !bytes.Contains(trimmed, []byte(`"errcode"`)) {
		return "0" // the usual success answer: no need to decode it
	}
	var env struct {
		ErrCode *int `json:"errcode"`
	}
	if json.Unmarshal(trimmed, &env) != nil || env.ErrCode == nil {
		return "0"
	}
	return strconv.Itoa(*env.ErrCode)
}

// Trace collects, for one incoming request, the WeChat errcode of the
// calls made on its behalf, for the access log line. Safe for concurrent
// use.
type Trace struct {
	mu      sync.Mutex
	errcode string
}

type traceKey struct{}

// WithTrace returns ctx carrying a new [Trace] that [Transport] fills for
// requests made with ctx (or a context derived from it).
func WithTrace(ctx context.Context) (context.Context, *Trace) {
	t := &Trace{}
	return context.WithValue(ctx, traceKey{}, t), t
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
