package session

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
)

// newClock is the tests' clock, at a fixed start.
func newClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
}

// fakeKeys is an in-memory store.Keys.
type fakeKeys struct {
	mu      sync.Mutex
	keys    []store.SigningKey
	updates int // successful UpdateKeys calls
	err     error
}

func (f *fakeKeys) ListKeys(ctx context.Context) ([]store.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.keys), nil
}

func (f *fakeKeys) UpdateKeys(ctx context.Context, update func(old []store.SigningKey) ([]store.SigningKey, error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	out, err := update(slices.Clone(f.keys))
	if err != nil {
		return err
	}
	f.keys = out
	f.updates++
	return nil
}

// fakeRecords is an in-memory store.Records on the test clock.
type fakeRecords struct {
	mu    sync.Mutex
	now   func() time.Time
	m     map[string]record
	gets  int
	err   error // returned by Get when set
	puts  map[string]time.Duration
	putFn func(key string) error
}

type record struct {
	val []byte
	exp time.Time
}

func newFakeRecords(now func() time.Time) *fakeRecords {
	return &fakeRecords{now: now, m: map[string]record{}, puts: map[string]time.Duration{}}
}

func (f *fakeRecords) live(key string) (record, bool) {
	r, ok := f.m[key]
	if !ok || !f.now().Before(r.exp) {
		return record{}, false
	}
	return r, true
}

func (f *fakeRecords) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.live(key); ok {
		return false, nil
	}
	f.m[key] = record{slices.Clone(val), f.now().Add(ttl)}
	return true, nil
}

func (f *fakeRecords) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.putFn != nil {
		if err := f.putFn(key); err != nil {
			return err
		}
	}
	f.m[key] = record{slices.Clone(val), f.now().Add(ttl)}
	f.puts[key] = ttl
	return nil
}

func (f *fakeRecords) Get(ctx context.Context, key string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.err != nil {
		return nil, f.err
	}
	r, ok := f.live(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return r.val, nil
}

func (f *fakeRecords) Take(ctx context.Context, key string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.live(key)
	delete(f.m, key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return r.val, nil
}

func (f *fakeRecords) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, key)
	return nil
}

func (f *fakeRecords) getCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

// fakeUsers is an in-memory store.Users keyed by ID.
type fakeUsers struct {
	mu sync.Mutex
	m  map[string]store.User
}

func (f *fakeUsers) UpsertUser(ctx context.Context, u store.User, now time.Time) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[u.ID] = u
	return u, nil
}

func (f *fakeUsers) GetUser(ctx context.Context, id string) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.m[id]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return u, nil
}

func (f *fakeUsers) FindUser(ctx context.Context, appID, openID string) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.m {
		if u.AppID == appID && u.OpenID == openID {
			return u, nil
		}
	}
	return store.User{}, store.ErrNotFound
}

func (f *fakeUsers) set(u store.User) {
	f.mu.Lock()
	f.m[u.ID] = u
	f.mu.Unlock()
}

func (f *fakeUsers) delete(id string) {
	f.mu.Lock()
	delete(f.m, id)
	f.mu.Unlock()
}

// env is a Manager on fakes and a test clock.
type env struct {
	clock   *clocktest.Clock
	keys    *fakeKeys
	refresh *memory.Store // the real in-memory RefreshTokens
	records *fakeRecords
	users   *fakeUsers
	box     *secret.Box
	cfg     Config
	m       *Manager
}

var testUser = store.User{ID: "u_1", AppID: "wx0123456789abcdef", OpenID: "oOPENID1", UnionID: "", Scope: "snsapi_base"}

func testSubject() Subject {
	return Subject{UserID: testUser.ID, OpenID: testUser.OpenID, AppID: testUser.AppID, Scope: "snsapi_base"}
}

func newBox(tb testing.TB, b byte) *secret.Box {
	tb.Helper()
	k := make([]byte, secret.KeySize)
	for i := range k {
		k[i] = b
	}
	box, err := secret.NewBox(k)
	if err != nil {
		tb.Fatal(err)
	}
	return box
}

// newEnv builds a Manager with alg and optional config changes.
func newEnv(tb testing.TB, alg string, mod ...func(*Config)) *env {
	tb.Helper()
	c := newClock()
	e := &env{
		clock:   c,
		keys:    &fakeKeys{},
		refresh: memory.New(c.Now),
		records: newFakeRecords(c.Now),
		users:   &fakeUsers{m: map[string]store.User{testUser.ID: testUser}},
		box:     newBox(tb, 7),
	}
	e.cfg = Config{
		Issuer:      "https://auth.example.com",
		Alg:         alg,
		KeyRotation: DefaultKeyRotation,
		Box:         e.box,
		Now:         c.Now,
		Logger:      slog.New(slog.DiscardHandler),
	}
	for _, f := range mod {
		f(&e.cfg)
	}
	e.m = e.newManager(tb)
	return e
}

func (e *env) stores() Stores {
	return Stores{Keys: e.keys, RefreshTokens: e.refresh, Records: e.records, Users: e.users}
}

// newManager builds another Manager (another instance) on the same stores.
func (e *env) newManager(tb testing.TB) *Manager {
	tb.Helper()
	m, err := NewManager(context.Background(), e.cfg, e.stores())
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	return m
}

func (e *env) issue(tb testing.TB) Tokens {
	tb.Helper()
	t, err := e.m.Issue(context.Background(), testSubject())
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return t
}
