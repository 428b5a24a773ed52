package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
)

// tokenServer is a fake stable_token/token/getticket issuing numbered values.
type tokenServer struct {
	n       atomic.Int64 // tokens issued
	tickets atomic.Int64 // tickets issued
	mu      sync.Mutex
	forced  []bool // force_refresh of each stable_token call
	gate    chan struct{}
	// during runs inside the stable_token handler before it answers.
	during func()
	// ticketErr, when set, answers getticket for that access_token with 40001.
	ticketErr string
	expires   int
}

func (s *tokenServer) routes(tb testing.TB) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/cgi-bin/stable_token": func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				GrantType    string `json:"grant_type"`
				AppID        string `json:"appid"`
				Secret       string `json:"secret"`
				ForceRefresh bool   `json:"force_refresh"`
			}
			if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil ||
				req.GrantType != "client_credential" || req.AppID != testAppID || req.Secret != testSecret {
				errBody(40002, "invalid grant_type")(w, r)
				return
			}
			s.mu.Lock()
			s.forced = append(s.forced, req.ForceRefresh)
			s.mu.Unlock()
			if s.gate != nil {
				<-s.gate
			}
			if s.during != nil {
				s.during()
			}
			s.issue(w)
		},
		"/cgi-bin/token": func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if q.Get("grant_type") != "client_credential" || q.Get("appid") != testAppID || q.Get("secret") != testSecret {
				errBody(40002, "invalid grant_type")(w, r)
				return
			}
			s.issue(w)
		},
		"/cgi-bin/ticket/getticket": func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if q.Get("type") != "jsapi" {
				errBody(40097, "invalid args")(w, r)
				return
			}
			if at := q.Get("access_token"); at == "" || at == s.ticketErr {
				errBody(CodeInvalidCredential, "invalid credential, access_token is invalid or not latest")(w, r)
				return
			}
			fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","ticket":"TICKET-%d","expires_in":7200}`, s.tickets.Add(1))
		},
	}
}

func (s *tokenServer) issue(w http.ResponseWriter) {
	exp := s.expires
	if exp == 0 {
		exp = 7200
	}
	fmt.Fprintf(w, `{"access_token":"TOKEN-%d","expires_in":%d}`, s.n.Add(1), exp)
}

func (s *tokenServer) forcedCalls() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.forced...)
}

// tokenEnv is one fake WeChat with a shared cache and locker, from which
// several managers ("processes") can be made.
type tokenEnv struct {
	ts     *tokenServer
	fake   *fakeWeChat
	cache  *fakeCache
	locker *fakeLocker
	clock  *clocktest.Clock
}

func newTokenEnv(tb testing.TB) *tokenEnv {
	ts := &tokenServer{}
	return &tokenEnv{
		ts: ts, fake: newFake(tb, ts.routes(tb)), cache: newFakeCache(), locker: newFakeLocker(),
		clock: clocktest.New(time.Unix(1700000000, 0)),
	}
}

