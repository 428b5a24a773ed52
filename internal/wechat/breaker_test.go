package wechat

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
)

// TestClient_CircuitBreaker: after breakerThreshold calls failed with 5xx
// the Client stops calling WeChat, answers ErrCircuitOpen (Temporary), and
// after the cooldown one probe that succeeds closes the circuit. Answers
// about the request itself (40029) never open it.
func TestClient_CircuitBreaker(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	f := newFake(t, map[string]http.HandlerFunc{
		"/sns/auth": func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			}
			jsonBody(`{"errcode":0,"errmsg":"ok"}`)(w, r)
		},
		"/sns/oauth2/access_token": errBody(CodeInvalidCode, "invalid code"),
	})
	c := newTestClient(t, f)
	clock := clocktest.New(time.Now())
	c.br.now = clock.Now
	ctx := context.Background()

	for i := range breakerThreshold {
		if err := c.CheckToken(ctx, "t", "o"); err == nil || errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("call %d: %v, want the 502", i, err)
		}
	}
	if err := c.Healthy(); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("Healthy after %d failures: %v", breakerThreshold, err)
	}
	calls := f.count("/sns/auth")
	err := c.CheckToken(ctx, "t", "o")
	if !errors.Is(err, ErrCircuitOpen) || !Temporary(err) {
		t.Fatalf("open circuit: %v", err)
	}
	if f.count("/sns/auth") != calls {
		t.Error("an open circuit still called WeChat")
	}

	clock.Advance(breakerCooldown + time.Second)
	down.Store(false)
	if err := c.CheckToken(ctx, "t", "o"); err != nil {
		t.Fatalf("probe after the cooldown: %v", err)
	}
	if err := c.Healthy(); err != nil {
		t.Errorf("Healthy after a successful probe: %v", err)
	}

	for range 2 * breakerThreshold {
		if _, err := c.Exchange(ctx, "code"); !IsCode(err, CodeInvalidCode) {
			t.Fatalf("Exchange: %v", err)
		}
	}
	if err := c.Healthy(); err != nil {
		t.Errorf("request errors opened the circuit: %v", err)
	}
}
