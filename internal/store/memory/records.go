package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// shardCount is the number of record shards (a power of two): enough that
// the /login, /wx and /verify hot paths of two to a few dozen cores rarely
// meet on one lock.
const shardCount = 64

// recordOverhead is what a record costs beyond its key and value bytes, in
// bytes: the map slot, the string and slice headers, the expiry and
// allocator rounding, estimated.
const recordOverhead = 112

// record is one stored value and its expiry in Unix nanoseconds.
type record struct {
	val []byte
	exp int64
}

// size is what r costs under key, in bytes, as counted against the limit.
func (r record) size(key string) int64 { return int64(len(key)+len(r.val)) + recordOverhead }

// recordShard is one lock and the records whose key hashes to it.
type recordShard struct {
	mu    sync.RWMutex
	m     map[string]record
	bytes int64    // sum of size over m
	max   int64    // bytes this shard may hold; 0 is unbounded
	_     [16]byte // to 64 bytes, a cache line: neighbouring shards' locks do not share one
}

// recordShards spreads records over shardCount independently locked maps.
type recordShards [shardCount]recordShard

// init makes the maps; maxBytes > 0 bounds the whole set (each shard gets
// an equal share).
func (rs *recordShards) init(maxBytes int64) {
	for i := range rs {
		rs[i].m = map[string]record{}
		if maxBytes > 0 {
			rs[i].max = max(maxBytes/shardCount, 1)
		}
	}
}

// set stores r under key, keeping the shard's byte count, and evicts when
// the shard is over its share: first the records already expired at now,
// then those closest to expiry (the ones that would be gone soonest
// anyway), never r itself, down to evictTo of the share, so that the next
// eviction is many writes away: one scan and sort per batch of writes, not
// a scan of the shard per write. It returns how many live records were
// evicted. The caller holds sh.mu.
func (sh *recordShard) set(key string, r record, now int64) int {
	if old, ok := sh.m[key]; ok {
		sh.bytes -= old.size(key)
	}
	sh.m[key] = r
	sh.bytes += r.size(key)
	if sh.max == 0 || sh.bytes <= sh.max {
		return 0
	}
	type victim struct {
		key string
		r   record
	}
	live := make([]victim, 0, len(sh.m))
	for k, o := range sh.m {
		switch {
		case k == key:
		case o.exp <= now:
			sh.del(k, o)
		default:
			live = append(live, victim{k, o})
		}
	}
	target := sh.max - sh.max/evictHeadroom
	if sh.bytes <= target {
		return 0
	}
	slices.SortFunc(live, func(a, b victim) int { return cmp.Compare(a.r.exp, b.r.exp) })
	evicted := 0
	for _, v := range live {
		if sh.bytes <= target {
			break
		}
		sh.del(v.key, v.r)
		evicted++
	}
	return evicted
}

// evictHeadroom sets how far below its share an over-full shard is
// brought: to (1 - 1/evictHeadroom) of it.
const evictHeadroom = 4

// del removes key (whose record is r). The caller holds sh.mu.
func (sh *recordShard) del(key string, r record) {
	delete(sh.m, key)
	sh.bytes -= r.size(key)
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
				sh.del(k, r)
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
	s.evicted(sh.set(key, record{val: clone(val), exp: now.Add(ttl).UnixNano()}, now.UnixNano()))
	return true, nil
}

// Put stores a copy of val under key for ttl, replacing any record. An
// error is returned only for a ttl <= 0.
func (s *Store) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	now := s.now()
	r := record{val: clone(val), exp: now.Add(ttl).UnixNano()}
	sh := s.records.shard(key)
	sh.mu.Lock()
	n := sh.set(key, r, now.UnixNano())
	sh.mu.Unlock()
	s.evicted(n)
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
		sh.del(key, r)
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
	if r, ok := sh.m[key]; ok {
		sh.del(key, r)
	}
	sh.mu.Unlock()
	return nil
}

// clone returns a copy of b that is never nil.
func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// evicted counts n live records evicted to stay under the limit.
func (s *Store) evicted(n int) {
	if n > 0 {
		s.evictions.Add(uint64(n))
	}
}

// Evictions returns how many live records were evicted to stay under the
// limit since New ([store.Mirror]).
func (s *Store) Evictions() uint64 { return s.evictions.Load() }

// RecordStats is the size of a Store's records, for metrics and tests.
type RecordStats struct {
	Records   int    // records held, expired ones not yet swept included
	Bytes     int64  // their cost as counted against the limit (keys, values, overhead)
	MaxBytes  int64  // the limit ([WithMaxRecordBytes]); 0 is unbounded
	Evictions uint64 // live records evicted to stay under the limit, since New
}

// RecordStats returns the current size of the records.
func (s *Store) RecordStats() RecordStats {
	st := RecordStats{Evictions: s.evictions.Load()}
	for i := range s.records {
		sh := &s.records[i]
		sh.mu.RLock()
		st.Records += len(sh.m)
		st.Bytes += sh.bytes
		st.MaxBytes += sh.max
		sh.mu.RUnlock()
	}
	return st
}
