package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/web"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for name, tc := range map[string]struct {
		remote string
		xff    []string
		want   string
	}{
		"DirectNoHeader":         {"203.0.113.5:1234", nil, "203.0.113.5"},
		"UntrustedPeerSpoofs":    {"203.0.113.5:1234", []string{"198.51.100.1"}, "203.0.113.5"},
		"TrustedProxy":           {"10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		"ChainSkipsTrustedHops":  {"10.1.2.3:80", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		"ClientPrependsSpoof":    {"10.1.2.3:80", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		"SeveralHeaderLines":     {"10.1.2.3:80", []string{"1.1.1.1", "198.51.100.7"}, "198.51.100.7"},
		"AllTrusted":             {"10.1.2.3:80", []string{"10.4.4.4"}, "10.4.4.4"},
		"GarbageStopsWalk":       {"10.1.2.3:80", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		"GarbageAfterClient":     {"10.1.2.3:80", []string{"<script>, 198.51.100.1"}, "198.51.100.1"},
		"EmptyHeader":            {"10.1.2.3:80", []string{""}, "10.1.2.3"},
		"IPv6Trusted":            {"[::1]:80", []string{"2001:db8::5"}, "2001:db8::5"},
		"IPv4MappedPeer":         {"[::ffff:10.1.2.3]:80", []string{"198.51.100.1"}, "198.51.100.1"},
		"IPv4MappedClient":       {"10.1.2.3:80", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		"ZonedClient":            {"10.1.2.3:80", []string{"fe80::1%eth0"}, "fe80::1"},
		"PortInForwardedAddress": {"10.1.2.3:80", []string{"198.51.100.1:5555"}, "198.51.100.1"},
		"NoPortRemote":           {"203.0.113.5", nil, "203.0.113.5"},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/login", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, trusted); got.String() != tc.want {
				t.Errorf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("NoTrustedProxies", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/login", nil)
		r.RemoteAddr = "127.0.0.1:5"
		r.Header.Set("X-Forwarded-For", "198.51.100.1")
		if got := ClientIP(r, nil); got.String() != "127.0.0.1" {
			t.Errorf("ClientIP = %s: X-Forwarded-For believed without WXAUTH_TRUSTED_PROXIES", got)
		}
	})
}

func TestLimiters_Eviction(t *testing.T) {
	ls := &limiters{rate: 1, burst: 2, m: map[netip.Addr]*limiterEntry{}}
	t0 := time.Unix(1700000000, 0)
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	if first, second := ls.take(a, t0), ls.take(a, t0); first != 0 || second != 0 {
		t.Fatal("burst of 2 refused")
	}
	if wait := ls.take(a, t0); wait <= 0 || wait > time.Second {
		t.Fatalf("third request at once: wait %v, want (0, 1s]", wait)
	}
	if ls.take(b, t0) != 0 {
		t.Fatal("another IP is limited by the first one's bucket")
	}
	if ls.take(a, t0.Add(time.Second)) != 0 {
		t.Fatal("no token after 1 s at 1/s")
	}
	// Long idle: both buckets go at the next sweep; a's is fresh again.
	later := t0.Add(limiterIdle + sweepEvery)
	if ls.take(a, later) != 0 {
		t.Fatal("refused after a long idle period")
	}
	if n := ls.size(); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1 (b evicted)", n)
	}
}

// limitedServer is rateLimit in front of a handler that reads the whole body.
func limitedServer(t *testing.T, l Limits, now func() time.Time) http.Handler {
	t.Helper()
	tmpl, err := web.Parse()
	if err != nil {
		t.Fatal(err)
	}
	p := &pages{tmpl: tmpl, logger: slog.New(slog.DiscardHandler)}
	return rateLimit(l, p, now, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1700000000, 0)
	h := limitedServer(t, Limits{Rate: 0.5, Burst: 1}, func() time.Time { return now })
	serve := func(method, path, remote string, body io.Reader) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, body)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	t.Run("JSON429WithRetryAfter", func(t *testing.T) {
		if w := serve(http.MethodPost, "/session/refresh", "198.51.100.1:1", nil); w.Code != http.StatusNoContent {
			t.Fatalf("first: %d", w.Code)
		}
		w := serve(http.MethodPost, "/session/refresh", "198.51.100.1:1", nil)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
			t.Fatalf("second: %d Retry-After %q, want 429 and 2 (1 token at 0.5/s)", w.Code, w.Header().Get("Retry-After"))
		}
		var body map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != "rate_limited" {
			t.Errorf("body %q", w.Body.String())
		}
	})
	t.Run("PagesForBrowsers", func(t *testing.T) {
		serve(http.MethodGet, "/login", "198.51.100.2:1", nil)
		w := serve(http.MethodGet, "/login", "198.51.100.2:1", nil)
		if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "请求过于频繁") || !strings.Contains(w.Body.String(), "Too many requests") {
			t.Fatalf("/login 429: %d %s", w.Code, w.Body.String())
		}
	})
	t.Run("OtherRoutesAndPreflightUnlimited", func(t *testing.T) {
		for range 5 {
			if w := serve(http.MethodGet, "/me", "198.51.100.3:1", nil); w.Code != http.StatusNoContent {
				t.Fatalf("/me limited: %d", w.Code)
			}
			if w := serve(http.MethodOptions, "/session/refresh", "198.51.100.3:1", nil); w.Code != http.StatusNoContent {
				t.Fatalf("preflight limited: %d", w.Code)
			}
		}
	})
	t.Run("EveryLimitedPath", func(t *testing.T) {
		for _, p := range limitedPaths {
			serve(http.MethodPost, p, "198.51.100.4:1", nil)
			if w := serve(http.MethodPost, p, "198.51.100.4:1", nil); w.Code != http.StatusTooManyRequests {
				t.Errorf("%s not limited: %d", p, w.Code)
			}
			now = now.Add(2 * time.Second)
		}
	})
	t.Run("Off", func(t *testing.T) {
		off := limitedServer(t, Limits{Rate: -1}, nil)
		for range 100 {
			r := httptest.NewRequest(http.MethodGet, "/login", nil)
			w := httptest.NewRecorder()
			off.ServeHTTP(w, r)
			if w.Code != http.StatusNoContent {
				t.Fatalf("limited while off: %d", w.Code)
			}
		}
	})
	t.Run("BodyCap", func(t *testing.T) {
		big := strings.Repeat("a", maxRequestBody+1)
		if w := serve(http.MethodPost, "/anything", "198.51.100.5:1", strings.NewReader(big)); w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("declared oversize body: %d", w.Code)
		}
		r := httptest.NewRequest(http.MethodPost, "/anything", io.NopCloser(strings.NewReader(big)))
		r.ContentLength = -1 // chunked: only the reader can stop it
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked oversize body: %d", w.Code)
		}
		if w := serve(http.MethodPost, "/anything", "198.51.100.5:1", strings.NewReader("small")); w.Code != http.StatusNoContent {
			t.Errorf("small body: %d", w.Code)
		}
	})
}

