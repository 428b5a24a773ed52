package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/store/storetest"
)

// newStore returns a fresh memory store closed when t ends.
func newStore(t *testing.T, now func() time.Time) *memory.Store {
	t.Helper()
	s := memory.New(now)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore_Contract(t *testing.T) {
	storetest.Contract(t, newStore)
}

func TestStore_BadTTL(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Put(ctx, "k", []byte("v"), ttl); err == nil {
			t.Fatalf("Put with ttl %v succeeded", ttl)
		}
		if ok, err := s.PutIfAbsent(ctx, "k", []byte("v"), ttl); err == nil || ok {
			t.Fatalf("PutIfAbsent with ttl %v = %v, %v", ttl, ok, err)
		}
		if _, err := s.Lock(ctx, "l", ttl); err == nil {
			t.Fatalf("Lock with ttl %v succeeded", ttl)
		}
	}
}

func TestStore_GetAllocs(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	if err := s.Put(ctx, "revoked:jti", []byte("1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Get(ctx, "revoked:jti"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("Get of a live key: %v allocations, want at most 1 (the returned slice)", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := s.Get(ctx, "revoked:absent"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Get of an absent key: %v allocations, want 0", allocs)
	}
}

func BenchmarkStore_Get(b *testing.B) {
	s := memory.New(nil)
	defer s.Close()
	ctx := context.Background()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("revoked:%032d", i)
		if err := s.Put(ctx, keys[i], []byte("1"), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, keys[i&1023]); err != nil {
				b.Error(err) // not Fatal: this is not the benchmark's goroutine
				return
			}
			i++
		}
	})
}

func BenchmarkStore_PutIfAbsent(b *testing.B) {
	s := memory.New(nil)
	defer s.Close()
	ctx := context.Background()
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprintf("dedup:gh_0123456789|o%027d|%d", i, i)
	}
	val := []byte("1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.PutIfAbsent(ctx, keys[i&(1<<16-1)], val, time.Minute); err != nil {
				b.Error(err) // not Fatal: this is not the benchmark's goroutine
				return
			}
			i++
		}
	})
}
