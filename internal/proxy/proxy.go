package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
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
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = orDefault(cfg.Timeout, DefaultTimeout)
		t.MaxIdleConnsPerHost = 64
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
	c.errcode = itoa(r.Code)
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

// staleToken reports whether errcode says WeChat refused the access_token.
func staleToken(code int) bool {
	return code == wechat.CodeInvalidCredential || code == wechat.CodeInvalidAccessToken || code == wechat.CodeAccessTokenExpired
}

// forward sends the call to WeChat and copies the answer back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, c *call) {
	ctx, cancel := context.WithTimeout(r.Context(), p.streamTimeout)
	defer cancel()
	// The server's own read and write timeouts are sized for small
	// requests; a media upload or download gets the call's bound.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(p.streamTimeout + 5*time.Second)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)

	b, ref := p.readBody(w, r)
	if ref != nil {
		c.refuse(w, ref)
		return
	}
	defer b.release()

	tok, err := p.tokens.AccessToken(ctx)
	if err != nil {
		p.log.WarnContext(ctx, "proxy: no access_token", "error", err.Error())
		c.refuse(w, refuseUnavailable("token_unavailable", "cannot get the access_token"))
		return
	}
	resp, ref := p.send(ctx, r, b, tok)
	if ref != nil {
		c.refuse(w, ref)
		return
	}
	ans := peek(resp)
	if ans.complete && ans.hasCode && staleToken(ans.code) {
		// compare-and-refresh: one refresh for every caller that used tok,
		// in every instance. A streamed body cannot be sent again: its
		// caller gets WeChat's answer, and its next call the new token.
		if err := p.tokens.Invalidate(ctx, tok); err != nil {
			p.log.WarnContext(ctx, "proxy: refresh the access_token", "error", err.Error())
		}
		if b.replayable() {
			if tok2, err := p.tokens.AccessToken(ctx); err == nil && tok2 != tok {
				if resp2, ref := p.send(ctx, r, b, tok2); ref == nil {
					resp.Body.Close()
					resp, ans = resp2, peek(resp2)
					c.retried = true
				}
			}
		}
	}
	defer resp.Body.Close()
	c.status = resp.StatusCode
	switch {
	case resp.StatusCode != http.StatusOK:
		c.errcode = "http_" + itoa(resp.StatusCode)
	case ans.hasCode:
		c.errcode = itoa(ans.code)
	default:
		c.errcode = "0"
	}
	copyHeaders(w.Header(), resp.Header)
	if ans.complete {
		w.Header().Set("Content-Length", itoa(len(ans.head)))
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := w.Write(ans.head); err != nil {
		return
	}
	if !ans.complete {
		buf := make([]byte, 32<<10)
		_, _ = io.CopyBuffer(w, resp.Body, buf)
	}
}

// send makes one call to WeChat with token tok. A connection refused
// before anything was sent is tried once more when the body can be sent
// again.
func (p *Proxy) send(ctx context.Context, r *http.Request, b *body, tok string) (*http.Response, *Refusal) {
	target := p.base + "/cgi-bin/" + strings.TrimPrefix(r.URL.Path, "/cgi-bin/") + "?" + withToken(r.URL.RawQuery, tok)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, r.Method, target, b.reader())
		if err != nil {
			return nil, refuseBadRequest(40097, "invalid args")
		}
		req.ContentLength = b.length
		if b.length == 0 {
			req.Body = nil
		}
		for _, k := range forwardRequestHeaders {
			if v := r.Header.Values(k); len(v) > 0 {
				req.Header[k] = v
			}
		}
		req.Header.Set("User-Agent", "wxauth-proxy")
		resp, err := p.rt.RoundTrip(req)
		if err == nil {
			return resp, nil
		}
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, refuseTooLarge(p.maxBody)
		case r.Context().Err() != nil:
			return nil, &Refusal{Status: 499, Code: -1, Reason: "canceled", Msg: "system error (wxauth: the caller went away)"}
		case attempt == 0 && dialRefused(err) && b.replayable():
			if !sleepCtx(ctx, dialRetryPause) {
				return nil, refuseUpstream(true)
			}
			continue
		}
		var ne net.Error
		return nil, refuseUpstream(errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout())
	}
}

