package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxauth/wxauth/internal/metrics"
	"github.com/wxauth/wxauth/internal/qrlogin"
	"github.com/wxauth/wxauth/internal/wechat"
)

// routeInfo is filled while a request is served: the gorilla/mux route
// template that matched (set by [routeLabel] inside the router) and the
// WeChat errcodes of the calls made for it (filled by metrics.Transport).
// It lives in the request context for the access log and the metrics.
type routeInfo struct {
	route string
	trace *metrics.Trace
}

const routeInfoKey ctxKey = 1

func infoOf(ctx context.Context) *routeInfo {
	ri, _ := ctx.Value(routeInfoKey).(*routeInfo)
	return ri
}

// routeOf returns the route template of the request being served: "/login",
// "/qr/sessions/{id}"; "unmatched" for 404 and 405 answers, so that a scan of
// random paths cannot create label values.
func routeOf(ctx context.Context) string {
	if ri := infoOf(ctx); ri != nil && ri.route != "" {
		return ri.route
	}
	return "unmatched"
}

// errcodeOf returns the last failing WeChat errcode label of the request
// ("-1", "40029", "http_502"), or "".
func errcodeOf(ctx context.Context) string {
	if ri := infoOf(ctx); ri != nil {
		return ri.trace.ErrCode()
	}
	return ""
}

// instrument records wxauth_http_requests_total{route,method,status} and
// wxauth_http_request_duration_seconds{route,method} for every request,
// labelled by route template, not by raw path, and follows QR login
// attempts for wxauth_qr_login_attempts_active. It puts the routeInfo in
// the context first, so handlers further in (access log, router) fill and
// read it. With a nil o.Metrics only the routeInfo is provided.
func instrument(o Options, next http.Handler) http.Handler {
	m := o.Metrics
	var qr *qrTracker
	if m != nil && o.QR != nil {
		qr = &qrTracker{m: m, life: o.QR.TTL() + qrlogin.CompleteWindow, active: map[string]*time.Timer{}}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, trace := metrics.WithTrace(r.Context())
		ri := &routeInfo{trace: trace}
		ctx = context.WithValue(ctx, routeInfoKey, ri)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		route := routeOf(ctx)
		m.HTTPRequest(route, method(r.Method), status, time.Since(start).Seconds())
		if qr != nil {
			qr.observe(route, r.URL.Path, status, w.Header())
		}
	})
}

// qrTracker counts the QR login attempts of this instance that started
// and have not yet completed or outlived their life (the scanning TTL plus
// qrlogin.CompleteWindow). An attempt starts when /qr/login or POST
// /qr/sessions answers with the attempt's binding cookie (its Path names
// the id) and ends at a successful /qr/sessions/{id}/complete or when its
// life is over, whichever comes first.
type qrTracker struct {
	m    *metrics.Metrics
	life time.Duration

	mu     sync.Mutex
	active map[string]*time.Timer
}

func (q *qrTracker) observe(route, path string, status int, h http.Header) {
	switch {
	case (route == "/qr/login" || route == "/qr/sessions") && status < 300:
		for _, c := range h.Values("Set-Cookie") {
			if id, ok := qrCookieID(c); ok {
				q.start(id)
			}
		}
	case route == "/qr/sessions/{id}/complete" && status < 400:
		rest := strings.TrimPrefix(path, "/qr/sessions/")
		if id, ok := strings.CutSuffix(rest, "/complete"); ok {
			q.end(id)
		}
	}
}

// qrCookieID returns the attempt id named by the Path of a binding cookie
// ("...; Path=/qr/sessions/ID/; ...").
func qrCookieID(setCookie string) (string, bool) {
	if !strings.HasPrefix(setCookie, qrCookie+"=") {
		return "", false
	}
	_, after, ok := strings.Cut(setCookie, "Path=/qr/sessions/")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(after, "/")
	if !ok || id == "" || len(id) > 64 || !isToken(id) {
		return "", false
	}
	return id, true
}

func (q *qrTracker) start(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.active[id]; ok {
		return
	}
	q.active[id] = time.AfterFunc(q.life, func() { q.end(id) })
	q.m.QRAttemptStarted()
}

func (q *qrTracker) end(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.active[id]
	if !ok {
		return
	}
	t.Stop()
	delete(q.active, id)
	q.m.QRAttemptEnded()
}

// routeLabel is router middleware (mux.Router.Use): it runs after a route
// matched and records the route's path template.
func routeLabel(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri := infoOf(r.Context()); ri != nil {
			if cur := mux.CurrentRoute(r); cur != nil {
				if tpl, err := cur.GetPathTemplate(); err == nil {
					ri.route = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// method bounds the method label to the methods the service knows.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
		return m
	}
	return "other"
}

// countLogin counts one login outcome (metrics.LoginSuccess, ...) for the
// requested scope.
func countLogin(o Options, rec stateRecord, outcome string) {
	o.Metrics.Login(rec.Scope, outcome)
}

// countLoginErr counts a failed login by the kind of err: an expired or
// used code, WeChat busy (after retries), or any other error.
func countLoginErr(o Options, rec stateRecord, err error) {
	outcome := metrics.LoginError
	switch {
	case wechat.IsCode(err, wechat.CodeInvalidCode, wechat.CodeCodeUsed, wechat.CodeCodeExpired):
		outcome = metrics.LoginExpiredCode
	case wechat.Temporary(err), errors.Is(err, context.DeadlineExceeded):
		outcome = metrics.LoginWeChatBusy
	}
	o.Metrics.Login(rec.Scope, outcome)
}
