package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wxauth/wxauth/internal/store/sqlite"
	"github.com/wxauth/wxauth/internal/store/storetest"
)

// BenchmarkDB runs the storetest benchmarks on a WAL file database.
func BenchmarkDB(b *testing.B) {
	storetest.BenchmarkDurable(b, func(b *testing.B) storetest.Durable {
		db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		return db
	})
}
