package memory_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
)

// stateTTL is the life of a login state record (httpapi's default StateTTL).
const stateTTL = 10 * time.Minute

// stateKey returns a distinct "state:" key of the length /login uses (22
// base62 characters after the prefix) for each n.
func stateKey(prefix string, n uint64) string {
	var b [64]byte
	out := append(b[:0], prefix...)
	digits := strconv.AppendUint(nil, n, 36)
	for i := len(digits); i < 22; i++ {
		out = append(out, '0')
	}
	out = append(out, digits...)
	return string(out)
}

// BenchmarkRecords_StateRoundTrip is the login state record's life on the
// hot path: Put by /login, Get and Delete by /oauth/callback; every key is
// new, as every login's state is.
func BenchmarkRecords_StateRoundTrip(b *testing.B) {
	s := memory.New(nil)
	defer s.Close()
	ctx := context.Background()
	val := []byte("snsapi_userinfo\nhttps://h5.example.com/app/?from=menu")
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := stateKey("state:", seq.Add(1))
			if err := s.Put(ctx, key, val, stateTTL); err != nil {
				b.Error(err)
				return
			}
			got, err := s.Get(ctx, key)
			if err != nil || !bytes.Equal(got, val) {
				b.Errorf("Get(%s) = %q, %v", key, got, err)
				return
			}
			if err := s.Delete(ctx, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRecords_CallbackSequence is every record operation of one login:
// /login's Put of the state, then /oauth/callback's Get of "done:" (absent),
// Get of the state, PutIfAbsent of "cb:", Put of the sealed "done:" result
// and Delete of the state. The "cb:" and "done:" records are deleted at the
// end so that the store stays the same size whatever b.N is.
func BenchmarkRecords_CallbackSequence(b *testing.B) {
	s := memory.New(nil)
	defer s.Close()
	ctx := context.Background()
	val := []byte("snsapi_userinfo\nhttps://h5.example.com/app/?from=menu")
	done := bytes.Repeat([]byte{0xA5}, 420) // a sealed callbackResult is about this long
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			state := stateKey("", seq.Add(1))
			if err := s.Put(ctx, "state:"+state, val, stateTTL); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Get(ctx, "done:"+state); !errors.Is(err, store.ErrNotFound) {
				b.Errorf("done: before the callback: %v", err)
				return
			}
			if got, err := s.Get(ctx, "state:"+state); err != nil || !bytes.Equal(got, val) {
				b.Errorf("state: %q, %v", got, err)
				return
			}
			first, err := s.PutIfAbsent(ctx, "cb:"+state, []byte{1}, stateTTL)
			if err != nil || !first {
				b.Errorf("cb: PutIfAbsent = %v, %v; want true", first, err)
				return
			}
			if err := s.Put(ctx, "done:"+state, done, 2*time.Minute); err != nil {
				b.Error(err)
				return
			}
			if err := s.Delete(ctx, "state:"+state); err != nil {
				b.Error(err)
				return
			}
			s.Delete(ctx, "cb:"+state)
			s.Delete(ctx, "done:"+state)
		}
	})
}

// BenchmarkRecords_StateRoundTripRetained is a state's Put then Take (get
// and delete in one step) on a store already holding 100,000 live login states, the backlog ten minutes of
// /login at about 170 logins/s leave behind: map growth and the janitor's
// sweep are part of the cost.
func BenchmarkRecords_StateRoundTripRetained(b *testing.B) {
	s := memory.New(nil)
	defer s.Close()
	ctx := context.Background()
	val := []byte("snsapi_userinfo\nhttps://h5.example.com/app/?from=menu")
	for i := range 100_000 {
		if err := s.Put(ctx, stateKey("state:old", uint64(i)), val, stateTTL); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := stateKey("state:", seq.Add(1))
			if err := s.Put(ctx, key, val, stateTTL); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Take(ctx, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRecords_DedupAtLimit is the /wx de-duplication write under a
// sustained message rate: every message a new 400-byte record for 30 s, in
// a store already at its byte limit (WXAUTH_RECORDS_MEMORY_MB), so that
// each write makes room by eviction.
func BenchmarkRecords_DedupAtLimit(b *testing.B) {
	ctx := context.Background()
	s := memory.New(time.Now, memory.WithMaxRecordBytes(16<<20))
	b.Cleanup(func() { s.Close() })
	val := make([]byte, 400)
	key := func(i int) string { return "dedup:gh_bench:m:" + strconv.Itoa(i) }
	for i := range 64 << 10 { // past the limit: about 32k records fit
		s.PutIfAbsent(ctx, key(-1-i), val, 30*time.Second)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if ok, err := s.PutIfAbsent(ctx, key(i), val, 30*time.Second); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
