// Package redis keeps wxauth's shared short-lived state in Redis, for
// several instances: records (SET PX, SET NX PX, GETDEL), locks (SET NX PX
// with a random token plus an INCR fencing counter, in one Lua script;
// release by a compare-and-delete script), the WeChat credential cache (a
// hash written by a script only when the stored fence is not higher) and
// the broker (PUBLISH/SUBSCRIBE). Expiry is Redis's own: it follows the
// server's clock, not the caller's.
//
// Every key starts with the prefix given to [Open], then a kind:
// PREFIX+"rec:"+key, "lock:", "fence:", "tok:", and the channel
// PREFIX+"bus:"+topic. A failure to reach the server wraps
// store.ErrUnavailable.
//
// It imports the standard library, store and github.com/redis/go-redis/v9.
package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxauth/wxauth/internal/store"
)

// Compile-time checks of what Store implements.
var (
	_ store.Records    = (*Store)(nil)
	_ store.Locker     = (*Store)(nil)
	_ store.TokenCache = (*Store)(nil)
	_ store.Broker     = (*Store)(nil)
)

// Store is a Redis-backed store, safe for concurrent use. Call
// [Store.Close] when done.
type Store struct {
	rdb    *goredis.Client
	prefix string

	lockScript     *goredis.Script
	releaseScript  *goredis.Script
	setTokenScript *goredis.Script
}

// Open connects to the Redis server named by url
// (redis://[:password@]host:port/db or rediss:// for TLS) and checks it
// answers PING. prefix starts every key and channel of this store
// ("wxauth:" in production; a random one per test).
//
// Errors: the URL's parse error (without the URL, which may hold a
// password); store.ErrUnavailable wrapped with the cause when PING fails.
func Open(ctx context.Context, url string, prefix string) (*Store, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, errors.New("redis: invalid URL: expected redis://[:password@]host:port/db")
	}
	s := &Store{
		rdb:            goredis.NewClient(opts),
		prefix:         prefix,
		lockScript:     goredis.NewScript(lockLua),
		releaseScript:  goredis.NewScript(releaseLua),
		setTokenScript: goredis.NewScript(setTokenLua),
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.rdb.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks that the server answers. Errors: store.ErrUnavailable wrapped
// with the cause.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// Close closes the connection pool; open subscriptions end.
func (s *Store) Close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// wrap returns err annotated with step, and with store.ErrUnavailable when
// it is a connection failure (network error, closed connection or pool,
// pool timeout) rather than a reply of the server or the end of ctx.
func wrap(step string, err error) error {
	var netErr net.Error
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redis: %s: %w", step, err)
	}
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, goredis.ErrClosed) || errors.Is(err, goredis.ErrPoolTimeout) {
		return fmt.Errorf("redis: %s: %w: %w", step, store.ErrUnavailable, err)
	}
	return fmt.Errorf("redis: %s: %w", step, err)
}

// checkTTL rejects a ttl that Redis would refuse or round to nothing.
func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis: ttl %v is below 1 ms", ttl)
	}
	return nil
}

// PutIfAbsent stores val under key for ttl unless a live record exists
// (SET NX PX), and reports whether it stored. Errors: ttl < 1 ms; wrapped
// Redis errors (store.ErrUnavailable when unreachable).
func (s *Store) PutIfAbsent(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	ok, err := s.rdb.SetNX(ctx, s.prefix+"rec:"+key, val, ttl).Result()
	if err != nil {
		return false, wrap("put record", err)
	}
	return ok, nil
}

// Put stores val under key for ttl, replacing any record (SET PX). Errors:
// ttl < 1 ms; wrapped Redis errors.
func (s *Store) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.prefix+"rec:"+key, val, ttl).Err(); err != nil {
		return wrap("put record", err)
	}
	return nil
}

// Get returns the live value of key (GET), or store.ErrNotFound; other
// errors are wrapped Redis errors.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	val, err := s.rdb.Get(ctx, s.prefix+"rec:"+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, wrap("get record", err)
	}
	return val, nil
}

// Take atomically returns and deletes the live value of key (GETDEL, Redis
// 6.2+), or store.ErrNotFound; other errors are wrapped Redis errors.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	val, err := s.rdb.GetDel(ctx, s.prefix+"rec:"+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, wrap("take record", err)
	}
	return val, nil
}

// Delete removes key (DEL); deleting an absent key returns nil. Errors:
// wrapped Redis errors.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.prefix+"rec:"+key).Err(); err != nil {
		return wrap("delete record", err)
	}
	return nil
}

// lockLua takes KEYS[1] for ARGV[2] ms with token ARGV[1] when free and
// returns the next fence from the counter KEYS[2]; 0 when held. Taking the
// lock and counting happen in one script, so a grant never gets a fence
// older than the previous grant's.
const lockLua = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return redis.call('INCR', KEYS[2])
end
return 0`

// releaseLua deletes KEYS[1] only while it holds the token ARGV[1].
const releaseLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`

// lockPoll is how often a blocked Lock tries again.
const lockPoll = 20 * time.Millisecond

