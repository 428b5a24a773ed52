package test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

// scrape reads GET url in the Prometheus text format and returns a
// function giving the sum of the samples of a metric whose labels include
// the given name="value" pairs, and whether any matched.
func scrape(t *testing.T, url string) func(name string, labels ...string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	type sample struct {
		name, labels string
		value        float64
	}
	var samples []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		series, labels := line[:i], ""
		if j := strings.IndexByte(series, '{'); j >= 0 {
			series, labels = series[:j], series[j:]
		}
		samples = append(samples, sample{series, labels, v})
	}
	return func(name string, labels ...string) (float64, bool) {
		sum, found := 0.0, false
	next:
		for _, s := range samples {
			if s.name != name {
				continue
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if !strings.Contains(s.labels, labels[i]+`="`+labels[i+1]+`"`) {
					continue next
				}
			}
			sum += s.value
			found = true
		}
		return sum, found
	}
}

// TestDev_Metrics scrapes /metrics after a login, callback messages and a
// refused callback, and finds each counted under its route template,
// outcome and errcode.
func TestDev_Metrics(t *testing.T) {
	t.Parallel()
	p := startDev(t)
	svc, emu, h5 := p.URL("service"), p.URL("emulator"), p.URL("h5")
	e2e.WaitReady(t, svc)

	b := newBrowser(t)
	cb, resp := b.Authorize(svc, h5+"/", "snsapi_base", "oWXEMU_bob", "allow")
	if cb == "" {
		t.Fatalf("emulator did not redirect: %d", resp.StatusCode)
	}
	if resp, body := b.Get(cb); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	if r := emuSend(t, emu, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"hi"}}`); !r.Valid {
		t.Fatalf("/emu/send: %+v", r)
	}
	if r := emuSend(t, emu, `{"from":"oWXEMU_bob","message":{"MsgType":"text","Content":"news"},"repeat":3}`); len(r.Replies) != 3 {
		t.Fatalf("/emu/send repeat: %+v", r)
	}
	// Plaintext in safe mode is refused.
	if resp, err := http.Post(svc+"/wx?signature=0&timestamp=1&nonce=1", "text/xml", strings.NewReader("<xml></xml>")); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("plaintext /wx: %d, want 403", resp.StatusCode)
		}
	}
	b.Get(svc + "/no/such/path")

	// Two QR login attempts (two browsers: a reload would show the same
	// one), one completed: one stays active.
	d := newDesktop(t)
	done, ticket := d.qrPage(svc, h5)
	newDesktop(t).qrPage(svc, h5)
	if code, _ := qrEmuPost(t, emu, "/emu/scan", `{"openid":"oWXEMU_alice","ticket":"`+ticket+`"}`); code != http.StatusOK {
		t.Fatalf("/emu/scan: %d", code)
	}
	if resp, body := d.do("GET", svc+"/qr/sessions/"+done+"/complete", "", ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("QR complete: %d %s", resp.StatusCode, body)
	}

	m := scrape(t, svc+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"wxauth_http_requests_total", []string{"route", "/login", "method", "GET", "status", "302"}, 1},
		{"wxauth_http_requests_total", []string{"route", "/oauth/callback", "method", "GET", "status", "302"}, 1},
		{"wxauth_http_requests_total", []string{"route", "unmatched", "status", "404"}, 1},
		{"wxauth_http_request_duration_seconds_count", []string{"route", "/oauth/callback", "method", "GET"}, 1},
		{"wxauth_logins_total", []string{"scope", "snsapi_base", "outcome", "success"}, 1},
		{"wxauth_wechat_calls_total", []string{"api", "sns/oauth2/access_token", "errcode", "0"}, 1},
		{"wxauth_wechat_call_duration_seconds_count", []string{"api", "sns/oauth2/access_token"}, 1},
		{"wxauth_callback_messages_total", []string{"type", "text", "mode", "safe", "outcome", "replied"}, 2},
		{"wxauth_callback_messages_total", []string{"outcome", "duplicate"}, 2},
		{"wxauth_callback_messages_total", []string{"outcome", "refused_plaintext_refused"}, 1},
		{"wxauth_token_refreshes_total", []string{"token", "access_token"}, 1},
	} {
		got, ok := m(c.name, c.labels...)
		if !ok || got < c.min {
			t.Errorf("%s%v = %v (found %v), want >= %v", c.name, c.labels, got, ok, c.min)
		}
	}
	if got, ok := m("wxauth_qr_login_attempts_active"); !ok || got != 1 {
		t.Errorf("wxauth_qr_login_attempts_active = %v (found %v), want 1", got, ok)
	}
	// No raw paths as labels: the 404 path is not a route.
	if _, ok := m("wxauth_http_requests_total", "route", "/no/such/path"); ok {
		t.Error("a raw path became a route label")
	}
}

// TestServe_RateLimit runs the service with a small per-IP limit: /login
// answers 429 with Retry-After past the burst, X-Forwarded-For from an
// untrusted peer changes nothing, and other routes are not limited.
func TestServe_RateLimit(t *testing.T) {
	t.Parallel()
	svc, _ := startPair(t, "plain", map[string]string{"WXAUTH_RATE_LIMIT": "0.5", "WXAUTH_RATE_BURST": "3",
		"WXAUTH_TRUSTED_PROXIES": "192.0.2.0/24"})
	get := func(path, xff string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, svc+path, nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	login := "/login?redirect=https%3A%2F%2Fh5.example.com%2F&scope=snsapi_base"
	for i := range 3 {
		if resp := get(login, ""); resp.StatusCode != http.StatusFound {
			t.Fatalf("request %d within the burst: %d", i+1, resp.StatusCode)
		}
	}
	resp := get(login, "198.51.100.23")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("past the burst with a spoofed X-Forwarded-For: %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", resp.Header.Get("Retry-After"))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("/login 429 Content-Type %q, want the H5 page", ct)
	}
	if resp := get("/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz is limited: %d", resp.StatusCode)
	}
}

// TestServe_MetricsListen moves /metrics to its own address: it is served
// there and absent from the main listener.
func TestServe_MetricsListen(t *testing.T) {
	t.Parallel()
	addr := e2e.FreeAddr(t)
	svc, _ := startPair(t, "plain", map[string]string{"WXAUTH_METRICS_LISTEN": addr})
	resp, err := http.Get(svc + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("main listener /metrics: %d, want 404", resp.StatusCode)
	}
	var m func(string, ...string) (float64, bool)
	for i := 0; i < 100; i++ { // the metrics listener starts beside the main one
		if r, err := http.Get("http://" + addr + "/metrics"); err == nil {
			r.Body.Close()
			m = scrape(t, "http://"+addr+"/metrics")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m == nil {
		t.Fatalf("nothing serves http://%s/metrics", addr)
	}
	if _, ok := m("wxauth_http_requests_total", "route", "unmatched", "status", "404"); !ok {
		t.Error("the metrics listener does not show the main listener's requests")
	}
	if _, ok := m("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}
}
