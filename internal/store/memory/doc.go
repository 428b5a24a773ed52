// Package memory implements every store interface in process memory: the
// short-lived records, locks, credential cache and broker of a single
// instance, and a complete store for tests. Nothing survives the process.
//
// Records live in sharded maps guarded by RWMutexes; an expired record is
// treated as absent when read (lazy expiry) and removed by a janitor
// goroutine every [SweepInterval], which [Store.Close] stops. Time comes from
// the now function given to [New], so tests own the clock.
//
// It imports the standard library and store only.
package memory
