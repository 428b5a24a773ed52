package httpapi

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the budgets and caps in [Limits].
const (
	// DefaultQRCreatePerMinute is the budget of WeChat QR codes per minute
	// (WXAUTH_QR_CREATE_PER_MINUTE): 86,400 a day at most.
	DefaultQRCreatePerMinute = 60
	// DefaultStreamsPerIP caps one client IP's open QR event streams
	// (WXAUTH_STREAMS_PER_IP).
	DefaultStreamsPerIP = 4
	// DefaultStreamsMax caps the open QR event streams in total
	// (WXAUTH_STREAMS_MAX).
	DefaultStreamsMax = 256
)

var (
	errQRBudget = apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Title: "Too many QR codes right now", TitleZh: "二维码生成过于频繁",
		Message:   "Too many people are signing in by QR code right now. Please try again in a minute, or open the page in WeChat.",
		MessageZh: "当前扫码登录人数过多，请一分钟后重试，或在微信中打开本页面。"}
	errStreamsPerIP = apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Title: "Too many open pages", TitleZh: "打开的页面过多",
		Message:   "Too many QR login pages are waiting from this address; this one checks every few seconds instead.",
		MessageZh: "该地址打开的扫码登录页面过多，本页面将改为每隔几秒查询一次。"}
	errStreamsFull = apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Title: "Too busy", TitleZh: "服务繁忙",
		Message:   "Too many QR login pages are waiting right now; this one checks every few seconds instead.",
		MessageZh: "当前等待扫码的页面过多，本页面将改为每隔几秒查询一次。"}
)

// qrBudget is the service-wide budget of WeChat QR codes: a token bucket
// of perMinute tokens refilled at perMinute a minute. A nil *qrBudget
// allows everything.
type qrBudget struct {
	lim *rate.Limiter
}

// newQRBudget returns the budget of perMinute QR codes a minute; 0 means
// DefaultQRCreatePerMinute, negative means no budget (nil).
func newQRBudget(perMinute int) *qrBudget {
	if perMinute < 0 {
		return nil
	}
	if perMinute == 0 {
		perMinute = DefaultQRCreatePerMinute
	}
	return &qrBudget{lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)}
}

// take spends one QR code at now; it returns 0 when allowed, else how long
// until one is available.
func (b *qrBudget) take(now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	return reserve(b.lim, now, time.Minute)
}

// retryAfter sets Retry-After to d in whole seconds (at least 1).
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
}

// streamLimiter counts the open long-lived responses (QR event streams)
// per client IP and in total. Its map holds only addresses with an open
// stream, so it is bounded by max.
type streamLimiter struct {
	perIP, max int

	mu    sync.Mutex
	total int
	byIP  map[netip.Addr]int
}

// newStreamLimiter caps streams at perIP per address and max in total; 0
// means the defaults.
func newStreamLimiter(perIP, max int) *streamLimiter {
	if perIP <= 0 {
		perIP = DefaultStreamsPerIP
	}
	if max <= 0 {
		max = DefaultStreamsMax
	}
	return &streamLimiter{perIP: perIP, max: max, byIP: map[netip.Addr]int{}}
}

// acquire opens a stream for ip: it returns the release function, or nil
// and the refusal (errStreamsPerIP, errStreamsFull).
func (s *streamLimiter) acquire(ip netip.Addr) (release func(), refused *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.byIP[ip] >= s.perIP:
		return nil, &errStreamsPerIP
	case s.total >= s.max:
		return nil, &errStreamsFull
	}
	s.byIP[ip]++
	s.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.byIP[ip]--; s.byIP[ip] <= 0 {
				delete(s.byIP, ip)
			}
		})
	}, nil
}