func (e *tokenEnv) manager(tb testing.TB, api string) *TokenManager {
	tb.Helper()
	c := newTestClient(tb, e.fake)
	c.now = e.clock.Now
	m, err := NewTokenManager(c, TokenConfig{API: api, Cache: e.cache, Locker: e.locker, Box: newTestBox(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// release opens the token server's gate, waits for the callers held at it
// and fails if any of them counted itself in bad (another token or an
// error).
func (e *tokenEnv) release(tb testing.TB, callers *sync.WaitGroup, bad *atomic.Int64) {
	tb.Helper()
	close(e.ts.gate)
	callers.Wait()
	if n := bad.Load(); n != 0 {
		tb.Fatalf("%d callers got another token or an error", n)
	}
}

// wantStableCalls fails unless the fake WeChat saw want stable_token
// calls; why, if not empty, says why that many.
func (e *tokenEnv) wantStableCalls(tb testing.TB, want int64, why string) {
	tb.Helper()
	if c := e.fake.count("/cgi-bin/stable_token"); c != want {
		if why != "" {
			why = " (" + why + ")"
		}
		tb.Fatalf("%d stable_token calls, want %d%s", c, want, why)
	}
}

func mustToken(tb testing.TB, m *TokenManager) string {
	tb.Helper()
	tok, err := m.AccessToken(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestNewTokenManager(t *testing.T) {
	c := newTestClient(t, nil)
	good := TokenConfig{Cache: newFakeCache(), Locker: newFakeLocker(), Box: newTestBox(t)}
	for name, mod := range map[string]func(*TokenConfig){
		"Cache":        func(c *TokenConfig) { c.Cache = nil },
		"Locker":       func(c *TokenConfig) { c.Locker = nil },
		"Box":          func(c *TokenConfig) { c.Box = nil },
		"API":          func(c *TokenConfig) { c.API = "fast" },
		"RefreshAhead": func(c *TokenConfig) { c.RefreshAhead = -time.Second },
	} {
		cfg := good
		mod(&cfg)
		if _, err := NewTokenManager(c, cfg); err == nil || !bytes.Contains([]byte(err.Error()), []byte(name)) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := NewTokenManager(nil, good); err == nil {
		t.Error("nil client accepted")
	}
}

func TestTokenManager_AccessToken(t *testing.T) {
	t.Run("ColdStorm1000", func(t *testing.T) {
		e := newTokenEnv(t)
		e.ts.gate = make(chan struct{})
		m := e.manager(t, "")
		const n = 1000
		var started, done sync.WaitGroup
		got := make([]string, n)
		errs := make([]error, n)
		started.Add(n)
		done.Add(n)
		for i := range n {
			go func() {
				defer done.Done()
				started.Done()
				got[i], errs[i] = m.AccessToken(context.Background())
			}()
		}
		started.Wait()
		close(e.ts.gate)
		done.Wait()
		for i := range n {
			if errs[i] != nil || got[i] != "TOKEN-1" {
				t.Fatalf("caller %d: %q %v", i, got[i], errs[i])
			}
		}
		e.wantStableCalls(t, 1, "")
		if g := e.locker.grants.Load(); g != 1 {
			t.Fatalf("%d lock grants, want 1 (single-flight in process)", g)
		}
		if f := e.ts.forcedCalls(); f[0] {
			t.Fatal("cold fetch used force_refresh")
		}
	})
	t.Run("ColdStormTwoProcesses", func(t *testing.T) {
		e := newTokenEnv(t)
		e.ts.gate = make(chan struct{})
		ms := []*TokenManager{e.manager(t, ""), e.manager(t, "")}
		var started, done sync.WaitGroup
		var bad atomic.Int64
		started.Add(200)
		done.Add(200)
		for i := range 200 {
			go func() {
				defer done.Done()
				started.Done()
				if tok, err := ms[i%2].AccessToken(context.Background()); err != nil || tok != "TOKEN-1" {
					bad.Add(1)
				}
			}()
		}
		started.Wait()
		e.release(t, &done, &bad)
		e.wantStableCalls(t, 1, "the second process re-reads the cache under the lock")
	})
	t.Run("SealedInCache", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		tok := mustToken(t, m)
		ct, err := e.cache.GetToken(context.Background(), "access_token:"+testAppID)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct.Value, []byte(tok)) {
			t.Fatal("token stored in clear")
		}
		pt, err := newTestBox(t).Open(ct.Value, []byte("access_token:"+testAppID))
		if err != nil || string(pt) != tok {
			t.Fatalf("open with aad = cache name: %q %v", pt, err)
		}
		if _, err := newTestBox(t).Open(ct.Value, []byte("jsapi_ticket:"+testAppID)); err == nil {
			t.Fatal("opens under another aad")
		}
		if want := e.clock.Now().Add(7200 * time.Second); !ct.ExpiresAt.Equal(want) || ct.Fence <= 0 {
			t.Fatalf("ExpiresAt %v want %v, Fence %d", ct.ExpiresAt, want, ct.Fence)
		}
	})
	t.Run("WarmPathSkipsCache", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		mustToken(t, m)
		gets := e.cache.gets.Load()
		for range 1000 {
			mustToken(t, m)
		}
		if g := e.cache.gets.Load(); g != gets {
			t.Fatalf("warm path read the cache %d times", g-gets)
		}
	})
	t.Run("OtherProcessAdoptsCache", func(t *testing.T) {
		e := newTokenEnv(t)
		a, b := e.manager(t, ""), e.manager(t, "")
		if mustToken(t, a) != "TOKEN-1" || mustToken(t, b) != "TOKEN-1" {
			t.Fatal("different tokens")
		}
		e.wantStableCalls(t, 1, "")
	})
	t.Run("RefreshAhead", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		mustToken(t, m)
		e.clock.Advance(7200*time.Second - defaultRefreshAhead - time.Second)
		if tok := mustToken(t, m); tok != "TOKEN-1" {
			t.Fatalf("refreshed early: %s", tok)
		}
		e.clock.Advance(2 * time.Second)
		if tok := mustToken(t, m); tok != "TOKEN-2" {
			t.Fatalf("not refreshed %s before expiry: %s", defaultRefreshAhead, tok)
		}
	})
	t.Run("ShortLifeNoLoop", func(t *testing.T) {
		// stable_token may answer expires_in 300: refresh at half life,
		// not at once on every call.
		e := newTokenEnv(t)
		e.ts.expires = 300
		m := e.manager(t, "")
		mustToken(t, m)
		mustToken(t, m)
		e.wantStableCalls(t, 1, "")
		e.clock.Advance(151 * time.Second)
		if tok := mustToken(t, m); tok != "TOKEN-2" {
			t.Fatal(tok)
		}
	})
	t.Run("FailedRefreshServesUnexpired", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		mustToken(t, m)
		e.fake.mu.Lock()
		e.fake.routes["/cgi-bin/stable_token"] = errBody(CodeIPWhitelist, "invalid ip 1.2.3.4, not in whitelist")
		e.fake.mu.Unlock()
		e.clock.Advance(7200*time.Second - time.Minute) // due, not expired
		if tok := mustToken(t, m); tok != "TOKEN-1" {
			t.Fatal(tok)
		}
		e.clock.Advance(2 * time.Minute) // expired
		if _, err := m.AccessToken(context.Background()); !IsCode(err, CodeIPWhitelist) {
			t.Fatalf("err = %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		code int
	}{{"InvalidAppID40013", CodeInvalidAppID}, {"AppSecret40125", CodeAppSecret}, {"IPWhitelist40164", CodeIPWhitelist}, {"Quota45009", CodeQuota}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEnv(t)
			e.fake.routes["/cgi-bin/stable_token"] = errBody(tc.code, "error")
			_, err := e.manager(t, "").AccessToken(context.Background())
			if !IsCode(err, tc.code) || e.fake.count("/cgi-bin/stable_token") != 1 {
				t.Fatalf("err = %v", err)
			}
			assertNoSecret(t, err.Error())
		})
	}
	t.Run("Classic", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, TokenAPIClassic)
		if tok := mustToken(t, m); tok != "TOKEN-1" || e.fake.count("/cgi-bin/token") != 1 || e.fake.count("/cgi-bin/stable_token") != 0 {
			t.Fatal(tok)
		}
	})
	t.Run("CallerContext", func(t *testing.T) {
		e := newTokenEnv(t)
		e.ts.gate = make(chan struct{})
		m := e.manager(t, "")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := m.AccessToken(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		close(e.ts.gate)
	})
}

func TestTokenManager_CacheUnreadable(t *testing.T) {
	e := newTokenEnv(t)
	name := "access_token:" + testAppID
	e.cache.m[name] = store.CachedToken{Value: []byte("garbage, not sealed"), ExpiresAt: e.clock.Now().Add(time.Hour), Fence: 1}
	if tok := mustToken(t, e.manager(t, "")); tok != "TOKEN-1" {
		t.Fatal(tok)
	}
}

func TestTokenManager_JSAPITicket(t *testing.T) {
	t.Run("Cached", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		for range 3 {
			tk, err := m.JSAPITicket(context.Background())
			if err != nil || tk != "TICKET-1" {
				t.Fatalf("%q %v", tk, err)
			}
		}
		if e.fake.count("/cgi-bin/ticket/getticket") != 1 || e.fake.count("/cgi-bin/stable_token") != 1 {
			t.Fatal("not cached")
		}
		ct, err := e.cache.GetToken(context.Background(), "jsapi_ticket:"+testAppID)
		if err != nil || bytes.Contains(ct.Value, []byte("TICKET-1")) {
			t.Fatalf("ticket cache: %v", err)
		}
	})
	t.Run("TokenRefusedRetriedOnce", func(t *testing.T) {
		e := newTokenEnv(t)
		e.ts.ticketErr = "TOKEN-1"
		m := e.manager(t, "")
		tk, err := m.JSAPITicket(context.Background())
		if err != nil || tk != "TICKET-1" {
			t.Fatalf("%q %v", tk, err)
		}
		if f := e.ts.forcedCalls(); len(f) != 2 || !f[1] {
			t.Fatalf("stable_token calls %v, want a forced refresh after 40001", f)
		}
	})
	t.Run("InvalidateTicket", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		tk, _ := m.JSAPITicket(context.Background())
		if err := m.InvalidateTicket(context.Background(), "OTHER"); err != nil || e.fake.count("/cgi-bin/ticket/getticket") != 1 {
			t.Fatal("refreshed on a non-current ticket")
		}
		if err := m.InvalidateTicket(context.Background(), tk); err != nil {
			t.Fatal(err)
		}
		if tk2, _ := m.JSAPITicket(context.Background()); tk2 != "TICKET-2" {
			t.Fatal(tk2)
		}
	})
}

