package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Endpoint is where the WeChat servers are: production, or the wxemu
// emulator in development and tests. It is plain data.
type Endpoint struct {
	// AuthorizeURL is the web-authorization page, production
	// "https://open.weixin.qq.com/connect/oauth2/authorize".
	AuthorizeURL string
	// APIBase is the root of the HTTP API, production
	// "https://api.weixin.qq.com" (no trailing slash needed).
	APIBase string
	// MPBase is the root of showqrcode, production "https://mp.weixin.qq.com".
	MPBase string
}

// ProductionEndpoint returns WeChat's production servers.
func ProductionEndpoint() Endpoint {
	return Endpoint{
		AuthorizeURL: "https://open.weixin.qq.com/connect/oauth2/authorize",
		APIBase:      "https://api.weixin.qq.com",
		MPBase:       "https://mp.weixin.qq.com",
	}
}

// EmulatorEndpoint returns the endpoints of a WeChat emulator (wxemu)
// serving every WeChat host at base, such as "http://127.0.0.1:8081":
// AuthorizeURL is base + "/connect/oauth2/authorize", APIBase and MPBase are
// base. A trailing slash of base is ignored.
func EmulatorEndpoint(base string) Endpoint {
	base = strings.TrimRight(base, "/")
	return Endpoint{
		AuthorizeURL: base + "/connect/oauth2/authorize",
		APIBase:      base,
		MPBase:       base,
	}
}

// Config configures a [Client]. AppID, AppSecret, every Endpoint field and
// HTTPClient (with a non-zero Timeout) are required.
type Config struct {
	// AppID is the Official Account's appid ("wx" + 16 hex characters).
	AppID string
	// AppSecret is the Official Account's AppSecret. It never appears in a
	// log line or an error string.
	AppSecret string
	// Endpoint says where WeChat is; see [ProductionEndpoint] and
	// [EmulatorEndpoint].
	Endpoint Endpoint
	// HTTPClient makes every request. Its Timeout bounds each attempt; it
	// must not be zero (no timeout).
	HTTPClient *http.Client
	// Logger receives one debug line per call (API path, status, errcode,
	// attempt, duration; never a query) and a warning per retry. Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock used for token expiry. Nil means time.Now.
	Now func() time.Time
	// Observer is told of every HTTP attempt and every credential refresh
	// (metrics). Nil reports nothing.
	Observer Observer
}

// Client calls WeChat's HTTP API for one Official Account. It is safe for
// concurrent use.
type Client struct {
	appID, secret string
	ep            Endpoint
	api, mp       *url.URL
	authPrefix    string // AuthorizeURL + "?appid=" + appid + "&redirect_uri="
	hc            *http.Client
	log           *slog.Logger
	now           func() time.Time
	// backoff is the wait before retry attempt n (0-based); tests set it to
	// zero.
	backoff func(n int) time.Duration
	br      *breaker // stops calling WeChat while it keeps failing
	obs     Observer // nil: nothing reported
}

