package store

import (
	"context"
	"errors"
	"time"
)

// Mirror is the in-memory side of [MirroredRecords]: Records that count the
// live records they evicted to stay under a bound (memory.Store).
type Mirror interface {
	Records
	// Evictions returns how many live records were evicted since creation.
	Evictions() uint64
}

// MirroredRecords keeps every record in Durable (the database, so it
// survives a restart) and a copy in Mirror (process memory), and answers
// Get from the mirror alone while the mirror has evicted nothing: reads on
// a hot path (the revocation check of every /verify) then cost no database
// round trip. Once the mirror has evicted a record (its bound was reached),
// Get reads Durable, so an evicted record is never taken for an absent one.
// Writes go to Durable first, then to the mirror; PutIfAbsent and Take are
// decided by Durable. Fill the mirror with [MirroredRecords.Load] before
// serving. It suits one process per database (SQLite): another process
// writing to Durable is not seen by this mirror.
type MirroredRecords struct {
	Mirror  Mirror
	Durable Records
}

var _ Records = MirroredRecords{}

// Load copies into the mirror the live records each yields (key, value,
// time left): the Durable records of the mirrored keyspace. Errors are
// each's or the mirror's.
func (m MirroredRecords) Load(ctx context.Context, each func(ctx context.Context, fn func(key string, val []byte, ttl time.Duration) error) error) error {
	return each(ctx, func(key string, val []byte, ttl time.Duration) error {
		if ttl <= 0 {
			return nil
		}
		return m.Mirror.Put(ctx, key, val, ttl)
	})
}

// PutIfAbsent stores in Durable unless a live record exists there, and
// copies what it stored to the mirror.
func (m MirroredRecords) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := m.Durable.PutIfAbsent(ctx, key, val, ttl)
	if err != nil || !ok {
		return ok, err
	}
	return true, m.Mirror.Put(ctx, key, val, ttl)
}

// Put stores in Durable, then in the mirror.
func (m MirroredRecords) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := m.Durable.Put(ctx, key, val, ttl); err != nil {
		return err
	}
	return m.Mirror.Put(ctx, key, val, ttl)
}

// Get reads the mirror while it is complete, else Durable.
func (m MirroredRecords) Get(ctx context.Context, key string) ([]byte, error) {
	if m.Mirror.Evictions() == 0 {
		return m.Mirror.Get(ctx, key)
	}
	return m.Durable.Get(ctx, key)
}

// Take takes from Durable (which decides among concurrent callers) and
// drops the mirror's copy.
func (m MirroredRecords) Take(ctx context.Context, key string) ([]byte, error) {
	val, err := m.Durable.Take(ctx, key)
	if derr := m.Mirror.Delete(ctx, key); derr != nil && err == nil {
		err = derr
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return val, err
}

// Delete removes key from Durable, then from the mirror.
func (m MirroredRecords) Delete(ctx context.Context, key string) error {
	if err := m.Durable.Delete(ctx, key); err != nil {
		return err
	}
	return m.Mirror.Delete(ctx, key)
}
