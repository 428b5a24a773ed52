// Package sqlite is wxauth's embedded default store: one SQLite file
// (WXAUTH_DATABASE_URL=sqlite:PATH) through the pure-Go modernc.org/sqlite
// driver, in WAL mode with a busy timeout. It implements Users,
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