func TestTokenManager_Run(t *testing.T) {
	e := newTokenEnv(t)
	m := e.manager(t, "")
	// sleep reports each wait and blocks until the test resumes Run, so
	// each round runs at a clock the test chose.
	waits := make(chan time.Duration)
	resume := make(chan struct{})
	m.sleep = func(ctx context.Context, d time.Duration) bool {
		select {
		case waits <- d:
		case <-ctx.Done():
			return false
		}
		select {
		case <-resume:
			return true
		case <-ctx.Done():
			return false
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	// First round: warm-up fetch, then wait (capped at runMaxWait).
	if d := <-waits; d != runMaxWait {
		t.Fatalf("wait %v", d)
	}
	if e.fake.count("/cgi-bin/stable_token") != 1 || e.fake.count("/cgi-bin/ticket/getticket") != 0 {
		t.Fatal("warm-up: want the token only (ticket never asked for)")
	}
	// Make the token due: the next round refreshes it in the background.
	e.clock.Advance(7200*time.Second - defaultRefreshAhead)
	resume <- struct{}{}
	<-waits
	e.wantStableCalls(t, 2, "a background refresh")
	if tok := mustToken(t, m); tok != "TOKEN-2" {
		t.Fatal(tok)
	}
	// Once asked for, the ticket is refreshed too.
	if _, err := m.JSAPITicket(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A failing refresh waits with backoff.
	e.fake.mu.Lock()
	e.fake.routes["/cgi-bin/stable_token"] = errBody(CodeAppSecret, "invalid appsecret")
	e.fake.mu.Unlock()
	e.clock.Advance(7200 * time.Second)
	resume <- struct{}{}
	if d := <-waits; d != runMinWait {
		t.Fatalf("first retry wait %v", d)
	}
	resume <- struct{}{}
	if d := <-waits; d != 2*runMinWait {
		t.Fatalf("second retry wait %v", d)
	}
	if c := e.fake.count("/cgi-bin/ticket/getticket"); c != 1 {
		t.Fatalf("getticket calls %d: the ticket needs a token, which fails", c)
	}
	cancel()
	<-done
}
