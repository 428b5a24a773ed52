package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/postgres"
)

// openBench opens a fresh database (see newDatabase) for b.
func openBench(b *testing.B) *postgres.DB {
	b.Helper()
	db, err := postgres.Open(context.Background(), newDatabase(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

func BenchmarkDB_Get(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	if err := db.Put(ctx, "revoked:jti", []byte("1"), time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.Get(ctx, "revoked:jti"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDB_PutIfAbsent(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := db.PutIfAbsent(ctx, fmt.Sprintf("dedup:%d", i), []byte("1"), time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDB_UpsertUser(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		u := store.User{AppID: "wx1", OpenID: fmt.Sprintf("o%d", i%100), Scope: "snsapi_base"}
		if _, err := db.UpsertUser(ctx, u, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDB_RotateRefreshToken(b *testing.B) {
	db := openBench(b)
	ctx := context.Background()
	now := time.Now()
	tok := func(i int) store.RefreshToken {
		return store.RefreshToken{Hash: fmt.Sprintf("%064d", i), FamilyID: "f", UserID: "u", Scope: "snsapi_base",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := db.CreateRefreshToken(ctx, tok(0)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := db.RotateRefreshToken(ctx, tok(i).Hash, tok(i+1), now, 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
