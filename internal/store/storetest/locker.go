package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
)

// blockedFor is how long a Lock that must block is given before its context
// ends; the case asserts that it failed with the context's error, not how
// long it took.
const blockedFor = 150 * time.Millisecond

// TestLocker checks the [store.Locker] contract: a held lock excludes a
// second Lock until Release or ttl expiry, fences strictly increase with
// every grant, releasing a lost lease frees nothing, and concurrent holders
// never overlap.
func TestLocker(t *testing.T, newStore NewFunc[store.Locker]) {
	setup := func(t *testing.T) (store.Locker, *clocktest.Clock) {
		clock := clocktest.New(Epoch())
		return newStore(t, clock.Now), clock
	}
	// mustBlock fails t unless Lock(name) is still refused after blockedFor.
	mustBlock := func(t *testing.T, l store.Locker, name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(testCtx(t), blockedFor)
		defer cancel()
		lease, err := l.Lock(ctx, name, time.Hour)
		if err == nil {
			_ = lease.Release(context.Background())
			t.Fatalf("Lock(%q) succeeded while another lease holds it", name)
		}
		isErr(t, err, context.DeadlineExceeded, "blocked Lock")
	}

	t.Run("ExcludesUntilRelease", func(t *testing.T) {
		l, _ := setup(t)
		ctx := testCtx(t)
		first, err := l.Lock(ctx, "token:wx1", time.Hour)
		noErr(t, err, "first Lock")
		if first.Fence() <= 0 {
			t.Fatalf("Fence = %d, want > 0", first.Fence())
		}
		mustBlock(t, l, "token:wx1")

		got := make(chan store.Lease, 1)
		errc := make(chan error, 1)
		go func() {
			lease, err := l.Lock(ctx, "token:wx1", time.Hour)
			if err != nil {
				errc <- err
				return
			}
			got <- lease
		}()
		noErr(t, first.Release(ctx), "Release")
		select {
		case second := <-got:
			if second.Fence() <= first.Fence() {
				t.Fatalf("second Fence %d <= first %d", second.Fence(), first.Fence())
			}
			noErr(t, second.Release(ctx), "Release second")
		case err := <-errc:
			t.Fatalf("second Lock after Release: %v", err)
		case <-time.After(waitLimit):
			t.Fatal("second Lock still blocked after Release")
		}
	})

	t.Run("ExpiredLeaseIsTaken", func(t *testing.T) {
		l, clock := setup(t)
		ctx := testCtx(t)
		stale, err := l.Lock(ctx, "token:wx2", 300*time.Millisecond)
		noErr(t, err, "first Lock")
		var fresh store.Lease
		eventually(t, clock, time.Second, "Lock after the previous ttl", func() bool {
			c, cancel := context.WithTimeout(ctx, blockedFor)
			defer cancel()
			lease, err := l.Lock(c, "token:wx2", time.Hour)
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Lock: %v", err)
				}
				return false
			}
			fresh = lease
			return true
		})
		if fresh.Fence() <= stale.Fence() {
			t.Fatalf("fence after expiry %d <= stale %d", fresh.Fence(), stale.Fence())
		}
		// The stale holder's Release must not free the new holder's lock.
		noErr(t, stale.Release(ctx), "Release of a lost lease")
		mustBlock(t, l, "token:wx2")
		noErr(t, fresh.Release(ctx), "Release")
		noErr(t, fresh.Release(ctx), "Release twice")
	})

	t.Run("NonPositiveTTL", func(t *testing.T) {
		l, _ := setup(t)
		for _, ttl := range []time.Duration{0, -time.Second} {
			if lease, err := l.Lock(testCtx(t), "bad", ttl); err == nil {
				_ = lease.Release(context.Background())
				t.Fatalf("Lock with ttl %v succeeded", ttl)
			}
		}
	})

	t.Run("NamesIndependent", func(t *testing.T) {
		l, _ := setup(t)
		ctx, cancel := context.WithTimeout(testCtx(t), waitLimit)
		defer cancel()
		a, err := l.Lock(ctx, "a", time.Hour)
		noErr(t, err, "Lock a")
		b, err := l.Lock(ctx, "b", time.Hour)
		noErr(t, err, "Lock b while a is held")
		noErr(t, a.Release(ctx), "Release a")
		noErr(t, b.Release(ctx), "Release b")
	})

	t.Run("FencesIncrease", func(t *testing.T) {
		l, _ := setup(t)
		ctx := testCtx(t)
		var last int64
		for i := range 5 {
			lease, err := l.Lock(ctx, "fence", time.Hour)
			noErr(t, err, "Lock")
			if lease.Fence() <= last {
				t.Fatalf("grant %d: fence %d <= previous %d", i, lease.Fence(), last)
			}
			last = lease.Fence()
			noErr(t, lease.Release(ctx), "Release")
		}
	})

	t.Run("ConcurrentHoldersNeverOverlap", func(t *testing.T) {
		l, _ := setup(t)
		ctx := testCtx(t)
		const n = 8
		var (
			wg      sync.WaitGroup
			holders atomic.Int32
			overlap atomic.Bool
			mu      sync.Mutex
			fences  = map[int64]bool{}
			errs    []error
		)
		for range n {
			wg.Go(func() {
				lease, err := l.Lock(ctx, "mutex", time.Hour)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if holders.Add(1) > 1 {
					overlap.Store(true)
				}
				time.Sleep(time.Millisecond)
				holders.Add(-1)
				mu.Lock()
				fences[lease.Fence()] = true
				mu.Unlock()
				if err := lease.Release(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d errors, first: %v", len(errs), errs[0])
		}
		if overlap.Load() {
			t.Fatal("two leases of one name were held at once")
		}
		if len(fences) != n {
			t.Fatalf("%d distinct fences for %d grants", len(fences), n)
		}
	})
}

// TestTokenCache checks the [store.TokenCache] contract: round trip, ErrStale
// for a lower fence (the stored token kept), equal and higher fences accepted.
func TestTokenCache(t *testing.T, newStore NewFunc[store.TokenCache]) {
	setup := func(t *testing.T) store.TokenCache {
		clock := clocktest.New(Epoch())
		return newStore(t, clock.Now)
	}
	check := func(t *testing.T, c store.TokenCache, name string, want store.CachedToken) {
		t.Helper()
		got, err := c.GetToken(testCtx(t), name)
		noErr(t, err, "GetToken "+name)
		if !bytes.Equal(got.Value, want.Value) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Fence != want.Fence {
			t.Fatalf("GetToken %s = {%q %v %d}, want {%q %v %d}", name,
				got.Value, got.ExpiresAt, got.Fence, want.Value, want.ExpiresAt, want.Fence)
		}
	}

	t.Run("Missing", func(t *testing.T) {
		_, err := setup(t).GetToken(testCtx(t), "access_token:wx0")
		isErr(t, err, store.ErrNotFound, "GetToken missing")
	})

	t.Run("SetGet", func(t *testing.T) {
		c := setup(t)
		tok := store.CachedToken{Value: []byte("sealed\x00token"), ExpiresAt: Epoch().Add(7200 * time.Second), Fence: 3}
		noErr(t, c.SetToken(testCtx(t), "access_token:wx1", tok), "SetToken")
		check(t, c, "access_token:wx1", tok)
		_, err := c.GetToken(testCtx(t), "jsapi_ticket:wx1")
		isErr(t, err, store.ErrNotFound, "other name")
	})

	t.Run("Fencing", func(t *testing.T) {
		c := setup(t)
		ctx := testCtx(t)
		five := store.CachedToken{Value: []byte("five"), ExpiresAt: Epoch().Add(time.Hour), Fence: 5}
		noErr(t, c.SetToken(ctx, "t", five), "SetToken fence 5")
		err := c.SetToken(ctx, "t", store.CachedToken{Value: []byte("three"), ExpiresAt: Epoch().Add(2 * time.Hour), Fence: 3})
		isErr(t, err, store.ErrStale, "SetToken with a lower fence")
		check(t, c, "t", five)

		again := store.CachedToken{Value: []byte("five again"), ExpiresAt: Epoch().Add(90 * time.Minute), Fence: 5}
		noErr(t, c.SetToken(ctx, "t", again), "SetToken with an equal fence")
		check(t, c, "t", again)

		seven := store.CachedToken{Value: []byte("seven"), ExpiresAt: Epoch().Add(3 * time.Hour), Fence: 7}
		noErr(t, c.SetToken(ctx, "t", seven), "SetToken with a higher fence")
		check(t, c, "t", seven)
	})
}

// TestBroker checks the [store.Broker] contract: every subscriber of a topic
// gets each payload published after Subscribe returned, other topics are not
// delivered, and the channel closes when the subscriber's ctx ends.
func TestBroker(t *testing.T, newStore NewFunc[store.Broker]) {
	setup := func(t *testing.T) store.Broker {
		clock := clocktest.New(Epoch())
		return newStore(t, clock.Now)
	}
	recv := func(t *testing.T, ch <-chan []byte, want string) {
		t.Helper()
		select {
		case got, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed, want %q", want)
			}
			if string(got) != want {
				t.Fatalf("received %q, want %q", got, want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("nothing received, want %q", want)
		}
	}

	t.Run("TwoSubscribers", func(t *testing.T) {
		b := setup(t)
		ctx := testCtx(t)
		one, err := b.Subscribe(ctx, "qr:abc")
		noErr(t, err, "Subscribe one")
		two, err := b.Subscribe(ctx, "qr:abc")
		noErr(t, err, "Subscribe two")
		other, err := b.Subscribe(ctx, "qr:other")
		noErr(t, err, "Subscribe other")

		noErr(t, b.Publish(ctx, "qr:abc", []byte("scanned")), "Publish")
		noErr(t, b.Publish(ctx, "qr:other", []byte("marker")), "Publish marker")
		recv(t, one, "scanned")
		recv(t, two, "scanned")
		recv(t, other, "marker") // qr:abc's payload did not reach qr:other
	})

	t.Run("NoSubscriber", func(t *testing.T) {
		noErr(t, setup(t).Publish(testCtx(t), "qr:nobody", []byte("x")), "Publish without subscribers")
	})

	t.Run("CancelCloses", func(t *testing.T) {
		b := setup(t)
		ctx := testCtx(t)
		subCtx, cancel := context.WithCancel(ctx)
		ch, err := b.Subscribe(subCtx, "qr:gone")
		noErr(t, err, "Subscribe")
		stay, err := b.Subscribe(ctx, "qr:gone")
		noErr(t, err, "Subscribe stay")
		cancel()
		deadline := time.After(waitLimit)
		for closed := false; !closed; {
			select {
			case _, ok := <-ch:
				closed = !ok
			case <-deadline:
				t.Fatal("channel not closed after its ctx ended")
			}
		}
		noErr(t, b.Publish(ctx, "qr:gone", []byte("after")), "Publish after unsubscribe")
		recv(t, stay, "after")
	})
}
