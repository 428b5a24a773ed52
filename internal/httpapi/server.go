// Package httpapi is wxauth's HTTP surface: it mounts the OpenID Provider
// of package login (/login, /oauth/callback, /oauth/token, /userinfo and
// /me, /oauth/revoke, /oauth/introspect, /logout, discovery and RFC 8414
// metadata), cookie sessions (/session/*, /verify, JWKS), desktop QR login
// (/qr/*), the message callback mount (/wx), the JS-SDK signature
// (/jssdk/config), the internal access_token API and health endpoints.
// routes.go lists every endpoint; one file per area holds its handler
// makers.
//
// It imports login, session, callback, wechat, redirect, secret and store,
// and is imported only by cmd/authsvc, which builds every dependency and
// hands it to [NewServer].
package httpapi

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/login"
	"github.com/wxauth/wxauth/internal/metrics"
	"github.com/wxauth/wxauth/internal/proxy"
	"github.com/wxauth/wxauth/internal/qrlogin"
	"github.com/wxauth/wxauth/internal/redirect"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
	"github.com/wxauth/wxauth/web"
)

// Options are the dependencies and settings of [NewServer]. Every field
// without a default is required unless its comment says otherwise.
type Options struct {
	Logger    *slog.Logger
	PublicURL string // this service's base URL, no trailing slash; /oauth/callback hangs below it
	AppID     string
	Issuer    string // JWT iss, published in the discovery document
	Audience  string // JWT aud of access tokens (WXAUTH_AUDIENCE); no client_id may equal it
	JWTAlg    string // published in the discovery document

	Allow    *redirect.Allowlist
	WeChat   *wechat.Client
	Tokens   *wechat.TokenManager // global access_token and jsapi_ticket; nil disables /jssdk/config and /internal/*
	Sessions *session.Manager
	Cookies  *session.Cookies
	Box      *secret.Box  // seals web tokens at rest and duplicate-callback results
	Stores   store.Set    // Users, Records, Ping
	Callback http.Handler // the /wx handler (a *callback.Server); nil when the callback is not configured
	// QR logs desktop browsers in by scanning the Official Account's QR
	// code (/qr/*; /login sends non-WeChat browsers there); nil disables it.
	QR *qrlogin.Service
	// Clients are the registered OAuth/OIDC clients (WXAUTH_CLIENTS); nil
	// or empty leaves only the first-party cookie login.
	Clients *clients.Registry

	// Proxy serves the WeChat API proxy at /cgi-bin/ and authenticates the
	// clients allowed GET /internal/access-token (raw_access_token); nil
	// disables both.
	Proxy *proxy.Proxy
	// InsideWeChatCookie is login.Config.InsideWeChatCookie: set by
	// `authsvc dev` only.
	InsideWeChatCookie string

	AdminToken    string        // bearer token of /internal/*; empty (and no Proxy) removes those routes
	StateTTL      time.Duration // life of a login state record; default 10 min
	ProfileMaxAge time.Duration // /login without scope uses snsapi_base while the profile is younger; default 7 days
	Now           func() time.Time

	// Metrics receives HTTP, login and callback counts; nil records nothing.
	Metrics *metrics.Metrics
	// MetricsHandler serves GET /metrics (promhttp); nil leaves /metrics
	// off the router (WXAUTH_METRICS_LISTEN serves it elsewhere).
	MetricsHandler http.Handler
	// Limits are the per-IP rate limits and the trusted proxies; the zero
	// value applies the defaults of [Limits].
	Limits Limits
}

// built is what NewServer makes from Options for the routes: the OpenID
// Provider, the budget of WeChat QR codes per minute and the caps on open
// QR event streams.
type built struct {
	login   *login.Service
	budget  *qrBudget
	streams *streamLimiter
}

