package postgres_test

import (
	"context"
	"testing"

	"github.com/wxauth/wxauth/internal/store/postgres"
	"github.com/wxauth/wxauth/internal/store/storetest"
)

// BenchmarkDB runs the storetest benchmarks on a fresh database (see
// newDatabase).
func BenchmarkDB(b *testing.B) {
	storetest.BenchmarkDurable(b, func(b *testing.B) storetest.Durable {
		db, err := postgres.Open(context.Background(), newDatabase(b), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		return db
	})
}
