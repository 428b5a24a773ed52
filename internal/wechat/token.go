package wechat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/store"
)

// TokenSource gives the global access_token (接口调用凭据) of one Official
// Account. Implementations are safe for concurrent use by multiple
// goroutines; [*TokenManager] is the one wxauth runs.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
type TokenSource interface {
	// AccessToken returns a current access_token, fetching one when none
	// is cached or it is due for refresh. Errors are those of the fetch
	// ([*Error], [*StatusError], a redacted [*url.Error]) or ctx.Err().
	AccessToken(ctx context.Context) (string, error)
	// Invalidate reports that failed was refused by WeChat (40001, 40014,
	// 42001). It refreshes the token only if failed is still the current
	// one (compare-and-refresh), so that N callers reporting the same token
	// cause one refresh; it returns nil at once when the token was already
	// replaced.
	Invalidate(ctx context.Context, failed string) error
}

var _ TokenSource = (*TokenManager)(nil)

// Token APIs for [TokenConfig.API].
const (
	// TokenAPIStable uses POST cgi-bin/stable_token (preferred).
	TokenAPIStable = "stable"
	// TokenAPIClassic uses GET cgi-bin/token.
	TokenAPIClassic = "classic"
)

// Defaults and bounds of the [TokenManager].
const (
	defaultRefreshAhead = 5 * time.Minute  // refresh this long before expiry
	lockTTL             = 30 * time.Second // lease of the cross-process refresh lock
	flightTimeout       = 30 * time.Second // longest shared fetch, lock wait included
	runMinWait          = time.Second      // Run never loops faster
	runMaxWait          = time.Minute      // Run checks the local copies at least this often
)

// TokenConfig configures a [TokenManager]. Cache, Locker and Box are
// required.
type TokenConfig struct {
	// API is [TokenAPIStable] ("stable", the default when empty: POST
	// cgi-bin/stable_token) or [TokenAPIClassic] ("classic": GET
	// cgi-bin/token).
	API string
	// Cache is the credential cache shared by every process of the appid,
	// under the names "access_token:APPID" and "jsapi_ticket:APPID".
	// Values are sealed with Box, the cache name as aad.
	Cache store.TokenCache
	// Locker serializes fetches across processes under
	// "wechat:access_token:APPID" and "wechat:jsapi_ticket:APPID"; its
	// lease's fence is written with the value, so that a writer whose
	// lease was lost gets store.ErrStale and adopts the newer value.
	Locker store.Locker
	// Box seals the cached values.
	Box *secret.Box
	// RefreshAhead is how long before WeChat's expiry a value is refreshed;
	// zero means 5 minutes. It is capped at half the value's life.
	RefreshAhead time.Duration
}

// TokenManager is the single owner (中控) of an Official Account's global
// access_token and jsapi_ticket across processes: an in-process copy read
// without locks on the hot path, single-flight inside the process, the
// shared [store.TokenCache] between processes, and a [store.Locker] lease
// around every upstream fetch, after which the cache is read again in case
// another process refreshed meanwhile. It is safe for concurrent use.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
type TokenManager struct {
	c      *Client
	cache  store.TokenCache
	locker store.Locker
	box    *secret.Box
	ahead  time.Duration
	access *cred
	ticket *cred
	// sleep waits d or until ctx ends (false); Run's only timer, replaced
	// by tests.
	sleep func(ctx context.Context, d time.Duration) bool
}

// snapshot is the in-process copy of a credential; it is never modified
// once published.
type snapshot struct {
	value     string
	refreshAt time.Time // due for refresh from then
	expiresAt time.Time // WeChat's expiry
	fence     int64     // fence of the lease it was fetched under; orders values across processes
	bad       string    // a value reported failed: never served or adopted again
}

// cred is one cached credential.
type cred struct {
	kind   string // "access_token" or "jsapi_ticket", as the Observer names it
	name   string // cache name, also the Box aad
	lock   string // Locker name
	fetch  func(ctx context.Context, force bool) (Credential, error)
	forces bool // fetch honours force (stable_token's force_refresh)
	cur    atomic.Pointer[snapshot]
	sf     singleflight.Group
	used   atomic.Bool // asked for at least once (Run refreshes it then)
}

