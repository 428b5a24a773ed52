package redis

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/storetest"
)

// testURL returns WXAUTH_TEST_REDIS_URL or skips t.
func testURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("WXAUTH_TEST_REDIS_URL")
	if url == "" {
		t.Skip("WXAUTH_TEST_REDIS_URL not set: e.g. redis://127.0.0.1:6379/0")
	}
	return url
}

// newStore opens a store under a fresh random prefix whose keys are deleted,
// and the store closed, when t ends. now is ignored: Redis counts ttls.
func newStore(t *testing.T, _ func() time.Time) *Store {
	t.Helper()
	ctx := context.Background()
	prefix := "wxauth_test_" + store.RandomBase62(12) + ":"
	s, err := Open(ctx, testURL(t), prefix)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		iter := s.rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			if err := s.rdb.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup scan: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore_Contract(t *testing.T) {
	testURL(t)
	storetest.Contract(t, newStore)
}

func TestStore_PrefixIsolates(t *testing.T) {
	a, b := newStore(t, nil), newStore(t, nil)
	ctx := context.Background()
	if err := a.Put(ctx, "k", []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a store under another prefix sees the record: %v", err)
	}
	n, err := a.rdb.Exists(ctx, a.prefix+"rec:k").Result()
	if err != nil || n != 1 {
		t.Fatalf("record not under %q: %d, %v", a.prefix+"rec:k", n, err)
	}
}

func TestOpen_Unavailable(t *testing.T) {
	// A port nothing listens on: connection refused.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "redis://:s3cret-pass@127.0.0.1:1/0", "x:")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret-pass") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if _, err := Open(ctx, "http://:s3cret-pass@127.0.0.1:1/0", "x:"); err == nil || strings.Contains(err.Error(), "s3cret-pass") {
		t.Fatalf("Open of a bad URL: %v", err)
	}
}

func TestStore_BadTTL(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	if err := s.Put(ctx, "k", []byte("v"), 0); err == nil {
		t.Fatal("Put with ttl 0 succeeded")
	}
	if _, err := s.PutIfAbsent(ctx, "k", []byte("v"), time.Microsecond); err == nil {
		t.Fatal("PutIfAbsent with ttl 1µs succeeded")
	}
	if _, err := s.Lock(ctx, "l", -time.Second); err == nil {
		t.Fatal("Lock with a negative ttl succeeded")
	}
}

func TestStore_ClosedIsUnavailable(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	// A second client on the same prefix, closed: every call fails as
	// unavailable, and the cleanup of the first still works.
	closed, err := Open(ctx, testURL(t), s.prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := closed.Get(ctx, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get on a closed store: %v, want ErrUnavailable", err)
	}
	if err := closed.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping on a closed store: %v, want ErrUnavailable", err)
	}
}
