// Package postgres is wxauth's durable store for several instances, in
// PostgreSQL through github.com/jackc/pgx/v5: Users, RefreshTokens, Keys,
// Records (a table with expires_at), TokenCache and Locker (lease rows with
// a fencing counter). Its schema is embedded (migrations/*.sql) and applied
// at [Open] in one transaction under pg_advisory_lock, so instances starting
// at once apply each migration exactly once; schema_migrations records them.
//
// Transactions run at READ COMMITTED and lean on row locks and unique
// constraints: a transaction that loses a race (unique violation,
// serialization failure, deadlock) runs again from the start. Time-dependent
// reads (record and lease expiry) use the now function given to Open, so
// tests own the clock; instances should share an NTP-synchronised clock.
// A failure to reach the server wraps store.ErrUnavailable.
//
// It imports the standard library, store and pgx only.
package postgres