// NewTokenManager returns a TokenManager for c's appid. The error names the
// missing or invalid field of cfg.
func NewTokenManager(c *Client, cfg TokenConfig) (*TokenManager, error) {
	switch {
	case c == nil:
		return nil, errors.New("wechat: NewTokenManager: nil Client")
	case cfg.Cache == nil:
		return nil, errors.New("wechat: TokenConfig.Cache is required")
	case cfg.Locker == nil:
		return nil, errors.New("wechat: TokenConfig.Locker is required")
	case cfg.Box == nil:
		return nil, errors.New("wechat: TokenConfig.Box is required")
	case cfg.RefreshAhead < 0:
		return nil, errors.New("wechat: TokenConfig.RefreshAhead must not be negative")
	}
	m := &TokenManager{c: c, cache: cfg.Cache, locker: cfg.Locker, box: cfg.Box, ahead: cfg.RefreshAhead, sleep: sleep}
	if m.ahead == 0 {
		m.ahead = defaultRefreshAhead
	}
	m.access = &cred{kind: "access_token", name: "access_token:" + c.appID, lock: "wechat:access_token:" + c.appID}
	switch cfg.API {
	case "", TokenAPIStable:
		m.access.fetch, m.access.forces = c.StableToken, true
	case TokenAPIClassic:
		m.access.fetch = func(ctx context.Context, _ bool) (Credential, error) { return c.ClassicToken(ctx) }
	default:
		return nil, fmt.Errorf("wechat: TokenConfig.API %q: want %q or %q", cfg.API, TokenAPIStable, TokenAPIClassic)
	}
	m.ticket = &cred{kind: "jsapi_ticket", name: "jsapi_ticket:" + c.appID, lock: "wechat:jsapi_ticket:" + c.appID, fetch: m.fetchTicket}
	return m, nil
}

// AccessToken returns the current global access_token. The warm path is an
// atomic load and a clock read; a cold or due value is loaded by one
// goroutine of the process (others wait for it, each within its own ctx),
// from the shared cache or, under the cross-process lock, from WeChat. When
// a due refresh fails but the current value has not expired, that value is
// returned.
//
// Errors: those of [Client.StableToken] or [Client.ClassicToken] (e.g.
// [*Error] 40013, 40125, 40164, 45009), store errors from the lock, or
// ctx.Err().
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
func (m *TokenManager) AccessToken(ctx context.Context) (string, error) {
	return m.get(ctx, m.access)
}

// Invalidate reports that the access_token failed was refused by WeChat
// (40001, 40014, 42001). Nothing is fetched when this process or the shared
// cache already holds another fresh token (compare-and-refresh); otherwise
// a new one is fetched under the lock, with force_refresh=true on
// stable_token when failed is still the cached value (or none is cached)
// or WeChat answers failed again. Concurrent calls with one value share a
// single refresh. A failed value is not served again by this process,
// unless a forced refresh answers it once more: stable_token refreshes at
// most once every 30 s and otherwise answers its current token, which is
// then WeChat's latest and is served.
//
// Errors: [ErrInvalidArgument] for an empty failed; otherwise as
// [TokenManager.AccessToken].
func (m *TokenManager) Invalidate(ctx context.Context, failed string) error {
	return m.invalidate(ctx, m.access, failed)
}

// JSAPITicket returns the current JS-SDK jsapi_ticket (GET
// cgi-bin/ticket/getticket?type=jsapi, 7200 s), cached and shared like the
// access_token. A fetch refused with 40001/40014/42001 invalidates the
// access_token it used and is tried once more.
//
// Errors: as [TokenManager.AccessToken], plus those of [Client.Ticket].
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html
func (m *TokenManager) JSAPITicket(ctx context.Context) (string, error) {
	if !m.ticket.used.Load() {
		m.ticket.used.Store(true)
	}
	return m.get(ctx, m.ticket)
}

// InvalidateTicket reports that the jsapi_ticket failed was refused; like
// [TokenManager.Invalidate], it refreshes only if failed is still current.
func (m *TokenManager) InvalidateTicket(ctx context.Context, failed string) error {
	return m.invalidate(ctx, m.ticket, failed)
}

// fetchTicket fetches a jsapi_ticket with the current access_token, once
// more with a new one if WeChat refuses the token.
func (m *TokenManager) fetchTicket(ctx context.Context, _ bool) (Credential, error) {
	tok, err := m.AccessToken(ctx)
	if err != nil {
		return Credential{}, err
	}
	cr, err := m.c.Ticket(ctx, tok)
	if !isStaleToken(err) {
		return cr, err
	}
	if err := m.Invalidate(ctx, tok); err != nil {
		return Credential{}, err
	}
	if tok, err = m.AccessToken(ctx); err != nil {
		return Credential{}, err
	}
	return m.c.Ticket(ctx, tok)
}

