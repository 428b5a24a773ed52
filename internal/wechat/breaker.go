package wechat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Circuit breaker settings: after breakerThreshold calls in a row failed
// for WeChat's reasons (after their own retries), the Client stops calling
// WeChat for breakerCooldown; then one call at a time probes it, and the
// first success closes the circuit.
const (
	breakerThreshold = 5
	breakerCooldown  = 15 * time.Second
)

// ErrCircuitOpen is returned (wrapped) without calling WeChat while the
// circuit breaker is open: WeChat kept failing (-1, 5xx, timeouts, refused
// connections) and is left alone for a while. [Temporary] reports true for
// it, so users see "WeChat is busy, retry".
var ErrCircuitOpen = errors.New("wechat: circuit open: WeChat keeps failing, calls are paused")

// breaker counts consecutive WeChat failures of a Client.
type breaker struct {
	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
	now       func() time.Time
}

// allow reports whether a call may go to WeChat now. While open it fails
// fast; after the cooldown it lets one probe through at a time.
func (b *breaker) allow() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < breakerThreshold {
		return nil
	}
	if now := b.now(); now.Before(b.openUntil) || b.probing {
		return fmt.Errorf("%w (until %s)", ErrCircuitOpen, b.openUntil.UTC().Format(time.RFC3339))
	}
	b.probing = true
	return nil
}

// record counts the outcome of a call that allow let through.
func (b *breaker) record(ctx context.Context, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	switch {
	case err == nil || !wechatDown(ctx, err):
		b.failures = 0
	default:
		b.failures++
		if b.failures >= breakerThreshold {
			b.openUntil = b.now().Add(breakerCooldown)
		}
	}
}

// state returns ErrCircuitOpen (wrapped, with the time it closes) while the
// circuit is open, else nil.
func (b *breaker) state() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures >= breakerThreshold && b.now().Before(b.openUntil) {
		return fmt.Errorf("%w (until %s)", ErrCircuitOpen, b.openUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// wechatDown reports whether err says WeChat itself is failing, as opposed
// to an answer about the request (a bad code, a wrong secret) or the caller
// giving up.
func wechatDown(ctx context.Context, err error) bool {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return false
	}
	if Temporary(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// Healthy reports whether the Client is calling WeChat: nil, or an error
// wrapping [ErrCircuitOpen] (with the time it closes) while WeChat keeps
// failing. /readyz shows it.
func (c *Client) Healthy() error { return c.br.state() }
