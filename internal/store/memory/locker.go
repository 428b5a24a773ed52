package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// lockPoll is how often a blocked Lock re-reads the clock when no Release
// wakes it (a lease may expire by the clock alone).
const lockPoll = 10 * time.Millisecond

// lockState is the state of one lock name. It outlives leases, since it
// carries the fencing counter.
type lockState struct {
	fence int64 // fence of the latest grant
	held  bool  // a lease of fence was granted and not released
	exp   int64 // Unix nanoseconds at which that lease expires
}

// lease is a grant of a memory lock.
type lease struct {
	s     *Store
	name  string
	fence int64
}

// Fence returns the fencing token of this grant, > 0.
func (l *lease) Fence() int64 { return l.fence }

// Release frees the lock if this lease still holds it; it never fails.
func (l *lease) Release(ctx context.Context) error {
	s := l.s
	s.locksMu.Lock()
	defer s.locksMu.Unlock()
	if st := s.locks[l.name]; st != nil && st.held && st.fence == l.fence {
		st.held = false
		close(s.released)
		s.released = make(chan struct{})
	}
	return nil
}

// Lock blocks until name is free or its lease expired (by the Store's
// clock), then grants it for ttl with the next fence. Errors: ctx.Err() when
// ctx ends first; an error for a ttl <= 0.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (store.Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("memory: lock ttl %v is not positive", ttl)
	}
	var timer *time.Timer
	for {
		l, wake := s.tryLock(name, ttl)
		if l != nil {
			if timer != nil {
				timer.Stop()
			}
			return l, nil
		}
		if timer == nil {
			timer = time.NewTimer(lockPoll)
		} else {
			timer.Reset(lockPoll)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-wake:
		case <-timer.C:
		}
	}
}

// tryLock grants name when free; else it returns the channel closed at the
// next Release.
func (s *Store) tryLock(name string, ttl time.Duration) (*lease, <-chan struct{}) {
	now := s.now()
	s.locksMu.Lock()
	defer s.locksMu.Unlock()
	st := s.locks[name]
	if st == nil {
		st = &lockState{}
		s.locks[name] = st
	}
	if st.held && st.exp > now.UnixNano() {
		return nil, s.released
	}
	st.fence++
	st.held = true
	st.exp = now.Add(ttl).UnixNano()
	return &lease{s: s, name: name, fence: st.fence}, nil
}

// GetToken returns the cached token called name, or store.ErrNotFound.
func (s *Store) GetToken(ctx context.Context, name string) (store.CachedToken, error) {
	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	t, ok := s.tokens[name]
	if !ok {
		return store.CachedToken{}, store.ErrNotFound
	}
	t.Value = clone(t.Value)
	return t, nil
}

// SetToken stores a copy of t unless the stored token has a higher Fence,
// in which case it returns store.ErrStale.
func (s *Store) SetToken(ctx context.Context, name string, t store.CachedToken) error {
	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	if cur, ok := s.tokens[name]; ok && cur.Fence > t.Fence {
		return store.ErrStale
	}
	t.Value = clone(t.Value)
	s.tokens[name] = t
	return nil
}

// subscriberBuffer is how many payloads a subscriber may lag behind before
// further ones are dropped for it (delivery is at most once).
const subscriberBuffer = 16

// subscriber is one Subscribe call.
type subscriber struct {
	ch chan []byte
}

// Publish sends a copy of payload to every current subscriber of topic,
// dropping it for subscribers whose buffer (16 payloads) is full. It never
// fails.
func (s *Store) Publish(ctx context.Context, topic string, payload []byte) error {
	s.brokerMu.RLock()
	defer s.brokerMu.RUnlock()
	for sub := range s.subs[topic] {
		select {
		case sub.ch <- clone(payload):
		default:
		}
	}
	return nil
}

// Subscribe returns a channel of the payloads published to topic from now
// on; it is closed, and the subscription removed, when ctx ends. It never
// fails.
func (s *Store) Subscribe(ctx context.Context, topic string) (<-chan []byte, error) {
	sub := &subscriber{ch: make(chan []byte, subscriberBuffer)}
	s.brokerMu.Lock()
	set := s.subs[topic]
	if set == nil {
		set = map[*subscriber]struct{}{}
		s.subs[topic] = set
	}
	set[sub] = struct{}{}
	s.brokerMu.Unlock()
	go func() {
		<-ctx.Done()
		s.brokerMu.Lock()
		defer s.brokerMu.Unlock()
		delete(s.subs[topic], sub)
		if len(s.subs[topic]) == 0 {
			delete(s.subs, topic)
		}
		close(sub.ch) // under the write lock: no Publish is sending
	}()
	return sub.ch, nil
}
