package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/wxauth/wxauth/internal/store/storetest"
)

// BenchmarkDB runs the storetest benchmarks on a WAL file database.
func BenchmarkDB(b *testing.B) {
	storetest.BenchmarkDurable(b, func(b *testing.B) storetest.Durable {
		return open(b, filepath.Join(b.TempDir(), "bench.db"), nil)
	})
}
