package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// shardCount is the number of record shards (a power of two): enough that
// the /login, /wx and /verify hot paths of two to a few dozen cores rarely
// meet on one lock.
const shardCount = 64

// record is one stored value and its expiry in Unix nanoseconds.
type record struct {
	val []byte
	exp int64
}

// recordShard is one lock and the records whose key hashes to it.
type recordShard struct {
	mu sync.RWMutex
	m  map[string]record
	_  [32]byte // pad to 64 bytes: keep neighbouring shards' locks off one cache line
}

// recordShards spreads records over shardCount independently locked maps.
type recordShards [shardCount]recordShard

func (rs *recordShards) init() {
	for i := range rs {
		rs[i].m = map[string]record{}
	}
}

// shard returns the shard of key (FNV-1a, computed without allocating).
func (rs *recordShards) shard(key string) *recordShard {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return &rs[h&(shardCount-1)]
}

// sweep deletes the records expired at now (Unix nanoseconds).
func (rs *recordShards) sweep(now int64) {
	for i := range rs {
		sh := &rs[i]
		sh.mu.Lock()
		for k, r := range sh.m {
			if r.exp <= now {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

// checkTTL rejects a ttl that would store an already expired record.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: ttl %v is not positive", ttl)
	}
	return nil
}

// PutIfAbsent stores a copy of val under key for ttl unless a live record
// exists, and reports whether it stored. An error is returned only for a ttl
// <= 0.
func (s *Store) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	now := s.now()
	sh := s.records.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r, ok := sh.m[key]; ok && r.exp > now.UnixNano() {
		return false, nil
	}
	sh.m[key] = record{val: clone(val), exp: now.Add(ttl).UnixNano()}
	return true, nil
}

// Put stores a copy of val under key for ttl, replacing any record. An
// error is returned only for a ttl <= 0.
func (s *Store) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	r := record{val: clone(val), exp: s.now().Add(ttl).UnixNano()}
	sh := s.records.shard(key)
	sh.mu.Lock()
	sh.m[key] = r
	sh.mu.Unlock()
	return nil
}

// Get returns a copy of the live value of key, or store.ErrNotFound. It
// allocates only the returned slice.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	now := s.now().UnixNano()
	sh := s.records.shard(key)
	sh.mu.RLock()
	r, ok := sh.m[key]
	sh.mu.RUnlock()
	if !ok || r.exp <= now {
		return nil, store.ErrNotFound
	}
	// Stored slices are never written after Put, so copying outside the
	// lock is safe.
	return clone(r.val), nil
}

// Take atomically returns and deletes the live value of key, or
// store.ErrNotFound.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	now := s.now().UnixNano()
	sh := s.records.shard(key)
	sh.mu.Lock()
	r, ok := sh.m[key]
	if ok {
		delete(sh.m, key)
	}
	sh.mu.Unlock()
	if !ok || r.exp <= now {
		return nil, store.ErrNotFound
	}
	return r.val, nil // removed from the map: the caller owns it now
}

// Delete removes key; deleting an absent key returns nil.
func (s *Store) Delete(ctx context.Context, key string) error {
	sh := s.records.shard(key)
	sh.mu.Lock()
	delete(sh.m, key)
	sh.mu.Unlock()
	return nil
}

// clone returns a copy of b that is never nil.
func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}
