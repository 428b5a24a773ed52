package wechat

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/store"
)

const (
	testAppID  = "wx1234567890abcdef"
	testSecret = "s3cr3t-appsecret-0123456789abcdef"
)

// fakeWeChat is an httptest WeChat: one handler per API path, with a call
// counter per path.
type fakeWeChat struct {
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	calls  map[string]*atomic.Int64
}

// newFake starts a fake WeChat with routes keyed by path ("/sns/userinfo").
func newFake(tb testing.TB, routes map[string]http.HandlerFunc) *fakeWeChat {
	tb.Helper()
	f := &fakeWeChat{routes: routes, calls: map[string]*atomic.Int64{}}
	for p := range routes {
		f.calls[p] = new(atomic.Int64)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		h, ok := f.routes[r.URL.Path]
		n := f.calls[r.URL.Path]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		n.Add(1)
		h(w, r)
	}))
	tb.Cleanup(f.srv.Close)
	return f
}

// count is the number of requests path received.
func (f *fakeWeChat) count(path string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.calls[path]; ok {
		return n.Load()
	}
	return 0
}

// newTestClient returns a Client for f with retries not waiting.
func newTestClient(tb testing.TB, f *fakeWeChat) *Client {
	tb.Helper()
	base := "http://127.0.0.1:1"
	if f != nil {
		base = f.srv.URL
	}
	c, err := NewClient(Config{
		AppID: testAppID, AppSecret: testSecret,
		Endpoint:   EmulatorEndpoint(base),
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
	})
	if err != nil {
		tb.Fatal(err)
	}
	c.backoff = func(int) time.Duration { return 0 }
	return c
}

// jsonBody answers body with status 200.
func jsonBody(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

// queryTo returns next keeping each request's query in *q first.
func queryTo(q *url.Values, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		*q = r.URL.Query()
		next(w, r)
	}
}

// errBody answers WeChat's error shape with its " rid: ..." suffix.
func errBody(code int, msg string) http.HandlerFunc {
	return jsonBody(fmt.Sprintf(`{"errcode":%d,"errmsg":"%s rid: 6650a1b2-1c2d3e4f-5a6b7c8d"}`, code, msg))
}

// sequence answers with hs in turn, repeating the last.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(hs) {
			i = len(hs) - 1
		}
		hs[i](w, r)
	}
}

// assertNoSecret fails when s contains any of the secrets.
func assertNoSecret(tb testing.TB, s string, secrets ...string) {
	tb.Helper()
	for _, sec := range append(secrets, testSecret) {
		if sec != "" && strings.Contains(s, sec) {
			tb.Fatalf("%q leaks secret %q", s, sec)
		}
	}
}

// fakeCache is an in-memory store.TokenCache with fencing.
type fakeCache struct {
	mu     sync.Mutex
	m      map[string]store.CachedToken
	gets   atomic.Int64
	sets   atomic.Int64
	setErr error // returned by SetToken when non-nil
}

var _ store.TokenCache = (*fakeCache)(nil)

func newFakeCache() *fakeCache { return &fakeCache{m: map[string]store.CachedToken{}} }

func (c *fakeCache) GetToken(_ context.Context, name string) (store.CachedToken, error) {
	c.gets.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[name]
	if !ok {
		return store.CachedToken{}, store.ErrNotFound
	}
	return t, nil
}

func (c *fakeCache) SetToken(_ context.Context, name string, t store.CachedToken) error {
	c.sets.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.setErr != nil {
		return c.setErr
	}
	if old, ok := c.m[name]; ok && old.Fence > t.Fence {
		return store.ErrStale
	}
	c.m[name] = t
	return nil
}

// fakeLocker is an in-process store.Locker with increasing fences; ttl is
// ignored (leases last until released).
type fakeLocker struct {
	mu     sync.Mutex
	held   map[string]chan struct{}
	fence  atomic.Int64
	grants atomic.Int64
}

var _ store.Locker = (*fakeLocker)(nil)

func newFakeLocker() *fakeLocker { return &fakeLocker{held: map[string]chan struct{}{}} }

type fakeLease struct {
	l     *fakeLocker
	name  string
	fence int64
	ch    chan struct{}
	once  sync.Once
}

func (l *fakeLease) Fence() int64 { return l.fence }

func (l *fakeLease) Release(context.Context) error {
	l.once.Do(func() {
		l.l.mu.Lock()
		if l.l.held[l.name] == l.ch {
			delete(l.l.held, l.name)
		}
		l.l.mu.Unlock()
		close(l.ch)
	})
	return nil
}

func (l *fakeLocker) Lock(ctx context.Context, name string, _ time.Duration) (store.Lease, error) {
	for {
		l.mu.Lock()
		ch, busy := l.held[name]
		if !busy {
			ch = make(chan struct{})
			l.held[name] = ch
			l.mu.Unlock()
			l.grants.Add(1)
			return &fakeLease{l: l, name: name, fence: l.fence.Add(1), ch: ch}, nil
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}

// newTestBox returns a secret.Box with a fixed key.
func newTestBox(tb testing.TB) *secret.Box {
	tb.Helper()
	b, err := secret.NewBox([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
