// Package storetest is the contract suite of the store interfaces, in the
// manner of dex's storage/conformance and testing/fstest: every
// implementation's store_test.go calls the Test functions with a constructor
// returning a fresh, empty store. Each subtest gets its own store and its own
// [clocktest.Clock], handed to the constructor as now, so the suite owns time for
// backends that read it (memory, sqlite, postgres). Backends that count time
// on a server (redis TTLs) ignore now; the expiry cases then wait, polling,
// for the server to expire the item (ttls there are a few hundred
// milliseconds), and never assert a duration.
//
// It imports the standard library, store and clocktest only. Errors are compared with
// errors.Is, so implementations may wrap the sentinels.
package storetest
