package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/internal/config"
	"github.com/wxauth/wxauth/internal/httpapi"
	"github.com/wxauth/wxauth/internal/logx"
	"github.com/wxauth/wxauth/internal/metrics"
	"github.com/wxauth/wxauth/internal/proxy"
	"github.com/wxauth/wxauth/internal/qrlogin"
	"github.com/wxauth/wxauth/internal/redirect"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

// shutdownTimeout bounds how long in-flight requests may finish after
// SIGTERM.
const shutdownTimeout = 10 * time.Second

// runServe is `authsvc serve [--config FILE] [--addr HOST:PORT]`.
func runServe(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "optional YAML configuration file (the environment wins); also WXAUTH_CONFIG")
	addr := fs.String("addr", "", "listen address, overriding WXAUTH_LISTEN")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(getenv, *configFile)
	if err != nil {
		var p config.Problems
		if errors.As(err, &p) {
			return fmt.Errorf("configuration:\n%w", err)
		}
		return err
	}
	if *addr != "" {
		cfg.Listen = *addr
	}
	logger, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return listenError(cfg.Listen, err, "WXAUTH_LISTEN or --addr")
	}
	svc, err := newService(ctx, cfg, logger, time.Now)
	if err != nil {
		ln.Close()
		return err
	}
	defer svc.close()
	if cfg.PprofListen != "" {
		go servePprof(ctx, cfg.PprofListen, logger)
	}
	if cfg.MetricsListen != "" {
		go serveMetrics(ctx, cfg.MetricsListen, svc.metrics, logger)
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	return serveHTTP(ctx, ln, svc.handler, logger)
}

// service is the running wxauth: its handler and what must be stopped.
type service struct {
	handler http.Handler
	metrics http.Handler   // GET /metrics of the service's registry
	closers []func() error // in order of opening; closed in reverse
	cancel  context.CancelFunc
}

