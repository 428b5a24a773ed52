package memory

import (
	"context"
	"testing"
	"time"
	"unsafe"
)

func TestStore_Sweep(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := New(func() time.Time { return at })
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for i, ttl := range []time.Duration{time.Second, time.Hour} {
		if err := s.Put(ctx, []string{"short", "long"}[i], []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	at = at.Add(time.Minute)
	s.Sweep()
	n := 0
	for i := range s.records {
		for k := range s.records[i].m {
			if k != "long" {
				t.Fatalf("Sweep kept %q", k)
			}
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d records after Sweep, want 1 (long)", n)
	}
}

// TestRecordShard_CacheLine: a shard fills one 64-byte cache line, so the
// locks of neighbouring shards are not written through one line.
func TestRecordShard_CacheLine(t *testing.T) {
	if n := unsafe.Sizeof(recordShard{}); n != 64 {
		t.Errorf("recordShard is %d bytes, want 64", n)
	}
}
