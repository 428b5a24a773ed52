package memory

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// SweepInterval is how often the janitor removes expired records.
const SweepInterval = time.Minute

// Compile-time checks of what Store implements.
var (
	_ store.Users         = (*Store)(nil)
	_ store.RefreshTokens = (*Store)(nil)
	_ store.Keys          = (*Store)(nil)
	_ store.Records       = (*Store)(nil)
	_ store.Locker        = (*Store)(nil)
	_ store.TokenCache    = (*Store)(nil)
	_ store.Broker        = (*Store)(nil)
)

// Store implements every interface of package store in memory. It is safe
// for concurrent use; its zero value is not usable: call [New].
type Store struct {
	now func() time.Time

	records   recordShards
	evictions atomic.Uint64 // live records evicted by the byte limit

	usersMu    sync.Mutex
	users      map[string]store.User // by ID
	byUnionID  map[string]string     // unionid -> ID
	byIdentity map[identity]string   // (appid, openid) -> ID

	refreshMu sync.Mutex
	refresh   map[string]store.RefreshToken // by hash
	revoked   map[string]time.Time          // family -> revocation time
	successor map[string]string             // used hash -> hash it was rotated into

	keysMu sync.Mutex
	keys   []store.SigningKey

	locksMu  sync.Mutex
	locks    map[string]*lockState
	released chan struct{} // closed and replaced whenever a lock frees

	tokensMu sync.Mutex
	tokens   map[string]store.CachedToken

	brokerMu sync.RWMutex
	subs     map[string]map[*subscriber]struct{}

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// identity is a user's (appid, openid).
type identity struct{ appID, openID string }

// Option configures a Store built by [New].
type Option func(*options)

type options struct {
	maxRecordBytes int64
}

// WithMaxRecordBytes bounds the records (keys, values and about 112 bytes
// of bookkeeping each) to about n bytes; n <= 0 leaves them unbounded (the
// default). The bound is kept per shard (n/64 each): storing past it
// removes that shard's expired records, then its live records closest to
// expiry, never the one just stored. Whoever needed an evicted record sees
// it as expired: ErrNotFound from Get, Take and, for PutIfAbsent, the key
// is free again. [Store.Evictions] counts the evictions.
func WithMaxRecordBytes(n int64) Option {
	return func(o *options) { o.maxRecordBytes = n }
}

// New returns an empty Store reading the time from now (time.Now when nil)
// and starts its janitor; call [Store.Close] to stop it.
func New(now func() time.Time, opts ...Option) *Store {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if now == nil {
		now = time.Now
	}
	s := &Store{
		now:        now,
		users:      map[string]store.User{},
		byUnionID:  map[string]string{},
		byIdentity: map[identity]string{},
		refresh:    map[string]store.RefreshToken{},
		revoked:    map[string]time.Time{},
		successor:  map[string]string{},
		locks:      map[string]*lockState{},
		released:   make(chan struct{}),
		tokens:     map[string]store.CachedToken{},
		subs:       map[string]map[*subscriber]struct{}{},
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	s.records.init(o.maxRecordBytes)
	go s.janitor()
	return s
}

// Close stops the janitor and waits for it to return. The Store stays
// usable (without periodic sweeping); Close is idempotent and returns nil.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Ping reports whether the store is usable; it always is, so it returns
// nil.
func (s *Store) Ping(ctx context.Context) error { return nil }

// janitor sweeps expired records and leases every SweepInterval until Close.
func (s *Store) janitor() {
	defer close(s.done)
	tick := time.NewTicker(SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.Sweep()
		}
	}
}

// Sweep removes every record expired at now. The janitor calls it every
// SweepInterval; reads already ignore expired records, so calling it is only
// about memory. Lock states are kept: they carry the fencing counters.
func (s *Store) Sweep() {
	s.records.sweep(s.now().UnixNano())
}
