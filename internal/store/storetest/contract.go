package storetest

import (
	"testing"
	"time"
)

// Contract runs, each as a subtest named after its interface, every suite
// of this package whose interface the store type S implements: Users,
// RefreshTokens, Keys, Records, Locker, TokenCache and Broker, in that
// order. S is a concrete type (a pointer to a backend's store); a backend
// names the interfaces it means to implement with compile-time assertions,
// so a suite cannot drop out unnoticed. It fails t when S implements none.
func Contract[S any](t *testing.T, newStore NewFunc[S]) {
	t.Helper()
	ran := run(t, "Users", newStore, TestUsers)
	ran = run(t, "RefreshTokens", newStore, TestRefreshTokens) || ran
	ran = run(t, "Keys", newStore, TestKeys) || ran
	ran = run(t, "Records", newStore, TestRecords) || ran
	ran = run(t, "Locker", newStore, TestLocker) || ran
	ran = run(t, "TokenCache", newStore, TestTokenCache) || ran
	ran = run(t, "Broker", newStore, TestBroker) || ran
	if !ran {
		var s S
		t.Fatalf("%T implements none of the store interfaces", s)
	}
}

// run runs suite as subtest name when S implements I, and reports whether
// it did.
func run[S, I any](t *testing.T, name string, newStore NewFunc[S], suite func(*testing.T, NewFunc[I])) bool {
	var s S
	if _, ok := any(s).(I); !ok {
		return false
	}
	t.Run(name, func(t *testing.T) {
		suite(t, func(t *testing.T, now func() time.Time) I { return any(newStore(t, now)).(I) })
	})
	return true
}