// dialRefused reports whether err is a failure to connect: the request
// cannot have reached WeChat.
func dialRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// withToken returns the raw query without any access_token parameter and
// with access_token=tok appended; the other parameters keep their order and
// encoding.
func withToken(raw, tok string) string {
	var sb strings.Builder
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && k == "access_token" || key == "access_token" {
			continue
		}
		sb.WriteString(part)
		sb.WriteByte('&')
	}
	sb.WriteString("access_token=")
	sb.WriteString(url.QueryEscape(tok))
	return sb.String()
}

// forwardRequestHeaders are the caller's headers sent on to WeChat; its
// Authorization, cookies and anything else stay here.
var forwardRequestHeaders = []string{"Content-Type", "Accept", "Accept-Language"}

// forwardResponseHeaders are WeChat's headers returned to the caller.
var forwardResponseHeaders = []string{"Content-Type", "Content-Length", "Content-Disposition", "Content-Encoding",
	"Cache-Control", "Expires", "Last-Modified", "Etag", "Date"}

func copyHeaders(dst, src http.Header) {
	for _, k := range forwardResponseHeaders {
		if v := src.Values(k); len(v) > 0 {
			dst[k] = v
		}
	}
}

// answer is WeChat's answer with its head read.
type answer struct {
	head     []byte // what was read; the whole body when complete
	complete bool
	hasCode  bool
	code     int // errcode, when hasCode
}

// peek reads the body of a small JSON or text answer whole (at most
// peekLimit bytes) and finds its errcode; media and large answers are not
// read.
func peek(resp *http.Response) answer {
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	if !(strings.Contains(ct, "json") || strings.HasPrefix(ct, "text/") || ct == "") || resp.ContentLength > peekLimit {
		return answer{}
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, peekLimit+1))
	if err != nil || len(head) > peekLimit {
		// keep what was read; the rest streams after it
		return answer{head: head}
	}
	a := answer{head: head, complete: true}
	trimmed := bytes.TrimSpace(head)
	if len(trimmed) == 0 || trimmed[0] != '{' || !bytes.Contains(trimmed, []byte(`"errcode"`)) {
		return a
	}
	var env struct {
		ErrCode *int `json:"errcode"`
	}
	if json.Unmarshal(trimmed, &env) == nil && env.ErrCode != nil {
		a.hasCode, a.code = true, *env.ErrCode
	}
	return a
}

// body is a request body on its way to WeChat: kept whole in memory (buf,
// replayable) or streamed once (stream).
type body struct {
	buf     []byte
	stream  io.Reader
	length  int64 // -1 unknown
	sent    bool
	release func()
}

func (b *body) replayable() bool { return b.stream == nil }

// reader returns the body to send; a streamed body can be sent once (a
// second attempt then sends nothing more, and fails).
func (b *body) reader() io.Reader {
	if b.stream == nil {
		if len(b.buf) == 0 {
			return nil
		}
		return bytes.NewReader(b.buf)
	}
	if b.sent {
		return strings.NewReader("")
	}
	b.sent = true
	return b.stream
}

// readBody bounds r's body at p.maxBody and keeps it in memory when it is
// at most p.maxReplay bytes and the replay budget allows.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) (*body, *Refusal) {
	noop := func() {}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return &body{length: 0, release: noop}, nil
	}
	if r.ContentLength > p.maxBody {
		return nil, refuseTooLarge(p.maxBody)
	}
	in := http.MaxBytesReader(w, r.Body, p.maxBody)
	want := r.ContentLength // the exact size, or -1
	if want < 0 || want > p.maxReplay {
		want = p.maxReplay + 1 // read at most this much to learn whether it fits
	}
	if r.ContentLength > p.maxReplay || !p.replay.TryAcquire(want) {
		return &body{stream: in, length: r.ContentLength, release: noop}, nil
	}
	buf, err := io.ReadAll(io.LimitReader(in, want))
	if err != nil {
		p.replay.Release(want)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, refuseTooLarge(p.maxBody)
		}
		return nil, &Refusal{Status: http.StatusBadRequest, Code: -1, Reason: "canceled", Msg: "system error (wxauth: the request body could not be read)"}
	}
	if int64(len(buf)) > p.maxReplay {
		// Unknown length, larger than the replay bound: stream what was
		// read, then the rest.
		release := func() { p.replay.Release(want) }
		return &body{stream: io.MultiReader(bytes.NewReader(buf), in), length: -1, release: release}, nil
	}
	if extra := want - int64(len(buf)); extra > 0 {
		p.replay.Release(extra)
	}
	kept := int64(len(buf))
	return &body{buf: buf, length: kept, release: func() {
		if kept > 0 {
			p.replay.Release(kept)
		}
	}}, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