func (s *service) close() {
	s.cancel()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// newService opens the stores and builds every component from cfg, and
// starts the background workers (credential refresh, key rotation, rules
// reload), which stop when close is called.
func newService(ctx context.Context, cfg *config.Config, logger *slog.Logger, now func() time.Time) (svc *service, err error) {
	ctx, cancel := context.WithCancel(ctx)
	svc = &service{cancel: cancel}
	opened := svc // svc is nil by the time an error return runs the defer
	defer func() {
		if err != nil {
			opened.close()
		}
	}()
	// zitadel/oidc's op package logs through slog's default logger (its
	// routes at start, every OAuth error answered): route it to ours, in
	// our format, warnings and above only.
	slog.SetDefault(slog.New(warnFloor{logger.With("component", "oidc").Handler()}))
	stores, err := openStores(ctx, cfg, logger, now)
	if err != nil {
		return nil, err
	}
	svc.closers = append(svc.closers, stores.Close)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	met := metrics.New(reg)
	metrics.RegisterRecordEvictions(reg, stores.Evictions)
	svc.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	stores = met.Stores(stores)

	var previous [][]byte
	if cfg.SecretKeyPrevious != nil {
		previous = append(previous, cfg.SecretKeyPrevious)
	}
	box, err := secret.NewBox(cfg.SecretKey, previous...)
	if err != nil {
		return nil, fmt.Errorf("WXAUTH_SECRET_KEY: %w", err)
	}
	allow, err := redirect.Parse(cfg.AllowedRedirects)
	if err != nil {
		return nil, fmt.Errorf("WXAUTH_ALLOWED_REDIRECTS: %w", err)
	}
	httpClient := wechat.NewHTTPClient(cfg.WeChatTimeout)
	wx, err := wechat.NewClient(wechat.Config{
		AppID: cfg.AppID, AppSecret: cfg.AppSecret, HTTPClient: httpClient, Logger: logger, Now: now, Observer: met.WeChat(),
		Endpoint: wechat.Endpoint{
			AuthorizeURL: cfg.WeChatOpenBase + "/connect/oauth2/authorize",
			APIBase:      cfg.WeChatAPIBase,
			MPBase:       cfg.WeChatMPBase,
		},
	})
	if err != nil {
		return nil, err
	}
	tokens, err := wechat.NewTokenManager(wx, wechat.TokenConfig{
		API: cfg.TokenAPI, Cache: stores.TokenCache, Locker: stores.Locker, Box: box,
	})
	if err != nil {
		return nil, err
	}
	go tokens.Run(ctx)

	sessions, err := session.NewManager(ctx, session.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Alg: cfg.JWTAlg, ExtraAlgs: idTokenAlgs(cfg),
		AccessTTL: cfg.AccessTokenTTL, RefreshTTL: cfg.RefreshTokenTTL, KeyRotation: cfg.KeyRotation,
		RefreshGrace: cfg.RefreshGrace, VerifyCacheSize: cfg.VerifyCacheSize, Box: box, Now: now, Logger: logger,
	}, session.Stores{Keys: stores.Keys, RefreshTokens: stores.RefreshTokens, Records: stores.Records, Users: stores.Users})
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	go sessions.Run(ctx)
	cookieKeys := [][]byte{cfg.SecretKey}
	cookieKeys = append(cookieKeys, previous...)
	cookies, err := session.NewCookies(session.CookieConfig{Keys: cookieKeys, Secure: strings.HasPrefix(cfg.PublicURL, "https://"),
		Domain: cfg.CookieDomain})
	if err != nil {
		return nil, err
	}

	var cb http.Handler
	var qr *qrlogin.Service
	if cfg.CallbackToken != "" {
		// QR login needs the scan events of /wx: it exists only with the
		// callback, and its handler comes first in the chain.
		qr, err = qrlogin.New(qrlogin.Config{
			AppID: cfg.AppID, WeChat: wechat.NewAPI(wx, tokens), Users: stores.Users, Records: stores.Records,
			Broker: stores.Broker, Logger: logger, Now: now, Observer: met.QRLogin(),
		})
		if err != nil {
			return nil, err
		}
		cb, err = newCallback(ctx, cfg, stores, logger, now, met, qr)
		if err != nil {
			return nil, err
		}
	}
	// The WeChat API proxy (/cgi-bin/): registered clients (WXAUTH_CLIENTS)
	// call WeChat through wxauth and never hold the access_token.
	var wxProxy *proxy.Proxy
	if len(cfg.Clients.All()) > 0 {
		wxProxy, err = proxy.New(proxy.Config{
			APIBase: cfg.WeChatAPIBase, Tokens: tokens, Clients: cfg.Clients, Records: stores.Records,
			Verifier: proxy.SessionVerifier(sessions), Timeout: cfg.WeChatTimeout,
			Observer: metrics.NewProxyCalls(reg), Logger: logger,
		})
		if err != nil {
			return nil, err
		}
	}

	h, err := httpapi.NewServer(httpapi.Options{
		Logger: logger, PublicURL: cfg.PublicURL, AppID: cfg.AppID, Issuer: cfg.Issuer, Audience: cfg.Audience, JWTAlg: cfg.JWTAlg,
		Allow: allow, WeChat: wx, Tokens: tokens, Sessions: sessions, Cookies: cookies, Box: box,
		Stores: stores, Callback: cb, QR: qr, Clients: cfg.Clients, AdminToken: cfg.AdminToken, ProfileMaxAge: cfg.ProfileMaxAge, Now: now,
		Metrics: met, MetricsHandler: mainMetrics(cfg, svc.metrics), Limits: limits(cfg),
		Proxy: wxProxy, InsideWeChatCookie: cfg.InsideWeChatCookie,
	})
	if err != nil {
		return nil, err
	}
	svc.handler = h
	return svc, nil
}

// warnFloor is a slog.Handler that passes warnings and errors only.
type warnFloor struct{ slog.Handler }

// Enabled reports whether lv is at least warn and the handler takes it.
func (w warnFloor) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= slog.LevelWarn && w.Handler.Enabled(ctx, lv)
}

// WithAttrs keeps the floor.
func (w warnFloor) WithAttrs(as []slog.Attr) slog.Handler { return warnFloor{w.Handler.WithAttrs(as)} }

// WithGroup keeps the floor.
func (w warnFloor) WithGroup(name string) slog.Handler { return warnFloor{w.Handler.WithGroup(name)} }

// idTokenAlgs are the algorithms the key manager keeps a key of besides
// WXAUTH_JWT_ALG: RS256, which OpenID Connect requires every provider to
// offer for ID tokens, and each client's id_token_signed_response_alg.
func idTokenAlgs(cfg *config.Config) []string {
	algs := []string{"RS256"}
	for _, c := range cfg.Clients.All() {
		if c.IDTokenAlg != "" && !slices.Contains(algs, c.IDTokenAlg) {
			algs = append(algs, c.IDTokenAlg)
		}
	}
	return algs
}