func BenchmarkRateLimit(b *testing.B) {
	tmpl, _ := web.Parse()
	p := &pages{tmpl: tmpl, logger: slog.New(slog.DiscardHandler)}
	h := rateLimit(Limits{Rate: 1e9, Burst: 1 << 30}, p, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/login", nil)
	r.RemoteAddr = "198.51.100.1:1"
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// TestLimiters_Bounded: a flood of distinct addresses never grows the
// table past its cap; refilled buckets make room (losing nothing), and
// while none has refilled, new addresses are refused with full set.
func TestLimiters_Bounded(t *testing.T) {
	const capacity = 100
	ls := &limiters{rate: 10, burst: 40, max: capacity, m: map[netip.Addr]*limiterEntry{}}
	t0 := time.Unix(1700000000, 0)
	const flood = 5000
	refused := 0
	for i := range flood {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if wait, full := ls.admit(ip, t0.Add(time.Duration(i)*time.Microsecond)); wait > 0 {
			if !full {
				t.Fatalf("address %d refused by its own fresh bucket", i)
			}
			refused++
		}
	}
	t.Logf("%d requests from %d addresses within 5 ms, table capped at %d -> %d buckets, %d refused (503)", flood, flood, capacity, ls.size(), refused)
	if ls.size() > capacity || refused != flood-capacity {
		t.Fatalf("%d buckets (cap %d), %d refused (want %d)", ls.size(), capacity, refused, flood-capacity)
	}
	// After burst/rate (4 s) every bucket has refilled: new addresses fit.
	later := t0.Add(5 * time.Second)
	if wait, full := ls.admit(netip.MustParseAddr("192.0.2.1"), later); wait != 0 || full {
		t.Fatalf("after every bucket refilled: wait %v, full %v", wait, full)
	}
	if ls.size() > capacity {
		t.Fatalf("%d buckets after the refill, cap %d", ls.size(), capacity)
	}
}

// take is admit without the full flag.
func (ls *limiters) take(ip netip.Addr, now time.Time) time.Duration {
	wait, _ := ls.admit(ip, now)
	return wait
}
