package store

import (
	"context"
	"strings"
	"time"
)

// RecordRoute sends the records whose key starts with Prefix to Records.
type RecordRoute struct {
	Prefix  string // e.g. "dedup:"
	Records Records
}

// RoutedRecords is a [Records] that keeps each key in the Records of the
// first route whose prefix the key starts with, else in Default: one
// instance keeps what must survive a restart (login state, revocations, QR
// attempts) in its database and what is only worth seconds (callback
// de-duplication) in memory. Every operation on one key goes to one place,
// so each keeps the guarantees of [Records]; errors are those of the
// chosen Records.
type RoutedRecords struct {
	Default Records
	Routes  []RecordRoute
}

var _ Records = RoutedRecords{}

func (r RoutedRecords) pick(key string) Records {
	for _, rt := range r.Routes {
		if strings.HasPrefix(key, rt.Prefix) {
			return rt.Records
		}
	}
	return r.Default
}

// PutIfAbsent is [Records.PutIfAbsent] on the Records of key's route.
func (r RoutedRecords) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return r.pick(key).PutIfAbsent(ctx, key, val, ttl)
}

// Put is [Records.Put] on the Records of key's route.
func (r RoutedRecords) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return r.pick(key).Put(ctx, key, val, ttl)
}

// Get is [Records.Get] on the Records of key's route.
func (r RoutedRecords) Get(ctx context.Context, key string) ([]byte, error) {
	return r.pick(key).Get(ctx, key)
}

// Take is [Records.Take] on the Records of key's route.
func (r RoutedRecords) Take(ctx context.Context, key string) ([]byte, error) {
	return r.pick(key).Take(ctx, key)
}

// Delete is [Records.Delete] on the Records of key's route.
func (r RoutedRecords) Delete(ctx context.Context, key string) error {
	return r.pick(key).Delete(ctx, key)
}
