package proxy

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

// Defaults of [Config].
const (
	// DefaultRateLimit is a client's sustained rate of proxied calls, in
	// calls per second per instance, when its rate_limit is 0.
	DefaultRateLimit = 50
	// DefaultRateBurst is how many calls a client may make at once before
	// the rate applies, when its rate_burst is 0.
	DefaultRateBurst = 100
	// DefaultTokenTTL is the life of a proxy token (WeChat's 7200 s).
	DefaultTokenTTL = 7200 * time.Second
	// DefaultMaxBody bounds a request body, in bytes (20 MiB): WeChat's
	// largest media (10 MB images and videos) plus multipart framing.
	DefaultMaxBody = 20 << 20
	// DefaultMaxReplay is the largest request body kept in memory to be
	// sent again after a refused token, in bytes (1 MiB); larger bodies
	// stream and are not retried.
	DefaultMaxReplay = 1 << 20
	// DefaultReplayBudget bounds the bytes of all bodies kept for replay at
	// once (64 MiB); past it, bodies stream without a retry.
	DefaultReplayBudget = 64 << 20
	// DefaultTimeout is how long WeChat may take to answer once the request
	// is sent (its response headers).
	DefaultTimeout = 10 * time.Second
	// DefaultStreamTimeout bounds a whole call, body upload and download
	// included (2 min: 10 MB at about 85 KB/s).
	DefaultStreamTimeout = 2 * time.Minute

	// peekLimit is the largest answer read whole to find its errcode, in
	// bytes; WeChat's errors are far smaller, and larger answers (and any
	// media) stream unread.
	peekLimit = 64 << 10
	// maxAPILabels bounds the distinct api label values of metrics; further
	// paths are counted as "other".
	maxAPILabels = 256
	// dialRetryPause separates a refused connection from the one retry.
	dialRetryPause = 100 * time.Millisecond
)

// Observer receives one report per /cgi-bin/ request; metrics.ProxyCalls
// implements it. Methods are called concurrently and must not block.
type Observer interface {
	// ProxyCall reports a call answered by WeChat (or a proxy token
	// issued, api "token" or "stable_token"): client is the client_id, api
	// the path below /cgi-bin/ ("other" past a bound), errcode WeChat's
	// ("0" for success, "http_<status>" for a non-200 answer), retried
	// whether it was sent again after a refused token, d the time taken.
	ProxyCall(client, api, errcode string, retried bool, d time.Duration)
	// ProxyRefusal reports a request refused by the proxy itself; client
	// is "-" when unknown and reason is [Refusal.Reason].
	ProxyRefusal(client, reason string)
}

// Config configures a [Proxy]. APIBase, Tokens, Clients and Records are
// required; zero values of the others mean their defaults.
type Config struct {
	// APIBase is WeChat's API base URL without a trailing slash
	// (WXAUTH_WECHAT_API_BASE, https://api.weixin.qq.com); calls go to
	// APIBase + the request's path and query.
	APIBase string
	// Tokens owns the global access_token (a *wechat.TokenManager).
	Tokens wechat.TokenSource
	// Clients is the client registry (WXAUTH_CLIENTS).
	Clients *clients.Registry
	// Records keeps the proxy tokens, shared by every instance.
	Records store.Records
	// Verifier checks client_credentials JWTs sent as Bearer tokens; nil
	// refuses them (40001).
	Verifier TokenVerifier
	// Transport makes the calls to WeChat; nil means a clone of
	// http.DefaultTransport with ResponseHeaderTimeout set to Timeout.
	// Redirects are never followed.
	Transport http.RoundTripper
	// Timeout is how long WeChat may take to send its response headers
	// after the request is sent; default [DefaultTimeout]. Used only when
	// Transport is nil.
	Timeout time.Duration
	// StreamTimeout bounds each call as a whole; default
	// [DefaultStreamTimeout]. The call also ends when the caller goes away.
	StreamTimeout time.Duration
	// RateLimit and RateBurst apply to clients whose rate_limit or
	// rate_burst is 0; defaults [DefaultRateLimit], [DefaultRateBurst].
	// Limits are per instance.
	RateLimit float64
	RateBurst int
	// TokenTTL is the life of a proxy token; default [DefaultTokenTTL].
	TokenTTL time.Duration
	// MaxBody, MaxReplay and ReplayBudget bound request bodies, in bytes;
	// defaults [DefaultMaxBody], [DefaultMaxReplay], [DefaultReplayBudget].
	MaxBody      int64
	MaxReplay    int64
	ReplayBudget int64
	// Observer receives metrics; nil records nothing.
	Observer Observer
	// Logger receives one "wechat proxy" line per request (client, api,
	// errcode, status, duration; never a token, secret or query); nil
	// discards.
	Logger *slog.Logger
}

