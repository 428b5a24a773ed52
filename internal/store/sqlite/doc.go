// Package sqlite is wxauth's embedded default store: one SQLite file
// (WXAUTH_DATABASE_URL=sqlite:PATH) through github.com/ncruces/go-sqlite3
// (SQLite translated to Go from its Wasm build: no cgo, about 9 MB of module
// source against modernc.org/sqlite's 245 MB), in WAL mode with a busy
// timeout. The file format is SQLite's own, so a database written by another
// driver opens as is (times are Unix nanoseconds, no driver encoding). It implements Users,
// RefreshTokens, Keys, Records, TokenCache and Locker (lease rows with a
// fencing counter) of package store, for a single instance. Its schema is
// embedded (migrations/*.sql) and applied at [Open] in one transaction,
// recorded in schema_migrations.
//
// Every write transaction starts with BEGIN IMMEDIATE, so concurrent writers
// queue on SQLite's lock (busy_timeout) instead of failing when a reader
// upgrades. Times are stored as Unix nanoseconds. Time-dependent reads
// (record and lease expiry) use the now function given to Open, so tests
// own the clock.
//
// It imports the standard library, store and the driver only.
package sqlite