// Run refreshes the access_token (and the jsapi_ticket once it has been
// asked for) in the background ahead of expiry, until ctx ends. Failures are
// logged and retried with backoff from 1 s to 1 min. Run one per process.
func (m *TokenManager) Run(ctx context.Context) {
	failWait := time.Duration(0)
	for {
		wait := runMaxWait
		failed := false
		for _, cr := range []*cred{m.access, m.ticket} {
			if cr == m.ticket && !cr.used.Load() {
				continue
			}
			s := cr.cur.Load()
			now := m.c.now()
			if s != nil && s.value != "" && now.Before(s.refreshAt) {
				wait = min(wait, s.refreshAt.Sub(now))
				continue
			}
			bad := ""
			if s != nil {
				bad = s.bad
			}
			if _, err := m.flight(ctx, cr, bad); err != nil {
				if ctx.Err() != nil {
					return
				}
				failed = true
				m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: background refresh failed",
					slog.String("credential", cr.name), slog.String("error", err.Error()))
				continue
			}
			if s := cr.cur.Load(); s != nil {
				wait = min(wait, s.refreshAt.Sub(m.c.now()))
			}
		}
		if failed {
			failWait = min(max(2*failWait, runMinWait), runMaxWait)
			wait = min(wait, failWait)
		} else {
			failWait = 0
		}
		if !m.sleep(ctx, max(wait, runMinWait)) {
			return
		}
	}
}

// sleep waits d, or until ctx ends (then it returns false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// get is the read path of a credential.
func (m *TokenManager) get(ctx context.Context, cr *cred) (string, error) {
	s := cr.cur.Load()
	now := m.c.now()
	if s != nil && s.value != "" && now.Before(s.refreshAt) {
		return s.value, nil
	}
	bad := ""
	if s != nil {
		bad = s.bad
	}
	v, err := m.flight(ctx, cr, bad)
	if err != nil {
		if s != nil && s.value != "" && now.Before(s.expiresAt) && ctx.Err() == nil {
			m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: refresh failed, serving the unexpired value",
				slog.String("credential", cr.name), slog.String("error", err.Error()))
			return s.value, nil
		}
		return "", err
	}
	return v, nil
}

// invalidate is compare-and-refresh of a credential.
func (m *TokenManager) invalidate(ctx context.Context, cr *cred, failed string) error {
	if failed == "" {
		return fmt.Errorf("%w: empty token to invalidate", ErrInvalidArgument)
	}
	for {
		s := cr.cur.Load()
		if s != nil && s.value != "" && s.value != failed {
			return nil // already replaced in this process
		}
		if s != nil && s.value == "" && s.bad == failed {
			break
		}
		if cr.cur.CompareAndSwap(s, &snapshot{bad: failed}) {
			break
		}
	}
	_, err := m.flight(ctx, cr, failed)
	return err
}

// flight runs load once per process for a given failed value; every caller
// waits within its own ctx. The load itself runs detached from the first
// caller's cancellation, bounded by flightTimeout.
func (m *TokenManager) flight(ctx context.Context, cr *cred, failed string) (string, error) {
	ch := cr.sf.DoChan("load\x00"+failed, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flightTimeout)
		defer cancel()
		return m.load(fctx, cr, failed)
	})
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}

