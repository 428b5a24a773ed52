package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of [Limits].
const (
	// DefaultRateLimit is the sustained rate of the limited endpoints, in
	// requests per second per client IP (WXAUTH_RATE_LIMIT).
	DefaultRateLimit = 10
	// DefaultRateBurst is how many requests a client IP may make at once
	// before the rate applies (WXAUTH_RATE_BURST).
	DefaultRateBurst = 40
	// maxRequestBody caps every request body, in bytes (1 MiB, the /wx
	// limit); JSON endpoints cap theirs lower (maxJSONBody).
	maxRequestBody = 1 << 20
	// DefaultRateClients is how many client IPs the limits track at once
	// (WXAUTH_RATE_CLIENTS).
	DefaultRateClients = 16384
	// limiterIdle is how long a client IP's limiter is kept without use.
	limiterIdle = 10 * time.Minute
	// sweepEvery is how often idle limiters are looked for.
	sweepEvery = time.Minute
	// fullSweepEvery is how often a full table of limiters is scanned for
	// refilled buckets.
	fullSweepEvery = 100 * time.Millisecond
)

// limitedPaths are the endpoints under per-IP rate limits: the ones that
// create server state or call WeChat for anyone who asks.
var limitedPaths = [...]string{"/login", "/oauth/callback", "/session/refresh", "/qr/login", "/qr/sessions"}

// Limits configures the per-IP rate limits of /login, /oauth/callback,
// /session/refresh, /qr/login and /qr/sessions, whose X-Forwarded-For is
// believed, the budget of WeChat QR codes and the caps on event streams.
type Limits struct {
	// Rate is the sustained rate per client IP, in requests per second; 0
	// means DefaultRateLimit, a negative value turns the limits off.
	Rate float64
	// Burst is the bucket size per client IP, in requests; 0 means
	// DefaultRateBurst.
	Burst int
	// TrustedProxies are the peers (nginx, a load balancer) whose
	// X-Forwarded-For names the client; from any other peer the header is
	// ignored and the peer address is the client (WXAUTH_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// Clients is how many client IPs have a bucket at once; 0 means
	// DefaultRateClients. A bucket that has refilled is dropped when room
	// is needed (a new one would be the same); when every bucket is in use,
	// a new address gets 503 on the limited paths until one refills.
	Clients int
	// QRCreatePerMinute is the budget of WeChat QR codes (POST
	// cgi-bin/qrcode/create) per minute, all clients together, spent by
	// /qr/login and POST /qr/sessions; a whole minute's budget may be
	// spent at once. 0 means DefaultQRCreatePerMinute; negative turns it
	// off (WXAUTH_QR_CREATE_PER_MINUTE).
	QRCreatePerMinute int
	// StreamsPerIP caps the open QR event streams of one client IP; 0
	// means DefaultStreamsPerIP (WXAUTH_STREAMS_PER_IP).
	StreamsPerIP int
	// StreamsMax caps the open QR event streams in total; 0 means
	// DefaultStreamsMax (WXAUTH_STREAMS_MAX).
	StreamsMax int
}

var errTooManyRequests = apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
	Title: "Too many requests", TitleZh: "请求过于频繁",
	Message: "Too many requests from this address. Please wait a moment and try again.", MessageZh: "请求过于频繁，请稍候再试。"}

var errTooManyClients = apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
	Title: "Too busy", TitleZh: "服务繁忙",
	Message: "The service is receiving too many requests right now. Please try again in a few seconds.", MessageZh: "当前请求过多，请几秒后再试。"}

