package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxauth/wxauth/internal/store"
)

// Stores returns set with every non-nil store wrapped so that failed calls
// are counted in wxauth_store_errors_total{op}. Normal outcomes are not
// failures: store.ErrNotFound, ErrAlreadyExists, ErrReused and ErrStale,
// and errors after the caller's context ended. Errors are returned
// unchanged. Ping and Close are kept as they are. With a nil m, set is
// returned unchanged.
func (m *Metrics) Stores(set store.Set) store.Set {
	if m == nil {
		return set
	}
	if set.Users != nil {
		set.Users = users{set.Users, m}
	}
	if set.RefreshTokens != nil {
		set.RefreshTokens = refreshTokens{set.RefreshTokens, m}
	}
	if set.Keys != nil {
		set.Keys = keys{set.Keys, m}
	}
	if set.Records != nil {
		set.Records = records{set.Records, m}
	}
	if set.Locker != nil {
		set.Locker = locker{set.Locker, m}
	}
	if set.TokenCache != nil {
		set.TokenCache = tokenCache{set.TokenCache, m}
	}
	if set.Broker != nil {
		set.Broker = broker{set.Broker, m}
	}
	return set
}

// count records err for op unless it is a normal outcome; it returns err.
func (m *Metrics) count(ctx context.Context, op string, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) ||
		errors.Is(err, store.ErrReused) || errors.Is(err, store.ErrStale) {
		return err
	}
	m.StoreError(op)
	return err
}

type users struct {
	store.Users
	m *Metrics
}

func (s users) UpsertUser(ctx context.Context, u store.User, now time.Time) (store.User, error) {
	out, err := s.Users.UpsertUser(ctx, u, now)
	return out, s.m.count(ctx, "Users.UpsertUser", err)
}

func (s users) GetUser(ctx context.Context, id string) (store.User, error) {
	out, err := s.Users.GetUser(ctx, id)
	return out, s.m.count(ctx, "Users.GetUser", err)
}

func (s users) FindUser(ctx context.Context, appID, openID string) (store.User, error) {
	out, err := s.Users.FindUser(ctx, appID, openID)
	return out, s.m.count(ctx, "Users.FindUser", err)
}

type refreshTokens struct {
	store.RefreshTokens
	m *Metrics
}

func (s refreshTokens) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return s.m.count(ctx, "RefreshTokens.CreateRefreshToken", s.RefreshTokens.CreateRefreshToken(ctx, t))
}

func (s refreshTokens) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, now time.Time, grace time.Duration) (store.RefreshToken, error) {
	out, err := s.RefreshTokens.RotateRefreshToken(ctx, oldHash, next, now, grace)
	return out, s.m.count(ctx, "RefreshTokens.RotateRefreshToken", err)
}

func (s refreshTokens) GetRefreshToken(ctx context.Context, hash string) (store.RefreshToken, error) {
	out, err := s.RefreshTokens.GetRefreshToken(ctx, hash)
	return out, s.m.count(ctx, "RefreshTokens.GetRefreshToken", err)
}

func (s refreshTokens) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	return s.m.count(ctx, "RefreshTokens.RevokeFamily", s.RefreshTokens.RevokeFamily(ctx, familyID, now))
}

type keys struct {
	store.Keys
	m *Metrics
}

func (s keys) ListKeys(ctx context.Context) ([]store.SigningKey, error) {
	out, err := s.Keys.ListKeys(ctx)
	return out, s.m.count(ctx, "Keys.ListKeys", err)
}

// UpdateKeys counts only failures of the store, not errors returned by
// update itself.
func (s keys) UpdateKeys(ctx context.Context, update func(old []store.SigningKey) ([]store.SigningKey, error)) error {
	var updErr error
	err := s.Keys.UpdateKeys(ctx, func(old []store.SigningKey) ([]store.SigningKey, error) {
		out, err := update(old)
		updErr = err
		return out, err
	})
	if err != nil && updErr != nil && errors.Is(err, updErr) {
		return err
	}
	return s.m.count(ctx, "Keys.UpdateKeys", err)
}

type records struct {
	store.Records
	m *Metrics
}

func (s records) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := s.Records.PutIfAbsent(ctx, key, val, ttl)
	return ok, s.m.count(ctx, "Records.PutIfAbsent", err)
}

func (s records) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return s.m.count(ctx, "Records.Put", s.Records.Put(ctx, key, val, ttl))
}

func (s records) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Records.Get(ctx, key)
	return out, s.m.count(ctx, "Records.Get", err)
}

func (s records) Take(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Records.Take(ctx, key)
	return out, s.m.count(ctx, "Records.Take", err)
}

func (s records) Delete(ctx context.Context, key string) error {
	return s.m.count(ctx, "Records.Delete", s.Records.Delete(ctx, key))
}

type locker struct {
	store.Locker
	m *Metrics
}

func (s locker) Lock(ctx context.Context, name string, ttl time.Duration) (store.Lease, error) {
	l, err := s.Locker.Lock(ctx, name, ttl)
	return l, s.m.count(ctx, "Locker.Lock", err)
}

type tokenCache struct {
	store.TokenCache
	m *Metrics
}

func (s tokenCache) GetToken(ctx context.Context, name string) (store.CachedToken, error) {
	out, err := s.TokenCache.GetToken(ctx, name)
	return out, s.m.count(ctx, "TokenCache.GetToken", err)
}

func (s tokenCache) SetToken(ctx context.Context, name string, t store.CachedToken) error {
	return s.m.count(ctx, "TokenCache.SetToken", s.TokenCache.SetToken(ctx, name, t))
}

type broker struct {
	store.Broker
	m *Metrics
}

func (s broker) Publish(ctx context.Context, topic string, payload []byte) error {
	return s.m.count(ctx, "Broker.Publish", s.Broker.Publish(ctx, topic, payload))
}

func (s broker) Subscribe(ctx context.Context, topic string) (<-chan []byte, error) {
	ch, err := s.Broker.Subscribe(ctx, topic)
	return ch, s.m.count(ctx, "Broker.Subscribe", err)
}

var (
	_ store.Users         = users{}
	_ store.RefreshTokens = refreshTokens{}
	_ store.Keys          = keys{}
	_ store.Records       = records{}
	_ store.Locker        = locker{}
	_ store.TokenCache    = tokenCache{}
	_ store.Broker        = broker{}
)

// RegisterRecordEvictions registers wxauth_records_evicted_total on reg, a
// counter read from evictions at each scrape: the live records the
// in-process records dropped before their expiry to stay under
// WXAUTH_RECORDS_MEMORY_MB. A rising count means callback de-duplication
// covers less than its 30 s, so a message WeChat delivers again (5 s apart)
// may be handled twice: raise the limit or keep records in Redis. A nil
// evictions registers nothing. Registering twice on one registry panics,
// at startup.
func RegisterRecordEvictions(reg prometheus.Registerer, evictions func() uint64) {
	if evictions == nil {
		return
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "wxauth_records_evicted_total",
		Help: "Live records dropped before their expiry to stay under WXAUTH_RECORDS_MEMORY_MB.",
	}, func() float64 { return float64(evictions()) }))
}
