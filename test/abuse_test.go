package test

import (
	"crypto/elliptic"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

// The tests of this file turn each finding of an outside attack on the
// service into a check through the binary, printing what it measures.

const (
	abuseH5   = "https://h5.example.com"
	qrCreate  = "/cgi-bin/qrcode/create"
	qrPageFmt = "/qr/login?redirect=https%3A%2F%2Fh5.example.com%2F"
)

// abuseEnv is the environment of `authsvc serve` on svcAddr against the
// emulator at emu, with the database dbURL, loopback trusted as a proxy
// (so X-Forwarded-For names the client) and extra on top.
func abuseEnv(svcAddr, emu, dbURL string, extra map[string]string) map[string]string {
	env := map[string]string{
		"WXAUTH_LISTEN": svcAddr, "WXAUTH_PUBLIC_URL": "http://" + svcAddr, "WXAUTH_APPID": e2eAppID,
		"WXAUTH_APPSECRET": e2eAppSecret, "WXAUTH_SECRET_KEY": e2eSecretKey, "WXAUTH_ALLOWED_REDIRECTS": abuseH5,
		"WXAUTH_DATABASE_URL": dbURL, "WXAUTH_WECHAT_API_BASE": emu, "WXAUTH_WECHAT_OPEN_BASE": emu,
		"WXAUTH_WECHAT_MP_BASE": emu, "WXAUTH_CALLBACK_TOKEN": e2eToken, "WXAUTH_CALLBACK_MODE": "plain",
		"WXAUTH_LOG_LEVEL": "warn", "WXAUTH_TRUSTED_PROXIES": "127.0.0.1/32",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// startEmu runs `authsvc emulate` for a service at svcAddr and returns its URL.
func startEmu(t *testing.T, svcAddr string) string {
	t.Helper()
	emuAddr := e2e.FreeAddr(t)
	start(t, nil, 1, "emulate", "--listen", emuAddr, "--appid", e2eAppID, "--appsecret", e2eAppSecret,
		"--oauth-domain", svcAddr, "--callback-url", "http://"+svcAddr+"/wx", "--callback-token", e2eToken, "--mode", "plain")
	return "http://" + emuAddr
}

// startServe runs `authsvc serve` with env and waits until it is ready.
func startServe(t *testing.T, env map[string]string) *e2e.Proc {
	t.Helper()
	p := start(t, env, 1, "serve")
	e2e.WaitReady(t, "http://"+env["WXAUTH_LISTEN"])
	return p
}

// procStat reads a /proc/PID/status field in KiB (VmRSS, VmHWM) and the
// number of open file descriptors of p.
func procStat(p *e2e.Proc, field string) (kib, fds int) {
	pid := strconv.Itoa(p.Cmd.Process.Pid)
	if b, err := os.ReadFile("/proc/" + pid + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				kib, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			}
		}
	}
	if ents, err := os.ReadDir("/proc/" + pid + "/fd"); err == nil {
		fds = len(ents)
	}
	return kib, fds
}

// hammer sends n GET requests to u with workers goroutines; xff(i), when
// not nil, gives request i's X-Forwarded-For. It returns the count of each
// status.
func hammer(t *testing.T, n, workers int, u string, xff func(i int) string) map[int]int {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Header.Set("User-Agent", qrDesktopUA)
				if xff != nil {
					req.Header.Set("X-Forwarded-For", xff(i))
				}
				status := -1
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

// addr returns a distinct documentation-range-like IPv4 address for i.
func addr(i int) string {
	return "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
}

// TestAbuse_QRLoginQuota: GET /qr/login used to create a WeChat QR code per
// request (4000 requests from one IP -> 4000 qrcode/create calls). Now the
// page is rate limited per client IP, a reloading browser reuses its
// attempt, and a service-wide budget caps QR codes per minute whatever the
// number of addresses.
func TestAbuse_QRLoginQuota(t *testing.T) {
	t.Parallel()
	svcAddr := e2e.FreeAddr(t)
	emu := startEmu(t, svcAddr)
	svc := "http://" + svcAddr
	startServe(t, abuseEnv(svcAddr, emu, "sqlite:"+filepath.Join(t.TempDir(), "wxauth.db"), nil))

	began := time.Now()
	// One browser reloading the page: one QR code.
	b := newDesktop(t)
	ids := map[string]bool{}
	for range 10 {
		resp, body := b.do("GET", svc+qrPageFmt, "", "")
		m := qrPageIDRE.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("/qr/login: %d %s", resp.StatusCode, body)
		}
		ids[m[1]] = true
	}
	reloadCalls := int(e2e.EmuCalls(t, emu)[qrCreate])
	t.Logf("10 reloads of /qr/login by one browser -> %d attempts, %d WeChat qrcode/create calls", len(ids), reloadCalls)
	if len(ids) != 1 || reloadCalls != 1 {
		t.Errorf("a reloading browser made %d attempts and %d QR codes, want 1 and 1", len(ids), reloadCalls)
	}

	// 4000 requests from one address without cookies.
	counts := hammer(t, 4000, 32, svc+qrPageFmt, nil)
	oneIP := int(e2e.EmuCalls(t, emu)[qrCreate]) - reloadCalls
	// Its bucket: a burst of 40, then 10 a second for as long as the run
	// took (a bound on what may have been spent, not on speed).
	perIP := 40 + 10*(int(time.Since(began).Seconds())+1)
	t.Logf("4000 requests from one IP -> %d WeChat qrcode/create calls within a bound of %d (statuses %v)", oneIP, perIP, counts)
	if oneIP > perIP || counts[http.StatusTooManyRequests] == 0 {
		t.Errorf("one IP made %d QR codes (want <= %d) with %d refusals", oneIP, perIP, counts[http.StatusTooManyRequests])
	}

	// 4000 requests from 4000 addresses: the service-wide budget holds.
	counts = hammer(t, 4000, 32, svc+qrPageFmt, func(i int) string { return addr(i + 1) })
	total := int(e2e.EmuCalls(t, emu)[qrCreate])
	// The budget: 60 at once, then one a second for as long as the run
	// took (a bound on what may have been spent, not on speed).
	budget := 60 + int(time.Since(began).Seconds()) + 1
	t.Logf("4000 requests from 4000 IPs -> %d more WeChat qrcode/create calls, %d in all within a budget of %d (statuses %v)",
		total-reloadCalls-oneIP, total, budget, counts)
	if total > budget || counts[http.StatusServiceUnavailable] == 0 {
		t.Errorf("%d QR codes in all (want <= %d, the budget of 60 a minute), %d refusals with 503",
			total, budget, counts[http.StatusServiceUnavailable])
	}
	req, _ := http.NewRequest(http.MethodGet, svc+qrPageFmt, nil)
	req.Header.Set("User-Agent", qrDesktopUA)
	req.Header.Set("X-Forwarded-For", "192.0.2.77")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(page), "二维码") || !strings.Contains(string(page), "QR code") {
		t.Errorf("budget spent: %d Retry-After %q, want 503 with a bilingual page", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestAbuse_QRStreams: event streams used to have no cap (1500 streams from
// one IP on one id, all 200, file descriptors 15 -> 1516). Now each client
// IP holds at most WXAUTH_STREAMS_PER_IP and all together
// WXAUTH_STREAMS_MAX; the rest get 429 or 503 JSON at once.
func TestAbuse_QRStreams(t *testing.T) {
	t.Parallel()
	svcAddr := e2e.FreeAddr(t)
	emu := startEmu(t, svcAddr)
	svc := "http://" + svcAddr
	p := startServe(t, abuseEnv(svcAddr, emu, "sqlite:"+filepath.Join(t.TempDir(), "wxauth.db"),
		map[string]string{"WXAUTH_STREAMS_PER_IP": "4", "WXAUTH_STREAMS_MAX": "40"}))
	id, _ := newDesktop(t).qrPage(svc, abuseH5)
	_, fdsBefore := procStat(p, "VmRSS")

	open := func(n int, xff func(i int) string) (map[int]int, func()) {
		counts := map[int]int{}
		var bodies []*http.Response
		client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}}
		for i := range n {
			req, _ := http.NewRequest(http.MethodGet, svc+"/qr/sessions/"+id+"/events", nil)
			req.Header.Set("Accept", "text/event-stream")
			if xff != nil {
				req.Header.Set("X-Forwarded-For", xff(i))
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			counts[resp.StatusCode]++
			if resp.StatusCode == http.StatusOK {
				bodies = append(bodies, resp) // held open
			} else {
				resp.Body.Close()
			}
		}
		return counts, func() {
			for _, r := range bodies {
				r.Body.Close()
			}
		}
	}
	counts, closeOne := open(300, nil)
	_, fdsOne := procStat(p, "VmRSS")
	t.Logf("300 streams from one IP on one id -> %v; service file descriptors %d -> %d", counts, fdsBefore, fdsOne)
	if counts[http.StatusOK] != 4 || counts[http.StatusTooManyRequests] != 296 {
		t.Errorf("one IP: %v, want 4 streams and 296 refusals (429)", counts)
	}
	counts, closeMany := open(300, func(i int) string { return addr(i + 1) })
	rss, fdsMany := procStat(p, "VmRSS")
	t.Logf("300 streams from 300 IPs -> %v; service file descriptors %d, RSS %d KiB", counts, fdsMany, rss)
	if counts[http.StatusOK] != 36 || counts[http.StatusServiceUnavailable] != 264 {
		t.Errorf("many IPs: %v, want 36 more streams (40 in all) and 264 refusals (503)", counts)
	}
	closeOne()
	closeMany()

	resp, err := http.Get(svc + "/qr/sessions/" + id)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("polling, the page's fallback: %v %v", resp, err)
	}
	resp.Body.Close()
}

// loginServe logs a browser in through the emulator and returns its access
// JWT and refresh token.
func loginServe(t *testing.T, svc string) (b *browser, jwt, refresh string) {
	t.Helper()
	b = newBrowser(t)
	cb, resp := b.Authorize(svc, abuseH5+"/", "snsapi_base", "oWXEMU_alice", "allow")
	if cb == "" {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	resp, body := b.Get(cb)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("/oauth/callback: %d %s", resp.StatusCode, body)
	}
	// The cookie login's access JWT, from /session/refresh (which rotates
	// the refresh cookie in b's jar).
	jwt = b.SessionJWT(svc)
	u, _ := url.Parse(svc + "/session/")
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == "wxauth_refresh" {
			refresh = c.Value
		}
	}
	if jwt == "" || refresh == "" {
		t.Fatalf("no token or refresh cookie after the login")
	}
	return b, jwt, refresh
}

// status sends method u with headers and returns the status code.
func status(t *testing.T, method, u string, headers ...string) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAbuse_RefreshRace: two POST /session/refresh with one refresh token
// at the same moment used to both succeed now and then (1 of 20 trials on
// SQLite, 3 of 25 on PostgreSQL + Redis): two live chains of one login.
// Now exactly one rotates, the other is a reuse, and the login ends.
func TestAbuse_RefreshRace(t *testing.T) {
	t.Parallel()
	backends := map[string]map[string]string{"SQLite": nil}
	if pg := os.Getenv("WXAUTH_TEST_POSTGRES_URL"); pg != "" {
		extra := map[string]string{"WXAUTH_DATABASE_URL": pg}
		if rd := os.Getenv("WXAUTH_TEST_REDIS_URL"); rd != "" {
			extra["WXAUTH_REDIS_URL"] = rd
			extra["WXAUTH_REDIS_PREFIX"] = "wxauth-race-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
		}
		backends["PostgreSQL"] = extra
	}
	for name, extra := range backends {
		t.Run(name, func(t *testing.T) {
			svcAddr := e2e.FreeAddr(t)
			emu := startEmu(t, svcAddr)
			svc := "http://" + svcAddr
			env := abuseEnv(svcAddr, emu, "sqlite:"+filepath.Join(t.TempDir(), "wxauth.db"),
				map[string]string{"WXAUTH_RATE_LIMIT": "0"})
			for k, v := range extra {
				env[k] = v
			}
			startServe(t, env)
			const trials = 25
			forks := 0
			for range trials {
				_, jwt, refresh := loginServe(t, svc)
				var wg sync.WaitGroup
				codes := make([]int, 2)
				start := make(chan struct{})
				for i := range 2 {
					wg.Go(func() {
						<-start
						codes[i] = status(t, http.MethodPost, svc+"/session/refresh", "Cookie", "wxauth_refresh="+refresh)
					})
				}
				close(start)
				wg.Wait()
				ok := 0
				for _, c := range codes {
					if c == http.StatusOK {
						ok++
					}
				}
				if ok != 1 {
					forks++
					t.Logf("refresh statuses %v", codes)
				}
				// The loser was a reuse: the whole login ends.
				if c := status(t, http.MethodGet, svc+"/verify", "Authorization", "Bearer "+jwt); c != http.StatusUnauthorized {
					t.Errorf("/verify after a concurrent reuse: %d, want 401", c)
				}
			}
			t.Logf("%d trials of two concurrent refreshes with one token on %s -> %d with both (or neither) succeeding", trials, name, forks)
			if forks != 0 {
				t.Errorf("%d of %d trials did not have exactly one successful refresh", forks, trials)
			}
		})
	}
}

// TestAbuse_RestartKeepsRevocations: on SQLite, logout and reuse
// revocations used to live in memory, so after a restart a logged-out JWT
// passed /verify and /me again, and a login in flight failed. Both survive
// SIGTERM and SIGKILL now. The same run checks the small holes: a
// cross-origin logout, a high-S signature, an encoded control character in
// a redirect.
func TestAbuse_RestartKeepsRevocations(t *testing.T) {
	t.Parallel()
	svcAddr := e2e.FreeAddr(t)
	emu := startEmu(t, svcAddr)
	svc := "http://" + svcAddr
	env := abuseEnv(svcAddr, emu, "sqlite:"+filepath.Join(t.TempDir(), "wxauth.db"), nil)
	p := startServe(t, env)

	// Logged out, and a reused refresh token.
	b, loggedOut, _ := loginServe(t, svc)
	if c := status(t, http.MethodPost, svc+"/session/logout", "Origin", "https://evil.example.net",
		"Cookie", cookieHeader(b, svc+"/session/logout")); c != http.StatusForbidden {
		t.Errorf("cross-origin logout: %d, want 403", c)
	}
	if c := status(t, http.MethodGet, svc+"/verify", "Authorization", "Bearer "+loggedOut); c != http.StatusOK {
		t.Fatalf("/verify after a refused cross-origin logout: %d, want 200", c)
	}
	if resp, _ := b.Post(svc+"/session/logout", "", ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	_, reusedJWT, refresh := loginServe(t, svc)
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		if c := status(t, http.MethodPost, svc+"/session/refresh", "Cookie", "wxauth_refresh="+refresh); c != want {
			t.Fatalf("refresh %d: %d, want %d", i+1, c, want)
		}
	}
	// A login in flight: /login done, WeChat's redirect not yet followed.
	inflight := newBrowser(t)
	cb, _ := inflight.Authorize(svc, abuseH5+"/", "snsapi_base", "oWXEMU_bob", "allow")

	_, live, _ := loginServe(t, svc)
	// High S: the same token with s replaced by n-s.
	if c := status(t, http.MethodGet, svc+"/verify", "Authorization", "Bearer "+flipS(t, live)); c != http.StatusUnauthorized {
		t.Errorf("/verify with a high-S signature: %d, want 401", c)
	}
	// An encoded CR LF in the redirect's path, on the allowed origin.
	if c := status(t, http.MethodGet, svc+"/login?redirect="+url.QueryEscape(abuseH5+"/a%0d%0aSet-Cookie:x=1")); c != http.StatusBadRequest {
		t.Errorf("/login with an encoded CR LF in the redirect: %d, want 400", c)
	}

	check := func(when string) {
		t.Helper()
		got := map[string]int{
			"logged out /verify": status(t, http.MethodGet, svc+"/verify", "Authorization", "Bearer "+loggedOut),
			"logged out /me":     status(t, http.MethodGet, svc+"/me", "Authorization", "Bearer "+loggedOut),
			"reused /verify":     status(t, http.MethodGet, svc+"/verify", "Authorization", "Bearer "+reusedJWT),
			"live /verify":       status(t, http.MethodGet, svc+"/verify", "Authorization", "Bearer "+live),
		}
		t.Logf("after %s: %v", when, got)
		for what, c := range got {
			want := http.StatusUnauthorized
			if strings.HasPrefix(what, "live") {
				want = http.StatusOK
			}
			if c != want {
				t.Errorf("after %s: %s %d, want %d", when, what, c, want)
			}
		}
	}
	check("no restart")
	p.Stop() // SIGINT, as SIGTERM: graceful
	p = startServe(t, env)
	check("a graceful restart")
	p.Kill()
	startServe(t, env)
	check("SIGKILL and a restart")

	resp, body := inflight.Get(cb)
	loggedIn := false
	for _, c := range resp.Cookies() {
		loggedIn = loggedIn || (c.Name == "wxauth_session" && c.Value != "" && c.MaxAge > 0)
	}
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), abuseH5) || !loggedIn {
		t.Errorf("a login in flight across two restarts: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	} else {
		t.Logf("a login in flight across a graceful restart and a SIGKILL completed: %d", resp.StatusCode)
	}
}

// cookieHeader returns the Cookie header b's jar sends to u.
func cookieHeader(b *browser, u string) string {
	pu, _ := url.Parse(u)
	var parts []string
	for _, c := range b.Client.Jar.Cookies(pu) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// flipS returns the ES256 JWT jwt with its signature's S replaced by n-S:
// a signature plain ECDSA verification accepts as well.
func flipS(t *testing.T, jwt string) string {
	t.Helper()
	dot := strings.LastIndexByte(jwt, '.')
	sig, err := base64.RawURLEncoding.DecodeString(jwt[dot+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("not an ES256 signature: %v, %d bytes", err, len(sig))
	}
	s := new(big.Int).Sub(elliptic.P256().Params().N, new(big.Int).SetBytes(sig[32:]))
	s.FillBytes(sig[32:])
	return jwt[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}
