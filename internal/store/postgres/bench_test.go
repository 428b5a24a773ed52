package postgres_test

import (
	"testing"

	"github.com/wxauth/wxauth/internal/store/storetest"
)

// BenchmarkDB runs the storetest benchmarks on a fresh database (see
// newDatabase) for each sub-benchmark.
func BenchmarkDB(b *testing.B) {
	storetest.BenchmarkDurable(b, func(b *testing.B) storetest.Durable {
		return opener(newDatabase(b))(b, nil)
	})
}