// NewClient returns a Client for cfg. The error names the first missing or
// malformed field (e.g. "wechat: Config.AppSecret is required"); it never
// contains the secret.
func NewClient(cfg Config) (*Client, error) {
	switch {
	case cfg.AppID == "":
		return nil, errors.New("wechat: Config.AppID is required")
	case cfg.AppSecret == "":
		return nil, errors.New("wechat: Config.AppSecret is required")
	case cfg.Endpoint.AuthorizeURL == "":
		return nil, errors.New("wechat: Config.Endpoint.AuthorizeURL is required")
	case cfg.Endpoint.APIBase == "":
		return nil, errors.New("wechat: Config.Endpoint.APIBase is required")
	case cfg.Endpoint.MPBase == "":
		return nil, errors.New("wechat: Config.Endpoint.MPBase is required")
	case cfg.HTTPClient == nil:
		return nil, errors.New("wechat: Config.HTTPClient is required")
	case cfg.HTTPClient.Timeout <= 0:
		return nil, errors.New("wechat: Config.HTTPClient.Timeout must be > 0")
	}
	if strings.ContainsAny(cfg.AppID, "&#?=/ \t\r\n") {
		return nil, errors.New("wechat: Config.AppID contains URL syntax characters")
	}
	if _, err := absURL(cfg.Endpoint.AuthorizeURL); err != nil {
		return nil, fmt.Errorf("wechat: Config.Endpoint.AuthorizeURL: %w", err)
	}
	api, err := absURL(cfg.Endpoint.APIBase)
	if err != nil {
		return nil, fmt.Errorf("wechat: Config.Endpoint.APIBase: %w", err)
	}
	mp, err := absURL(cfg.Endpoint.MPBase)
	if err != nil {
		return nil, fmt.Errorf("wechat: Config.Endpoint.MPBase: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{
		appID:      cfg.AppID,
		secret:     cfg.AppSecret,
		ep:         cfg.Endpoint,
		api:        api,
		mp:         mp,
		authPrefix: cfg.Endpoint.AuthorizeURL + "?appid=" + url.QueryEscape(cfg.AppID) + "&redirect_uri=",
		hc:         cfg.HTTPClient,
		log:        log,
		now:        now,
		backoff:    jitteredBackoff,
		br:         &breaker{now: now},
		obs:        cfg.Observer,
	}, nil
}

// AppID returns the Official Account's appid the Client was made with.
func (c *Client) AppID() string { return c.appID }

// absURL parses s as an absolute http(s) URL without query or fragment.
func absURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("not an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("must have no query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Retry policy of every call.
const (
	maxAttempts   = 4                      // first try + 3 retries
	backoffBase   = 100 * time.Millisecond // wait before the first retry, doubled each time
	maxBodyBytes  = 1 << 20                // longest response read, 1 MiB
	maxRetryPause = 2 * time.Second        // longest wait between attempts
)

// jitteredBackoff returns backoffBase * 2^n, jittered to between 50% and
// 150%, at most maxRetryPause.
func jitteredBackoff(n int) time.Duration {
	d := backoffBase << n
	if d > maxRetryPause || d <= 0 {
		d = maxRetryPause
	}
	return d/2 + rand.N(d)
}

// request describes one call to WeChat.
type request struct {
	api    string     // path under base, e.g. "sns/oauth2/access_token"
	base   *url.URL   // c.api or c.mp
	method string     // GET or POST
	query  url.Values // may hold secrets: never logged
	body   []byte     // JSON body of a POST
	// retryTooFrequent says 45011 may be retried (the call is harmless to
	// repeat and not itself rate limited per day).
	retryTooFrequent bool
	// raw returns the body as is (images) instead of checking errcode.
	raw bool
	// sendOnce says the call consumes what it carries (a web-authorization
	// code works once): once the request may have reached WeChat it is never
	// sent again, since a second try could only meet 40163. Only failures
	// that provably sent nothing (no request header was written: a dial
	// error, a refused connection) and WeChat's own answers -1 (and 45011
	// with retryTooFrequent) are retried; any other failure after sending
	// is returned wrapped in [ErrAnswerLost].
	sendOnce bool
}

// envelope is the error part of every JSON answer.
type envelope struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// do runs r with retries and returns the response body (at most 1 MiB)
// once it carries errcode 0 or none. Errors: *Error, *StatusError, a
// redacted *url.Error, ctx.Err() (joined with the last failure); for a
// sendOnce request, a failure after sending wrapped in ErrAnswerLost.
func (c *Client) do(ctx context.Context, r request) (body []byte, err error) {
	if err := c.br.allow(); err != nil {
		return nil, fmt.Errorf("wechat: %s: %w", r.api, err)
	}
	defer func() { c.br.record(ctx, err) }()
	for attempt := 0; ; attempt++ {
		start := time.Now()
		body, status, sent, err := c.once(ctx, r)
		answered := err == nil
		if answered {
			err = checkBody(r, status, body)
		}
		took := time.Since(start)
		c.logCall(ctx, r.api, status, err, attempt, took)
		c.observeCall(ctx, r.api, answered, status, took, err)
		if err == nil {
			return body, nil
		}
		if r.sendOnce && sent && !isAnswer(err) {
			// WeChat may have acted on the request (consumed the code)
			// and only its answer is missing: never send it again.
			return nil, &answerLostError{api: r.api, err: err}
		}
		if attempt+1 >= maxAttempts || !c.retryable(ctx, r, err) {
			return nil, err
		}
		wait := c.backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return nil, err
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: retrying",
			slog.String("api", r.api), slog.Int("attempt", attempt+1), slog.Duration("wait", wait), slog.String("error", err.Error()))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("wechat: %s: %w; last failure: %w", r.api, ctx.Err(), err)
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return nil, fmt.Errorf("wechat: %s: %w; last failure: %w", r.api, ctx.Err(), err)
		}
	}
}