// lease is a grant of a Redis lock.
type lease struct {
	s     *Store
	key   string
	token string
	fence int64
}

// Fence returns the fencing token of this grant, > 0.
func (l *lease) Fence() int64 { return l.fence }

// Release deletes the lock key if it still holds this lease's token (Lua
// compare-and-delete). Errors: wrapped Redis errors.
func (l *lease) Release(ctx context.Context) error {
	if err := l.s.releaseScript.Run(ctx, l.s.rdb, []string{l.key}, l.token).Err(); err != nil {
		return wrap("release lock", err)
	}
	return nil
}

// Lock blocks until name is free or its lease expired (Redis PX), polling
// every 20 ms, then takes it for ttl with the next fence. Errors: ctx.Err()
// when ctx ends first; ttl < 1 ms; wrapped Redis errors.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (store.Lease, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	key, fenceKey := s.prefix+"lock:"+name, s.prefix+"fence:"+name
	token := store.RandomBase62(22)
	for {
		fence, err := s.lockScript.Run(ctx, s.rdb, []string{key, fenceKey}, token, ttl.Milliseconds()).Int64()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, wrap("lock", err)
		}
		if fence > 0 {
			return &lease{s: s, key: key, token: token, fence: fence}, nil
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// setTokenLua writes the hash KEYS[1] {value, exp, fence} = ARGV[1..3]
// unless its stored fence is higher; it returns 1 when written, 0 when
// stale. exp is Unix nanoseconds kept as a string (Lua numbers are
// doubles).
const setTokenLua = `
local f = redis.call('HGET', KEYS[1], 'fence')
if f and tonumber(f) > tonumber(ARGV[3]) then
	return 0
end
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'exp', ARGV[2], 'fence', ARGV[3])
return 1`

// GetToken returns the cached token called name (HMGET), or
// store.ErrNotFound; other errors are wrapped Redis errors.
func (s *Store) GetToken(ctx context.Context, name string) (store.CachedToken, error) {
	vals, err := s.rdb.HMGet(ctx, s.prefix+"tok:"+name, "value", "exp", "fence").Result()
	if err != nil {
		return store.CachedToken{}, wrap("get token", err)
	}
	if len(vals) != 3 || vals[0] == nil || vals[1] == nil || vals[2] == nil {
		return store.CachedToken{}, store.ErrNotFound
	}
	value, _ := vals[0].(string)
	expStr, _ := vals[1].(string)
	fenceStr, _ := vals[2].(string)
	exp, err1 := strconv.ParseInt(expStr, 10, 64)
	fence, err2 := strconv.ParseInt(fenceStr, 10, 64)
	if err1 != nil || err2 != nil {
		return store.CachedToken{}, fmt.Errorf("redis: get token: malformed hash %q", name)
	}
	t := store.CachedToken{Value: []byte(value), Fence: fence}
	if exp != 0 {
		t.ExpiresAt = time.Unix(0, exp).UTC()
	}
	return t, nil
}

// SetToken stores t unless the stored token has a higher Fence (Lua
// script; the hash does not expire, so the fence outlives the token).
// Errors: store.ErrStale; wrapped Redis errors.
func (s *Store) SetToken(ctx context.Context, name string, t store.CachedToken) error {
	var exp int64
	if !t.ExpiresAt.IsZero() {
		exp = t.ExpiresAt.UnixNano()
	}
	n, err := s.setTokenScript.Run(ctx, s.rdb, []string{s.prefix + "tok:" + name},
		t.Value, strconv.FormatInt(exp, 10), strconv.FormatInt(t.Fence, 10)).Int64()
	if err != nil {
		return wrap("set token", err)
	}
	if n == 0 {
		return fmt.Errorf("redis: set token: %w", store.ErrStale)
	}
	return nil
}

// subscriberBuffer is how many payloads a subscriber's channel holds.
const subscriberBuffer = 16

// Publish sends payload to the subscribers of topic in every instance
// (PUBLISH). Errors: wrapped Redis errors.
func (s *Store) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := s.rdb.Publish(ctx, s.prefix+"bus:"+topic, payload).Err(); err != nil {
		return wrap("publish", err)
	}
	return nil
}

// Subscribe subscribes to topic (SUBSCRIBE) and returns once Redis has
// confirmed the subscription, so a Publish after it returns is delivered.
// The channel is closed, and the subscription ended, when ctx ends or the
// connection is lost for good. Errors: wrapped Redis errors.
func (s *Store) Subscribe(ctx context.Context, topic string) (<-chan []byte, error) {
	ps := s.rdb.Subscribe(ctx, s.prefix+"bus:"+topic)
	if _, err := ps.Receive(ctx); err != nil { // the subscribe confirmation
		_ = ps.Close()
		return nil, wrap("subscribe", err)
	}
	in := ps.Channel(goredis.WithChannelSize(subscriberBuffer))
	out := make(chan []byte, subscriberBuffer)
	go func() {
		defer close(out)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- []byte(m.Payload):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
