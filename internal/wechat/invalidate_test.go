package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
)

func TestTokenManager_Invalidate(t *testing.T) {
	t.Run("CompareAndRefresh", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		t1 := mustToken(t, m)
		if err := m.Invalidate(context.Background(), "NOT-CURRENT"); err != nil {
			t.Fatal(err)
		}
		e.wantStableCalls(t, 1, "invalidating a non-current token must not refresh")
		if err := m.Invalidate(context.Background(), t1); err != nil {
			t.Fatal(err)
		}
		if tok := mustToken(t, m); tok != "TOKEN-2" {
			t.Fatal(tok)
		}
		if f := e.ts.forcedCalls(); len(f) != 2 || f[0] || !f[1] {
			t.Fatalf("force_refresh per call = %v, want [false true]", f)
		}
		// Reporting the old token again changes nothing.
		if err := m.Invalidate(context.Background(), t1); err != nil || e.fake.count("/cgi-bin/stable_token") != 2 {
			t.Fatalf("%v, %d calls", err, e.fake.count("/cgi-bin/stable_token"))
		}
	})
	t.Run("ConcurrentSameToken", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		t1 := mustToken(t, m)
		e.ts.gate = make(chan struct{})
		var wg sync.WaitGroup
		var bad atomic.Int64
		for range 100 {
			wg.Go(func() {
				if err := m.Invalidate(context.Background(), t1); err != nil {
					bad.Add(1)
				}
				if tok, err := m.AccessToken(context.Background()); err != nil || tok != "TOKEN-2" {
					bad.Add(1)
				}
			})
		}
		time.Sleep(10 * time.Millisecond) // let callers pile up; correctness does not depend on it
		e.release(t, &wg, &bad)
		e.wantStableCalls(t, 2, "cold + one refresh")
	})
	t.Run("AcrossProcesses", func(t *testing.T) {
		e := newTokenEnv(t)
		a, b := e.manager(t, ""), e.manager(t, "")
		t1 := mustToken(t, a)
		mustToken(t, b)
		if err := a.Invalidate(context.Background(), t1); err != nil {
			t.Fatal(err)
		}
		// b still holds t1 in process until it reports it.
		if err := b.Invalidate(context.Background(), t1); err != nil {
			t.Fatal(err)
		}
		if tok := mustToken(t, b); tok != "TOKEN-2" {
			t.Fatal(tok)
		}
		e.wantStableCalls(t, 2, "b adopts a's refresh from the cache")
	})
	t.Run("FailedRefreshDoesNotServeFailed", func(t *testing.T) {
		e := newTokenEnv(t)
		m := e.manager(t, "")
		t1 := mustToken(t, m)
		e.fake.mu.Lock()
		e.fake.routes["/cgi-bin/stable_token"] = errBody(CodeQuota, "reach max api daily quota limit")
		e.fake.mu.Unlock()
		if err := m.Invalidate(context.Background(), t1); !IsCode(err, CodeQuota) {
			t.Fatalf("err = %v", err)
		}
		if tok, err := m.AccessToken(context.Background()); err == nil {
			t.Fatalf("served %q after it was reported failed", tok)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		e := newTokenEnv(t)
		if err := e.manager(t, "").Invalidate(context.Background(), ""); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestTokenManager_StaleFence(t *testing.T) {
	e := newTokenEnv(t)
	m := e.manager(t, "")
	box := newTestBox(t)
	name := "access_token:" + testAppID
	// While this process fetches, its lease is lost and a newer holder
	// (fence 1000) stores its own token.
	e.ts.during = func() {
		if err := e.cache.SetToken(context.Background(), name, store.CachedToken{
			Value: box.Seal([]byte("NEWER"), []byte(name)), ExpiresAt: e.clock.Now().Add(2 * time.Hour), Fence: 1000,
		}); err != nil {
			t.Error(err)
		}
	}
	if tok := mustToken(t, m); tok != "NEWER" {
		t.Fatalf("got %q, want the newer holder's token", tok)
	}
	ct, _ := e.cache.GetToken(context.Background(), name)
	if ct.Fence != 1000 {
		t.Fatalf("stale writer overwrote the cache (fence %d)", ct.Fence)
	}
	e.ts.during = nil
	if tok := mustToken(t, m); tok != "NEWER" {
		t.Fatal(tok)
	}
}

func TestTokenManager_FenceRegression(t *testing.T) {
	// The cache holds an old, due value under a fence the locker has not
	// reached (its fences went back): serve the fetched token, and do not
	// refetch on every call.
	e := newTokenEnv(t)
	name := "access_token:" + testAppID
	e.cache.m[name] = store.CachedToken{
		Value: newTestBox(t).Seal([]byte("OLD"), []byte(name)), ExpiresAt: e.clock.Now().Add(time.Minute), Fence: 1000,
	}
	m := e.manager(t, "")
	for range 3 {
		if tok := mustToken(t, m); tok != "TOKEN-1" {
			t.Fatal(tok)
		}
	}
	e.wantStableCalls(t, 1, "")
}

func TestTokenManager_InvalidateForceOnlyWhenNeeded(t *testing.T) {
	// The cache holds X, due for refresh; T1 is reported failed. X is not
	// the failed value, so the refresh is a normal one; WeChat answers T1
	// again (stable_token repeats its current token), so the manager
	// forces a new one.
	var forced []bool
	var mu sync.Mutex
	f := newFake(t, map[string]http.HandlerFunc{"/cgi-bin/stable_token": func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ForceRefresh bool `json:"force_refresh"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		forced = append(forced, req.ForceRefresh)
		mu.Unlock()
		if req.ForceRefresh {
			jsonBody(`{"access_token":"T2","expires_in":7200}`)(w, r)
			return
		}
		jsonBody(`{"access_token":"T1","expires_in":7200}`)(w, r)
	}})
	clock := clocktest.New(time.Unix(1700000000, 0))
	cache := newFakeCache()
	name := "access_token:" + testAppID
	cache.m[name] = store.CachedToken{Value: newTestBox(t).Seal([]byte("X"), []byte(name)), ExpiresAt: clock.Now().Add(time.Minute)}
	c := newTestClient(t, f)
	c.now = clock.Now
	m, err := NewTokenManager(c, TokenConfig{Cache: cache, Locker: newFakeLocker(), Box: newTestBox(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Invalidate(context.Background(), "T1"); err != nil {
		t.Fatal(err)
	}
	if tok := mustToken(t, m); tok != "T2" {
		t.Fatal(tok)
	}
	if len(forced) != 2 || forced[0] || !forced[1] {
		t.Fatalf("force_refresh per call = %v, want [false true]", forced)
	}
}
