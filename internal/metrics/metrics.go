// Package metrics holds wxauth's Prometheus metric families and the small
// adapters that feed them: the observers the wechat client and the callback
// Server, the QR login and the OpenID Provider report to ([Metrics.WeChat],
// [Metrics.Callback], [Metrics.QRLogin], [Metrics.Login]), wrappers of the
// store interfaces that count backend failures, and the per-route request
// series of the HTTP layer. It never reads another
// package's traffic or logs: the package that knows a fact reports it.
// Nothing registers globally: [New] registers every family on the
// Registerer it is given, so tests build several instances in one process.
//
// It imports the standard library, client_golang, store (the wrappers),
// wechat, callback, qrlogin and login (their Observer types) only; httpapi and cmd/authsvc
// import it.
// Exposition format: https://prometheus.io/docs/instrumenting/exposition_formats/
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxauth/wxauth/internal/login"
	"github.com/wxauth/wxauth/internal/qrlogin"
)

// Metrics is every metric family of wxauth. A nil *Metrics is valid: every
// method is then a no-op, so callers need no nil checks.
type Metrics struct {
	// HTTPRequests is wxauth_http_requests_total{route,method,status}:
	// requests served, by gorilla/mux route template (not the raw path).
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration is wxauth_http_request_duration_seconds{route,method}:
	// time to serve a request, in seconds.
	HTTPDuration *prometheus.HistogramVec
	// Logins is wxauth_logins_total{scope,outcome}: web-authorization
	// callbacks by outcome (success, denied, snapshot, expired_code,
	// wechat_busy, error).
	Logins *prometheus.CounterVec
	// WeChatCalls is wxauth_wechat_calls_total{api,errcode}: HTTP calls to
	// WeChat by URL path; errcode is WeChat's errcode, "0" for success,
	// "http_<status>" for a non-200 answer and "transport" for no complete
	// answer.
	WeChatCalls *prometheus.CounterVec
	// WeChatDuration is wxauth_wechat_call_duration_seconds{api}, in seconds.
	WeChatDuration *prometheus.HistogramVec
	// CallbackMessages is wxauth_callback_messages_total{type,mode,outcome}:
	// /wx requests by MsgType (or "event:<Event>"), mode (plain, compat,
	// safe) and outcome (replied, success, duplicate, refused_<reason>).
	CallbackMessages *prometheus.CounterVec
	// TokenRefreshes is wxauth_token_refreshes_total{token,cause}: fetches
	// of the global access_token (token="access_token") and jsapi_ticket
	// (token="jsapi_ticket"); cause is "force_refresh" for a stable_token
	// call with force_refresh true, else "fetch".
	TokenRefreshes *prometheus.CounterVec
	// QRAttempts is wxauth_qr_login_attempts_active: QR logins started and
	// not yet finished or expired.
	QRAttempts prometheus.Gauge
	// StoreErrors is wxauth_store_errors_total{op}: store calls that failed
	// for a reason other than a normal outcome (not found, already exists,
	// reused, stale); op is "Interface.Method", e.g. "Records.Get".
	StoreErrors *prometheus.CounterVec
}

