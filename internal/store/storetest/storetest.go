package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
)

// NewFunc builds a fresh, empty store of type T for one subtest, reading the
// current time from now where the backend keeps time itself. It fails t (via
// t.Fatal) when the store cannot be built and registers its cleanup with
// t.Cleanup.
type NewFunc[T any] func(t *testing.T, now func() time.Time) T

// Epoch returns the time every clock of the suite starts at: a whole
// second (2026-01-02T03:04:05Z), so that backends storing microseconds
// (PostgreSQL timestamptz) round-trip it.
func Epoch() time.Time { return time.Date(2026, time.January, 2, 3, 4, 5, 0, time.UTC) }

// waitLimit bounds every poll of the suite (server-side expiry, delivery). It
// is a safety net against hangs, not an assertion on speed.
const waitLimit = 10 * time.Second

// pollEvery is the pause between two polls.
const pollEvery = 10 * time.Millisecond

// eventually calls cond until it returns true, advancing clock by step
// before each call, and fails t when waitLimit passes first.
func eventually(t *testing.T, clock *clocktest.Clock, step time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		clock.Advance(step)
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after %v", what, waitLimit)
		}
		time.Sleep(pollEvery)
	}
}

// testCtx returns a context ending with the test (or after waitLimit * 3).
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// isErr fails t unless errors.Is(err, want).
func isErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// noErr fails t when err is not nil.
func noErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