// rateLimit answers 429 (our page or JSON, with Retry-After in seconds)
// when a client IP exceeds its limit on a limited path, and caps every
// request body but the proxy's (/cgi-bin/) at maxRequestBody bytes (reads
// past it fail with *http.MaxBytesError).
func rateLimit(l Limits, p *pages, now func() time.Time, next http.Handler) http.Handler {
	if l.Rate == 0 {
		l.Rate = DefaultRateLimit
	}
	if l.Burst <= 0 {
		l.Burst = DefaultRateBurst
	}
	if l.Clients <= 0 {
		l.Clients = DefaultRateClients
	}
	if now == nil {
		now = time.Now
	}
	ls := &limiters{rate: rate.Limit(l.Rate), burst: l.Burst, max: l.Clients, m: map[netip.Addr]*limiterEntry{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The WeChat API proxy (/cgi-bin/) streams media uploads and bounds
		// its bodies itself.
		if r.Body != nil && r.Body != http.NoBody && !strings.HasPrefix(r.URL.Path, "/cgi-bin/") {
			if r.ContentLength > maxRequestBody {
				p.error(w, r, errTooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		}
		if l.Rate > 0 && r.Method != http.MethodOptions && isLimited(r.URL.Path) {
			ip := ClientIP(r, l.TrustedProxies)
			wait, full := ls.admit(ip, now())
			if wait > 0 {
				retryAfter(w, wait)
				if full {
					p.error(w, r, errTooManyClients)
				} else {
					p.error(w, r, errTooManyRequests)
				}
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isLimited(path string) bool {
	for _, p := range limitedPaths {
		if path == p {
			return true
		}
	}
	return false
}

// limiters is a token bucket per client IP, at most max of them. A bucket
// idle long enough to have refilled (burst/rate) is what a new one would
// be, so dropping it loses nothing: the sweep every sweepEvery drops those
// idle for limiterIdle, and a full table drops every refilled one at once.
// When none has refilled, the new address waits (503) instead of growing
// the table.
type limiters struct {
	rate  rate.Limit
	burst int
	max   int // 0 is unbounded

	mu        sync.Mutex
	m         map[netip.Addr]*limiterEntry
	lastSweep time.Time
	lastFull  time.Time // last scan of a full table
}

type limiterEntry struct {
	lim  *rate.Limiter
	last time.Time
}

// admit spends one token of ip's bucket at now; it returns 0 when allowed,
// else how long until a token is available, with full true when the wait is
// for room in a full table rather than for ip's own bucket.
func (ls *limiters) admit(ip netip.Addr, now time.Time) (wait time.Duration, full bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if now.Sub(ls.lastSweep) >= sweepEvery {
		ls.drop(now, limiterIdle)
		ls.lastSweep = now
	}
	e, ok := ls.m[ip]
	if !ok {
		if ls.max > 0 && len(ls.m) >= ls.max {
			// One scan per fullSweepEvery at most: a flood of new
			// addresses must not make every request walk the table.
			if now.Sub(ls.lastFull) >= fullSweepEvery {
				ls.drop(now, ls.refill())
				ls.lastFull = now
			}
			if len(ls.m) >= ls.max {
				return max(ls.refill(), time.Second), true
			}
		}
		e = &limiterEntry{lim: rate.NewLimiter(ls.rate, ls.burst)}
		ls.m[ip] = e
	}
	e.last = now
	return reserve(e.lim, now, time.Second), false
}

// reserve spends one token of lim at now; it returns 0 when allowed, else
// how long until a token is available (none spent then), or refused when
// lim can never grant one.
func reserve(lim *rate.Limiter, now time.Time, refused time.Duration) time.Duration {
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return refused
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// refill is how long an untouched bucket takes to fill up: burst/rate.
func (ls *limiters) refill() time.Duration {
	if ls.rate <= 0 {
		return limiterIdle
	}
	return time.Duration(float64(ls.burst) / float64(ls.rate) * float64(time.Second))
}

// drop removes the buckets unused for idle or more at now. The caller holds
// ls.mu.
func (ls *limiters) drop(now time.Time, idle time.Duration) {
	for k, e := range ls.m {
		if now.Sub(e.last) >= idle {
			delete(ls.m, k)
		}
	}
}

// size returns how many client IPs have a bucket.
func (ls *limiters) size() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.m)
}

// ClientIP returns the address of the client that made r. The TCP peer is
// the client unless it is in trusted (a reverse proxy): then the
// X-Forwarded-For list is read from the right, skipping trusted hops, and
// the first address not in trusted is the client. A malformed entry stops
// the walk at the last good hop. IPv4-mapped IPv6 addresses are unmapped.
// The zero Addr is returned only when RemoteAddr has no IP (never with
// net/http's server).
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseIP(r.RemoteAddr)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			ip := parseIP(strings.TrimSpace(parts[j]))
			if !ip.IsValid() {
				return client
			}
			client = ip
			if !inPrefixes(ip, trusted) {
				return client
			}
		}
	}
	return client
}

// parseIP reads "ip", "ip:port" or "[ip]:port".
func parseIP(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.Trim(s, "[]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