// New creates every family and registers it on reg. A nil reg creates the
// families unregistered (useful in tests of code that only records).
// Registering twice on one registry is a programming error and panics at
// startup, as [prometheus.Registerer.MustRegister] and a duplicate
// http.ServeMux pattern do; it never happens at request time.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		HTTPRequests: counterVec("wxauth_http_requests_total",
			"HTTP requests served, by route template, method and status.", "route", "method", "status"),
		HTTPDuration: histogramVec("wxauth_http_request_duration_seconds",
			"Time to serve an HTTP request, in seconds.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "route", "method"),
		Logins: counterVec("wxauth_logins_total",
			"Web-authorization logins by scope and outcome.", "scope", "outcome"),
		WeChatCalls: counterVec("wxauth_wechat_calls_total",
			"HTTP calls to WeChat's API by path and errcode.", "api", "errcode"),
		WeChatDuration: histogramVec("wxauth_wechat_call_duration_seconds",
			"Duration of calls to WeChat's API, in seconds.",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "api"),
		CallbackMessages: counterVec("wxauth_callback_messages_total",
			"Message callback requests by type, mode and outcome.", "type", "mode", "outcome"),
		TokenRefreshes: counterVec("wxauth_token_refreshes_total",
			"Fetches of the global access_token and jsapi_ticket by cause.", "token", "cause"),
		QRAttempts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wxauth_qr_login_attempts_active", Help: "QR login attempts started and not yet finished.",
		}),
		StoreErrors: counterVec("wxauth_store_errors_total",
			"Failed store operations by operation.", "op"),
	}
	if reg != nil {
		reg.MustRegister(m.HTTPRequests, m.HTTPDuration, m.Logins, m.WeChatCalls,
			m.WeChatDuration, m.CallbackMessages, m.TokenRefreshes, m.QRAttempts, m.StoreErrors)
	}
	return m
}

// Login returns the [login.Observer] that counts each login's WeChat leg
// in wxauth_logins_total{scope,outcome} (scope snsapi_base or
// snsapi_userinfo; outcome one of the login.Outcome values). A nil m
// returns nil (logins are then counted nowhere).
func (m *Metrics) Login() login.Observer {
	if m == nil {
		return nil
	}
	return loginObserver{m}
}

type loginObserver struct{ m *Metrics }

// LoginEnded implements [login.Observer].
func (o loginObserver) LoginEnded(scope string, outcome login.Outcome) {
	o.m.Logins.WithLabelValues(scope, string(outcome)).Inc()
}

// HTTPRequest records one served request: its route template, method,
// status and duration in seconds.
func (m *Metrics) HTTPRequest(route, method string, status int, seconds float64) {
	if m == nil {
		return
	}
	m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.HTTPDuration.WithLabelValues(route, method).Observe(seconds)
}

// CallbackMessage counts one /wx request; see [Metrics.CallbackMessages].
func (m *Metrics) CallbackMessage(typ, mode, outcome string) {
	if m == nil {
		return
	}
	m.CallbackMessages.WithLabelValues(typ, mode, outcome).Inc()
}

// QRAttemptStarted adds one active QR login attempt.
func (m *Metrics) QRAttemptStarted() {
	if m == nil {
		return
	}
	m.QRAttempts.Inc()
}

// QRAttemptEnded removes one active QR login attempt (finished, cancelled
// or expired).
func (m *Metrics) QRAttemptEnded() {
	if m == nil {
		return
	}
	m.QRAttempts.Dec()
}

// StoreError counts one failed store operation op ("Records.Get").
func (m *Metrics) StoreError(op string) {
	if m == nil {
		return
	}
	m.StoreErrors.WithLabelValues(op).Inc()
}

// QRLogin returns the qrlogin.Observer that keeps
// wxauth_qr_login_attempts_active: each attempt this instance created counts
// until it is completed or its life runs out. Nil for a nil *Metrics.
func (m *Metrics) QRLogin() qrlogin.Observer {
	if m == nil {
		return nil
	}
	return &qrAttempts{m: m, active: map[string]*time.Timer{}}
}

// qrAttempts is the active-attempts gauge's bookkeeping: one timer per
// attempt, ending it when its life runs out.
type qrAttempts struct {
	m      *Metrics
	mu     sync.Mutex
	active map[string]*time.Timer
}

// AttemptStarted implements [qrlogin.Observer]: the attempt counts as
// active until AttemptEnded or life has passed.
func (q *qrAttempts) AttemptStarted(id string, life time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.active[id]; ok {
		return
	}
	q.active[id] = time.AfterFunc(life, func() { q.AttemptEnded(id) })
	q.m.QRAttemptStarted()
}

// AttemptEnded implements [qrlogin.Observer].
func (q *qrAttempts) AttemptEnded(id string) {
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

// counterVec creates the counter family name with help text and labels,
// unregistered.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// histogramVec creates the histogram family name with help text, buckets
// (upper bounds, in the family's unit) and labels, unregistered.
func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}
