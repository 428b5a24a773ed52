package redis

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/storetest"
)

// openBench opens a store under a random prefix, deleting its keys when b
// ends; it skips b when WXAUTH_TEST_REDIS_URL is unset.
func openBench(b *testing.B) *Store {
	b.Helper()
	url := os.Getenv("WXAUTH_TEST_REDIS_URL")
	if url == "" {
		b.Skip("WXAUTH_TEST_REDIS_URL not set: e.g. redis://127.0.0.1:6379/0")
	}
	ctx := context.Background()
	prefix := "wxauth_bench_" + store.RandomBase62(12) + ":"
	s, err := Open(ctx, url, prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		iter := s.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = s.rdb.Del(ctx, iter.Val()).Err()
		}
		_ = s.Close()
	})
	return s
}

// BenchmarkStore_Records runs the storetest record benchmarks.
func BenchmarkStore_Records(b *testing.B) {
	storetest.BenchmarkRecords(b, func(b *testing.B) store.Records { return openBench(b) })
}

func BenchmarkStore_LockRelease(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := s.Lock(ctx, "token:wx1", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