// load adopts a fresh value from the shared cache, or fetches one under the
// cross-process lock (reading the cache again once the lock is held), stores
// it sealed with the lease's fence and publishes it in process. A value
// equal to failed is never adopted; a non-empty failed forces the fetch.
func (m *TokenManager) load(ctx context.Context, cr *cred, failed string) (string, error) {
	if s, fresh := m.readCache(ctx, cr, failed); fresh {
		return m.publishFenced(cr, s, true), nil
	}
	lease, err := m.locker.Lock(ctx, cr.lock, lockTTL)
	if err != nil {
		return "", fmt.Errorf("wechat: lock %s: %w", cr.name, err)
	}
	defer func() {
		if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
			m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: release lock",
				slog.String("credential", cr.name), slog.String("error", err.Error()))
		}
	}()
	cached, fresh := m.readCache(ctx, cr, failed)
	if fresh {
		return m.publishFenced(cr, cached, true), nil
	}
	// Force a new value (stable_token force_refresh, at most 20 a day) only
	// when the refused value may still be WeChat's current one; a merely
	// due value is renewed normally.
	force := failed != "" && (cached == nil || cached.value == failed)
	v, err := m.fetch(ctx, cr, force)
	if err == nil && !force && failed != "" && v.Value == failed {
		force = true
		v, err = m.fetch(ctx, cr, true)
	}
	if err != nil {
		return "", fmt.Errorf("wechat: refresh %s: %w", cr.name, err)
	}
	if force && v.Value == failed {
		// stable_token does not refresh on a force_refresh within 30 s of
		// the previous one ("否则不会刷新") and answers the current token:
		// WeChat says failed is its latest token, so it is served again
		// rather than fetched over and over.
		m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: forced refresh answered the token reported failed; WeChat refreshes at most every 30 s, serving it",
			slog.String("credential", cr.name))
		m.forgive(cr, failed)
	}
	fetched := m.c.now()
	life := time.Duration(v.ExpiresIn) * time.Second
	s := &snapshot{
		value:     v.Value,
		expiresAt: fetched.Add(life),
		refreshAt: fetched.Add(life - min(m.ahead, life/2)),
		fence:     lease.Fence(),
	}
	err = m.cache.SetToken(ctx, cr.name, store.CachedToken{
		Value:     m.box.Seal([]byte(v.Value), []byte(cr.name)),
		ExpiresAt: s.expiresAt,
		Fence:     lease.Fence(),
	})
	switch {
	case errors.Is(err, store.ErrStale):
		// Our lease was lost and a newer holder stored its value: the
		// shared value wins, so that every process uses the same one.
		if cs, fresh := m.readCache(ctx, cr, ""); fresh {
			return m.publishFenced(cr, cs, true), nil
		}
		// The stored value is older yet fenced higher: the locker's fences
		// went back (e.g. an in-process locker restarted beside a
		// persistent cache). Serve ours rather than refetch on every call.
		m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: shared cache holds a higher fence than the lock grants; check that cache and locker are the same backend",
			slog.String("credential", cr.name), slog.Int64("fence", lease.Fence()))
		return m.publishFenced(cr, s, false), nil
	case err != nil:
		m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: cannot store credential in the shared cache",
			slog.String("credential", cr.name), slog.String("error", err.Error()))
	}
	return m.publishFenced(cr, s, true), nil
}

// fetch gets a new value of cr from WeChat and reports it to the Client's
// Observer.
func (m *TokenManager) fetch(ctx context.Context, cr *cred, force bool) (Credential, error) {
	v, err := cr.fetch(ctx, force)
	if err == nil && m.c.obs != nil {
		m.c.obs.CredentialRefreshed(ctx, cr.kind, force && cr.forces)
	}
	return v, err
}

// forgive lifts the failed mark of value so that it can be published and
// served again.
func (m *TokenManager) forgive(cr *cred, value string) {
	for {
		old := cr.cur.Load()
		if old == nil || old.bad != value {
			return
		}
		cp := *old
		cp.bad = ""
		if cr.cur.CompareAndSwap(old, &cp) {
			return
		}
	}
}

// readCache returns the shared cached value when it opens (nil when absent
// or unreadable), and whether it is fresh: not failed and not yet due for
// refresh.
func (m *TokenManager) readCache(ctx context.Context, cr *cred, failed string) (cached *snapshot, fresh bool) {
	ct, err := m.cache.GetToken(ctx, cr.name)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: read shared credential cache",
				slog.String("credential", cr.name), slog.String("error", err.Error()))
		}
		return nil, false
	}
	pt, err := m.box.Open(ct.Value, []byte(cr.name))
	if err != nil {
		m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: cached credential does not open; fetching a new one",
			slog.String("credential", cr.name))
		return nil, false
	}
	s := &snapshot{value: string(pt), expiresAt: ct.ExpiresAt, refreshAt: ct.ExpiresAt.Add(-m.ahead), fence: ct.Fence}
	if s.value == "" {
		return nil, false
	}
	if s.value == failed || !m.c.now().Before(s.refreshAt) {
		return s, false
	}
	return s, true
}

// publishFenced makes s the in-process copy unless s holds the value last
// reported failed or, when fenced, the copy there was fetched under a
// higher fence (a slower concurrent load must not roll back a refresh;
// fences, unlike clocks, agree across processes). It returns the value to
// serve.
func (m *TokenManager) publishFenced(cr *cred, s *snapshot, fenced bool) string {
	for {
		old := cr.cur.Load()
		if old != nil && (old.bad != "" && old.bad == s.value ||
			fenced && old.value != "" && old.fence > s.fence) {
			return s.value
		}
		if cr.cur.CompareAndSwap(old, s) {
			return s.value
		}
	}
}
