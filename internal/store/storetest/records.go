package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
)

// TestRecords checks the [store.Records] contract: round trips of odd keys
// and binary values, replacement, PutIfAbsent and Take under 64 concurrent
// callers (exactly one winner), expiry (lazy, as seen by every method), and
// that a returned value is the caller's own copy.
func TestRecords(t *testing.T, newStore NewFunc[store.Records]) {
	setup := func(t *testing.T) (store.Records, *clocktest.Clock) {
		clock := clocktest.New(Epoch())
		return newStore(t, clock.Now), clock
	}

	t.Run("PutGet", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		val := []byte("v\x00\xff1")
		noErr(t, s.Put(ctx, "state:a", val, time.Hour), "Put")
		val[0] = 'X' // the store must have kept its own copy
		got, err := s.Get(ctx, "state:a")
		noErr(t, err, "Get")
		if !bytes.Equal(got, []byte("v\x00\xff1")) {
			t.Fatalf("Get = %q, want %q", got, "v\x00\xff1")
		}
		got[0] = 'Y' // nor may the caller's slice alias it
		got, err = s.Get(ctx, "state:a")
		noErr(t, err, "Get again")
		if !bytes.Equal(got, []byte("v\x00\xff1")) {
			t.Fatalf("Get after mutating = %q", got)
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		s, _ := setup(t)
		_, err := s.Get(testCtx(t), "state:none")
		isErr(t, err, store.ErrNotFound, "Get missing")
	})

	t.Run("OddKeysAndValues", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		big := bytes.Repeat([]byte{0, 1, 2, 0xfe}, 16<<10) // 64 KiB
		cases := map[string][]byte{
			"dedup:gh_123|oABC|1234567890": []byte("1"),
			"glob:*?[a-z]\\":               []byte("glob"),
			"unicode:登录:é":                 []byte("中文"),
			"space and 'quote\"":           []byte("q"),
			"big":                          big,
			"empty":                        {},
		}
		for k, v := range cases {
			noErr(t, s.Put(ctx, k, v, time.Hour), "Put "+k)
		}
		for k, v := range cases {
			got, err := s.Get(ctx, k)
			noErr(t, err, "Get "+k)
			if !bytes.Equal(got, v) {
				t.Fatalf("Get %q: %d bytes, want %d", k, len(got), len(v))
			}
		}
		if _, err := s.Get(ctx, "glob:a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("key with glob characters matched another key: %v", err)
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		noErr(t, s.Put(ctx, "k", []byte("one"), time.Hour), "Put one")
		noErr(t, s.Put(ctx, "k", []byte("two"), time.Hour), "Put two")
		wantValue(t, ctx, s, "k", "two")
	})

	t.Run("PutIfAbsent", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		ok, err := s.PutIfAbsent(ctx, "k", []byte("first"), time.Hour)
		noErr(t, err, "PutIfAbsent first")
		if !ok {
			t.Fatal("PutIfAbsent on an empty key = false")
		}
		ok, err = s.PutIfAbsent(ctx, "k", []byte("second"), time.Hour)
		noErr(t, err, "PutIfAbsent second")
		if ok {
			t.Fatal("PutIfAbsent on a live key = true")
		}
		wantValue(t, ctx, s, "k", "first")
	})

	t.Run("PutIfAbsentConcurrent", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		const n = 64
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []int
			errs    []error
		)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				ok, err := s.PutIfAbsent(ctx, "dedup:race", fmt.Appendf(nil, "%d", i), time.Hour)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					winners = append(winners, i)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d errors, first: %v", len(errs), errs[0])
		}
		if len(winners) != 1 {
			t.Fatalf("%d callers got true, want exactly 1", len(winners))
		}
		got, err := s.Get(ctx, "dedup:race")
		noErr(t, err, "Get")
		if want := fmt.Sprint(winners[0]); string(got) != want {
			t.Fatalf("stored %q, but the winner was %s", got, want)
		}
	})

	t.Run("Take", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		noErr(t, s.Put(ctx, "qr:1", []byte("v"), time.Hour), "Put")
		got, err := s.Take(ctx, "qr:1")
		noErr(t, err, "Take")
		if string(got) != "v" {
			t.Fatalf("Take = %q, want v", got)
		}
		_, err = s.Take(ctx, "qr:1")
		isErr(t, err, store.ErrNotFound, "second Take")
		_, err = s.Get(ctx, "qr:1")
		isErr(t, err, store.ErrNotFound, "Get after Take")
	})

	t.Run("TakeConcurrent", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		noErr(t, s.Put(ctx, "code:once", []byte("v"), time.Hour), "Put")
		const n = 64
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			got       int
			otherErrs []error
		)
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				v, err := s.Take(ctx, "code:once")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && string(v) == "v":
					got++
				case errors.Is(err, store.ErrNotFound):
				default:
					otherErrs = append(otherErrs, fmt.Errorf("take = %q, %w", v, err))
				}
			})
		}
		close(start)
		wg.Wait()
		if len(otherErrs) > 0 {
			t.Fatalf("unexpected results: %v", otherErrs)
		}
		if got != 1 {
			t.Fatalf("%d callers got the value, want exactly 1", got)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		noErr(t, s.Put(ctx, "k", []byte("v"), time.Hour), "Put")
		noErr(t, s.Delete(ctx, "k"), "Delete")
		_, err := s.Get(ctx, "k")
		isErr(t, err, store.ErrNotFound, "Get after Delete")
		noErr(t, s.Delete(ctx, "k"), "Delete absent")
		ok, err := s.PutIfAbsent(ctx, "k", []byte("again"), time.Hour)
		noErr(t, err, "PutIfAbsent after Delete")
		if !ok {
			t.Fatal("PutIfAbsent after Delete = false")
		}
	})

	t.Run("NonPositiveTTL", func(t *testing.T) {
		s, _ := setup(t)
		ctx := testCtx(t)
		for _, ttl := range []time.Duration{0, -time.Second} {
			if err := s.Put(ctx, "k", []byte("v"), ttl); err == nil {
				t.Fatalf("Put with ttl %v succeeded", ttl)
			}
			if ok, err := s.PutIfAbsent(ctx, "k", []byte("v"), ttl); err == nil || ok {
				t.Fatalf("PutIfAbsent with ttl %v = %v, %v; want an error", ttl, ok, err)
			}
		}
		_, err := s.Get(ctx, "k")
		isErr(t, err, store.ErrNotFound, "Get after refused puts")
	})

	t.Run("LiveBeforeExpiry", func(t *testing.T) {
		s, clock := setup(t)
		ctx := testCtx(t)
		noErr(t, s.Put(ctx, "k", []byte("v"), time.Hour), "Put")
		clock.Advance(59 * time.Minute)
		if _, err := s.Get(ctx, "k"); err != nil {
			t.Fatalf("Get before expiry: %v", err)
		}
		ok, err := s.PutIfAbsent(ctx, "k", []byte("w"), time.Hour)
		noErr(t, err, "PutIfAbsent before expiry")
		if ok {
			t.Fatal("PutIfAbsent before expiry = true")
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		s, clock := setup(t)
		ctx := testCtx(t)
		const ttl = 200 * time.Millisecond
		for _, k := range []string{"get", "take", "pia"} {
			noErr(t, s.Put(ctx, k, []byte("v"), ttl), "Put "+k)
		}
		ok, err := s.PutIfAbsent(ctx, "pia2", []byte("v"), ttl)
		noErr(t, err, "PutIfAbsent pia2")
		if !ok {
			t.Fatal("PutIfAbsent pia2 = false")
		}
		eventually(t, clock, time.Second, "Get of an expired record fails", func() bool {
			_, err := s.Get(ctx, "get")
			return errors.Is(err, store.ErrNotFound)
		})
		_, err = s.Take(ctx, "take")
		isErr(t, err, store.ErrNotFound, "Take expired")
		for _, k := range []string{"pia", "pia2"} {
			ok, err := s.PutIfAbsent(ctx, k, []byte("new"), time.Hour)
			noErr(t, err, "PutIfAbsent over expired "+k)
			if !ok {
				t.Fatalf("PutIfAbsent over expired %s = false", k)
			}
			got, err := s.Get(ctx, k)
			noErr(t, err, "Get "+k)
			if string(got) != "new" {
				t.Fatalf("Get %s = %q, want new", k, got)
			}
		}
	})
}

// wantValue fails t unless s holds want under key.
func wantValue(t *testing.T, ctx context.Context, s store.Records, key, want string) {
	t.Helper()
	got, err := s.Get(ctx, key)
	noErr(t, err, "Get "+key)
	if string(got) != want {
		t.Fatalf("Get %s = %q, want %s", key, got, want)
	}
}
