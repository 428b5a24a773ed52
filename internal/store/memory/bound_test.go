package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/store/storetest"
)

// TestStore_MaxRecordBytes: a flood of records stays under the byte limit;
// what is evicted first is what expires first, and the records just
// written are always there.
func TestStore_MaxRecordBytes(t *testing.T) {
	ctx := context.Background()
	clock := clocktest.New(storetest.Epoch())
	const limit = 1 << 20
	s := memory.New(clock.Now, memory.WithMaxRecordBytes(limit))
	t.Cleanup(func() { s.Close() })

	// Long-lived records first (login state: 10 min), then a flood of
	// short-lived ones (de-duplication: 30 s) ten times the limit.
	const long = 200
	for i := range long {
		if err := s.Put(ctx, fmt.Sprint("state:", i), make([]byte, 100), 10*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	val := make([]byte, 400)
	const flood = 20000
	for i := range flood {
		key := fmt.Sprint("dedup:", i)
		ok, err := s.PutIfAbsent(ctx, key, val, 30*time.Second)
		if err != nil || !ok {
			t.Fatalf("PutIfAbsent(%s) = %v, %v", key, ok, err)
		}
		if _, err := s.Get(ctx, key); err != nil {
			t.Fatalf("the record just stored is gone: %v", err)
		}
	}
	st := s.RecordStats()
	lost := 0
	for i := range long {
		if _, err := s.Get(ctx, fmt.Sprint("state:", i)); errors.Is(err, store.ErrNotFound) {
			lost++
		}
	}
	t.Logf("%d records of about %d bytes under a %d-byte limit -> %d records, %d bytes held, %d evicted; %d of %d longer-lived records lost",
		flood+long, len(val)+112, limit, st.Records, st.Bytes, st.Evictions, lost, long)
	if st.Bytes > limit {
		t.Errorf("holding %d bytes, over the %d-byte limit", st.Bytes, limit)
	}
	if st.Evictions == 0 {
		t.Error("no eviction counted")
	}
	if lost != 0 {
		t.Errorf("%d longer-lived records evicted before short-lived ones", lost)
	}

	// Expired records go before live ones.
	clock.Advance(time.Minute)
	before := s.RecordStats().Evictions
	for i := range 1000 {
		s.Put(ctx, fmt.Sprint("dedup2:", i), val, 30*time.Second)
	}
	if got := s.RecordStats().Evictions - before; got != 0 {
		t.Errorf("%d live records evicted while expired ones were there", got)
	}
}