// Proxy is the http.Handler of /cgi-bin/. It is safe for concurrent use.
type Proxy struct {
	base          string
	tokens        wechat.TokenSource
	clients       *clients.Registry
	records       store.Records
	verifier      TokenVerifier
	rt            http.RoundTripper
	streamTimeout time.Duration
	rateLimit     float64
	rateBurst     int
	tokenTTL      time.Duration
	maxBody       int64
	maxReplay     int64
	replay        *semaphore.Weighted
	obs           Observer
	log           *slog.Logger

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // by client_id; the registry bounds it
	labels   map[string]bool          // api label values seen
}

var _ http.Handler = (*Proxy)(nil)

// New checks cfg and returns the proxy. The error names the missing or
// invalid field.
func New(cfg Config) (*Proxy, error) {
	switch {
	case cfg.Tokens == nil:
		return nil, errors.New("proxy: Config.Tokens is required")
	case cfg.Clients == nil:
		return nil, errors.New("proxy: Config.Clients is required")
	case cfg.Records == nil:
		return nil, errors.New("proxy: Config.Records is required")
	}
	u, err := url.Parse(cfg.APIBase)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return nil, errors.New("proxy: Config.APIBase must be an http(s) URL without a query")
	}
	if cfg.RateLimit < 0 || cfg.RateBurst < 0 || cfg.MaxBody < 0 || cfg.MaxReplay < 0 || cfg.ReplayBudget < 0 ||
		cfg.Timeout < 0 || cfg.StreamTimeout < 0 || cfg.TokenTTL < 0 {
		return nil, errors.New("proxy: Config limits and durations must not be negative")
	}
	p := &Proxy{
		base: strings.TrimRight(cfg.APIBase, "/"), tokens: cfg.Tokens, clients: cfg.Clients, records: cfg.Records,
		verifier: cfg.Verifier, rt: cfg.Transport, streamTimeout: orDefault(cfg.StreamTimeout, DefaultStreamTimeout),
		rateLimit: orDefault(cfg.RateLimit, DefaultRateLimit), rateBurst: orDefault(cfg.RateBurst, DefaultRateBurst),
		tokenTTL: orDefault(cfg.TokenTTL, DefaultTokenTTL), maxBody: orDefault(cfg.MaxBody, DefaultMaxBody),
		maxReplay: orDefault(cfg.MaxReplay, DefaultMaxReplay), obs: cfg.Observer, log: cfg.Logger,
		limiters: map[string]*rate.Limiter{}, labels: map[string]bool{},
	}
	p.replay = semaphore.NewWeighted(orDefault(cfg.ReplayBudget, DefaultReplayBudget))
	if p.maxReplay > p.maxBody {
		p.maxReplay = p.maxBody
	}
	if p.rt == nil {
		t := wechat.NewTransport()
		t.ResponseHeaderTimeout = orDefault(cfg.Timeout, DefaultTimeout)
		p.rt = t
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// call is the record of one request, for the log line and the metrics.
type call struct {
	api     string
	client  string // client_id, "-" until known
	label   string // api label of metrics
	errcode string // WeChat's errcode or the refusal's
	status  int
	reason  string // refusal reason; "" when WeChat answered
	retried bool
}

func (c *call) refuse(w http.ResponseWriter, r *Refusal) {
	r.write(w)
	c.errcode = strconv.Itoa(r.Code)
	c.status = r.Status
	c.reason = r.Reason
}

// ServeHTTP serves /cgi-bin/<api>: cgi-bin/token and cgi-bin/stable_token
// issue proxy tokens; every other path is authenticated, checked and
// forwarded (see the package comment).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := &call{api: strings.TrimPrefix(r.URL.Path, "/cgi-bin/"), client: "-"}
	defer func() { p.report(r, w, c, time.Since(start)) }()
	switch c.api {
	case "token", "stable_token":
		c.label = c.api
		p.serveToken(w, r, c)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		c.refuse(w, refuseBadRequest(43002, "require GET or POST method"))
		return
	}
	cl, ref := p.authenticate(r)
	if ref != nil {
		c.refuse(w, ref)
		return
	}
	c.client = cl.ID
	switch {
	case !cl.HasGrant(clients.GrantClientCredentials):
		c.refuse(w, refuseNotAllowed("client is not registered for client_credentials"))
		return
	case !validAPI(c.api):
		c.refuse(w, refuseNotAllowed("not a WeChat API path"))
		return
	case !cl.AllowsAPI(c.api):
		c.refuse(w, refuseNotAllowed("cgi-bin/"+c.api+" is not in this client's apis"))
		return
	}
	if ref := p.allow(cl); ref != nil {
		c.refuse(w, ref)
		return
	}
	c.label = p.apiLabel(c.api)
	p.forward(w, r, c)
}