// once makes one HTTP request and reads at most maxBodyBytes of the answer.
// sent reports whether the request may have reached the server: for a
// sendOnce request, whether its header was written (httptrace WroteHeaders);
// otherwise always true.
func (c *Client) once(ctx context.Context, r request) (body []byte, status int, sent bool, err error) {
	var wrote atomic.Bool
	if r.sendOnce {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	} else {
		wrote.Store(true)
	}
	body, status, err = c.send(ctx, r)
	return body, status, wrote.Load(), err
}

// noReplayBody is the empty body of a sendOnce GET. A request whose Body is
// not nil, not http.NoBody and has no GetBody is not "replayable" for
// net/http's Transport, which otherwise re-sends an idempotent request by
// itself when a reused connection breaks after the request was written
// (net/http Transport docs: "Transport only retries a request upon
// encountering a network error if ... the request is idempotent"). It
// reads as empty, so nothing is sent on the wire.
type noReplayBody struct{}

func (noReplayBody) Read([]byte) (int, error) { return 0, io.EOF }
func (noReplayBody) Close() error             { return nil }

// send makes the HTTP request of once.
func (c *Client) send(ctx context.Context, r request) ([]byte, int, error) {
	u := *r.base
	u.Path = u.Path + "/" + r.api
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, "", body)
	if err != nil {
		return nil, 0, fmt.Errorf("wechat: %s: %w", r.api, redact(err))
	}
	req.URL = &u
	req.Host = u.Host
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if r.sendOnce && r.body == nil {
		req.Body, req.GetBody, req.ContentLength = noReplayBody{}, nil, 0
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, redact(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("wechat: %s: read response: %w", r.api, redact(err))
	}
	if len(b) > maxBodyBytes {
		return nil, resp.StatusCode, fmt.Errorf("wechat: %s: response larger than %d bytes", r.api, maxBodyBytes)
	}
	return b, resp.StatusCode, nil
}

// checkBody turns a non-200 status into *StatusError and a non-zero errcode
// into *Error.
func checkBody(r request, status int, body []byte) error {
	if status != http.StatusOK {
		b := body
		if len(b) > maxErrorBody {
			b = b[:maxErrorBody]
		}
		return &StatusError{API: r.api, StatusCode: status, Body: string(b)}
	}
	if r.raw && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return nil
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		if r.raw {
			return nil
		}
		return fmt.Errorf("wechat: %s: decode response: %w", r.api, err)
	}
	if env.ErrCode != 0 {
		return &Error{API: r.api, Code: env.ErrCode, Msg: env.ErrMsg}
	}
	return nil
}

// isAnswer reports whether err is WeChat's own answer (an errcode), which
// says what WeChat did with the request, or an HTTP 4xx, which a gateway
// answers without passing the request on.
func isAnswer(err error) bool {
	var we *Error
	var se *StatusError
	return errors.As(err, &we) || errors.As(err, &se) && se.StatusCode < 500
}

// retryable reports whether err may go away on a retry of r while ctx lives.
// A sendOnce request reaches here only with WeChat's answer or a failure
// that sent nothing.
func (c *Client) retryable(ctx context.Context, r request, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if IsCode(err, CodeBusy) || r.retryTooFrequent && IsCode(err, CodeTooFrequent) {
		return true
	}
	if r.sendOnce {
		var ue *url.Error
		return errors.As(err, &ue)
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 500
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Timeout() || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
	}
	return false
}

// logCall writes one debug line per attempt: path, status, errcode, never
// the query.
func (c *Client) logCall(ctx context.Context, api string, status int, err error, attempt int, took time.Duration) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("api", api), slog.Int("status", status), slog.Int("attempt", attempt), slog.Duration("took", took)}
	var we *Error
	if errors.As(err, &we) {
		attrs = append(attrs, slog.Int("errcode", we.Code))
	} else if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "wechat: call", attrs...)
}

// marshalJSON encodes v as WeChat reads it: UTF-8 as is, and &, <, >
// unescaped (menu URLs keep their query).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// getJSON runs r and decodes its body into out.
func (c *Client) getJSON(ctx context.Context, r request, out any) error {
	body, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("wechat: %s: decode response: %w", r.api, err)
	}
	return nil
}
