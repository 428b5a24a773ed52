// Package clocktest gives tests one manual clock: a [Clock] reads a fixed
// time until the test moves it, and its Now method is the
// `now func() time.Time` that wxauth's constructors take. Tests that only
// need a constant time pass a closure instead; tests of code that sleeps or
// waits on timers may prefer testing/synctest.
//
// It imports the standard library only and is imported by tests only.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a manual clock, safe for concurrent use. Its zero value reads
// the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock reading t until advanced or set.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (backwards for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set makes the clock read t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