// validAPI reports whether api (the path below /cgi-bin/) looks like a
// WeChat API path: non-empty segments of [A-Za-z0-9_.-], no "." or "..".
func validAPI(api string) bool {
	if api == "" || len(api) > 256 {
		return false
	}
	for seg := range strings.SplitSeq(api, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			ch := seg[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || ch == '.') {
				return false
			}
		}
	}
	return true
}

// allow spends one call of c's rate.
func (p *Proxy) allow(c *clients.Client) *Refusal {
	p.mu.Lock()
	lim := p.limiters[c.ID]
	if lim == nil {
		r, b := c.RateLimit, c.RateBurst
		if r == 0 {
			r = p.rateLimit
		}
		if b == 0 {
			b = p.rateBurst
		}
		lim = rate.NewLimiter(rate.Limit(r), b)
		p.limiters[c.ID] = lim
	}
	p.mu.Unlock()
	if lim.Allow() {
		return nil
	}
	return refuseRateLimited(max(1, int(math.Ceil(1/float64(lim.Limit())))))
}

// apiLabel returns api as a metric label, or "other" once maxAPILabels
// distinct values were seen.
func (p *Proxy) apiLabel(api string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.labels[api] {
		return api
	}
	if len(p.labels) >= maxAPILabels {
		return "other"
	}
	p.labels[api] = true
	return api
}

// report writes the call's log line and metrics.
func (p *Proxy) report(r *http.Request, w http.ResponseWriter, c *call, d time.Duration) {
	ctx := r.Context()
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if p.obs != nil {
		if c.reason != "" {
			p.obs.ProxyRefusal(c.client, c.reason)
		} else {
			p.obs.ProxyCall(c.client, c.label, c.errcode, c.retried, d)
		}
	}
	level := slog.LevelInfo
	if c.status >= 500 {
		level = slog.LevelWarn
	}
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("client", c.client), slog.String("api", "cgi-bin/"+truncate(c.api, 128)),
		slog.String("method", r.Method), slog.String("errcode", c.errcode), slog.Int("status", c.status),
		slog.Duration("duration", d)}
	if c.reason != "" {
		attrs = append(attrs, slog.String("refused", c.reason))
	}
	if c.retried {
		attrs = append(attrs, slog.Bool("retried", true))
	}
	if id := w.Header().Get("X-Request-Id"); id != "" {
		attrs = append(attrs, slog.String("request_id", id))
	}
	p.log.LogAttrs(ctx, level, "wechat proxy", attrs...)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