// newCallback builds the /wx handler: QR login's scan events (when qr is
// not nil), the rules file (reloaded on SIGHUP and when it changes), then
// the forwarder, then "success".
func newCallback(ctx context.Context, cfg *config.Config, stores store.Set, logger *slog.Logger, now func() time.Time, met *metrics.Metrics, qr *qrlogin.Service) (http.Handler, error) {
	var chain []callback.Handler
	if qr != nil {
		chain = append(chain, qr)
	}
	if cfg.CallbackRules != "" {
		rules, err := callback.NewReloader(cfg.CallbackRules, logger)
		if err != nil {
			return nil, fmt.Errorf("WXAUTH_CALLBACK_RULES: %w", err)
		}
		go rules.Watch(ctx)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			defer signal.Stop(hup)
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if err := rules.Reload(); err != nil {
						logger.Error("reload callback rules", "err", err)
					} else {
						logger.Info("callback rules reloaded")
					}
				}
			}
		}()
		chain = append(chain, rules)
	}
	if cfg.CallbackForwardURL != "" {
		fwd, err := callback.NewForwarder(callback.ForwardConfig{
			URL: cfg.CallbackForwardURL, Secret: cfg.CallbackForwardSecret,
			HTTPClient: wechat.NewHTTPClient(5 * time.Second),
		})
		if err != nil {
			return nil, fmt.Errorf("WXAUTH_CALLBACK_FORWARD_URL: %w", err)
		}
		chain = append(chain, fwd)
	}
	srv, err := callback.NewServer(callback.Config{
		Token: cfg.CallbackToken, AESKey: cfg.EncodingAESKey, PreviousAESKey: cfg.EncodingAESKeyPrevious,
		AppID: cfg.AppID, OriginalID: cfg.OriginalID, Mode: cfg.CallbackMode, MaxSkew: cfg.CallbackMaxSkew,
		Records: stores.Records, Logger: logger, Now: now, Observer: met.Callback(),
		// The QR login and the rules answer from memory within their
		// context; a forwarder waits on the network and keeps its own
		// goroutine, so that WeChat gets "success" at the budget.
		Inline: cfg.CallbackForwardURL == "",
	}, callback.First(chain...))
	if err != nil {
		return nil, fmt.Errorf("callback: %w", err)
	}
	return srv, nil
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully:
// stop accepting, let in-flight requests finish within shutdownTimeout.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// servePprof serves net/http/pprof on its own address (WXAUTH_PPROF_LISTEN).
func servePprof(ctx context.Context, addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	serveAux(ctx, "pprof", addr, mux, logger)
}

// newLogger builds the process logger: JSON (default) or text on w, behind
// the redaction layer (logx), so no secret reaches a line.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("WXAUTH_LOG_LEVEL: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(logx.New(slog.NewTextHandler(w, opts))), nil
	}
	return slog.New(logx.New(slog.NewJSONHandler(w, opts))), nil
}

// mainMetrics returns the /metrics handler of the main listener: h, or nil
// when WXAUTH_METRICS_LISTEN moves /metrics to its own address.
func mainMetrics(cfg *config.Config, h http.Handler) http.Handler {
	if cfg.MetricsListen != "" {
		return nil
	}
	return h
}

// limits maps the WXAUTH_RATE_*, WXAUTH_TRUSTED_PROXIES,
// WXAUTH_QR_CREATE_PER_MINUTE and WXAUTH_STREAMS_* settings to httpapi's;
// WXAUTH_RATE_LIMIT=0 turns the per-IP rate limits off (not the QR budget
// or the stream caps).
func limits(cfg *config.Config) httpapi.Limits {
	l := httpapi.Limits{Rate: cfg.RateLimit, Burst: cfg.RateBurst, TrustedProxies: cfg.TrustedProxies,
		Clients: cfg.RateClients, QRCreatePerMinute: cfg.QRCreatePerMinute,
		StreamsPerIP: cfg.StreamsPerIP, StreamsMax: cfg.StreamsMax}
	if cfg.RateLimit == 0 {
		l.Rate = -1
	}
	return l
}

// serveMetrics serves GET /metrics alone on addr (WXAUTH_METRICS_LISTEN).
func serveMetrics(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	serveAux(ctx, "metrics", addr, mux, logger)
}

// listenError explains a failed listen: for a port in use it names the
// setting that moves it, since "address already in use" alone gives no
// next step.
func listenError(addr string, err error, setting string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen %s: the port is already in use (another authsvc, or another program: `ss -ltnp | grep %s` shows which); stop it or choose another address with %s: %w",
			addr, portOfAddr(addr), setting, err)
	}
	return fmt.Errorf("listen %s: %w", addr, err)
}

// portOfAddr returns the port of host:port, or addr itself.
func portOfAddr(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil {
		return ":" + port
	}
	return addr
}

// serveAux serves h on addr, an address of its own, until ctx ends; what
// ("pprof", "metrics") names it in the log. A failed listen is logged, not
// returned: the service runs on without it.
func serveAux(ctx context.Context, what, addr string, h http.Handler, logger *slog.Logger) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error(what+" listen", "addr", addr, "err", err)
		return
	}
	logger.Info(what+" listening", "addr", ln.Addr().String())
	serveHTTP(ctx, ln, h, logger)
}