// NewServer builds the whole HTTP surface as one handler: the router of
// routes.go wrapped in recovery, request ids and access logging. It parses
// the page templates once; the error is a malformed template or a missing
// required option.
func NewServer(opts Options) (http.Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StateTTL == 0 {
		opts.StateTTL = 10 * time.Minute
	}
	if opts.ProfileMaxAge == 0 {
		opts.ProfileMaxAge = 7 * 24 * time.Hour
	}
	tmpl, err := web.Parse()
	if err != nil {
		return nil, err
	}
	pages := &pages{tmpl: tmpl, logger: opts.Logger}
	lg, err := login.New(login.Config{
		Logger: opts.Logger, PublicURL: opts.PublicURL, Issuer: opts.Issuer, Audience: opts.Audience, AppID: opts.AppID, IDTokenAlg: opts.JWTAlg,
		Clients: opts.Clients, WeChat: opts.WeChat, Sessions: opts.Sessions, Cookies: opts.Cookies, Box: opts.Box,
		Users: opts.Stores.Users, Records: opts.Stores.Records, Allow: opts.Allow, Pages: loginPages{pages}, QR: opts.QR != nil, InsideWeChatCookie: opts.InsideWeChatCookie,
		Observer: opts.Metrics.Login(), StateTTL: opts.StateTTL, ProfileMaxAge: opts.ProfileMaxAge, Now: opts.Now,
	})
	if err != nil {
		return nil, err
	}
	b := built{login: lg, budget: newQRBudget(opts.Limits.QRCreatePerMinute),
		streams: newStreamLimiter(opts.Limits.StreamsPerIP, opts.Limits.StreamsMax)}
	r := mux.NewRouter()
	addRoutes(r, opts, b, pages)
	labelRoutes(r, opts.Metrics)
	r.NotFoundHandler = handleNotFound(pages)
	r.MethodNotAllowedHandler = handleMethodNotAllowed(pages)
	var h http.Handler = r
	h = rateLimit(opts.Limits, pages, opts.Now, h)
	h = recoverer(opts.Logger, pages, h)
	h = observe(opts.Logger, opts.Metrics, h)
	return h, nil
}

type ctxKey int

// RequestID returns the request id of ctx (also the X-Request-Id response
// header), or "" outside a request.
func RequestID(ctx context.Context) string {
	if ri := infoOf(ctx); ri != nil {
		return ri.id
	}
	return ""
}

// statusRecorder passes a response through and keeps its status (the first
// WriteHeader, or 200 at the first Write) for observe's metrics and access
// line. It writes no body of its own.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// observe is the outermost middleware, once per request: it gives the
// request an id (X-Request-Id: the client's when it is a short token, else
// a random per-server prefix and a counter), puts the routeInfo (id, route
// template, WeChat errcode trace) in the context, and after the request
// records wxauth_http_requests_total and
// wxauth_http_request_duration_seconds by route template (m may be nil) and
// writes one access line at info level (warn for 5xx): method, route, the
// path only (never the query: /oauth/callback?code=... must not reach a
// log), status, duration, request id and, when a call to WeChat failed, its
// errcode.
func observe(logger *slog.Logger, m *metrics.Metrics, next http.Handler) http.Handler {
	prefix := randomString(10) + "-"
	var n atomic.Uint64
	unmatched := m.HTTPRoute("unmatched")
	// perRequest is what observe keeps per request, in one allocation.
	type perRequest struct {
		ri    routeInfo
		trace metrics.Trace
		sw    statusRecorder
		idHdr [1]string // the X-Request-Id header's value slice
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 || !isToken(id) {
			var b [40]byte
			id = string(strconv.AppendUint(append(b[:0], prefix...), n.Add(1), 36))
		}
		pr := &perRequest{sw: statusRecorder{ResponseWriter: w}}
		pr.idHdr[0] = id
		w.Header()["X-Request-Id"] = pr.idHdr[:]
		pr.ri = routeInfo{id: id, trace: &pr.trace}
		ctx := context.WithValue(metrics.ContextWithTrace(r.Context(), &pr.trace), routeInfoKey, &pr.ri)
		next.ServeHTTP(&pr.sw, r.WithContext(ctx))
		status := pr.sw.status
		if status == 0 {
			status = http.StatusOK
		}
		took := time.Since(start)
		route, rm := pr.ri.route, pr.ri.rm
		if route == "" {
			route, rm = "unmatched", unmatched
		}
		rm.Request(r.Method, status, took.Seconds())
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		if logger.Enabled(ctx, level) {
			attrs := []slog.Attr{slog.String("method", r.Method), slog.String("route", route),
				slog.String("path", r.URL.Path), slog.Int("status", status), slog.Duration("duration", took),
				slog.String("request_id", id)}
			if code := pr.trace.ErrCode(); code != "" {
				attrs = append(attrs, slog.String("wechat_errcode", code))
			}
			logger.LogAttrs(ctx, level, "request", attrs...)
		}
	})
}

// recoverer turns a panic into our 500 page (or JSON) with the request id:
// never a stack trace to the client.
func recoverer(logger *slog.Logger, p *pages, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("panic serving request", "path", r.URL.Path, "panic", v, "request_id", RequestID(r.Context()))
				p.error(w, r, errInternal)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// randomString returns n uniformly random base62 characters
// ([store.RandomBase62]: about 5.95 bits each; 22 characters carry 130 bits).
func randomString(n int) string { return store.RandomBase62(n) }

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// pages renders the H5 error page or a JSON error, by route.
type pages struct {
	tmpl   *template.Template
	logger *slog.Logger
}
