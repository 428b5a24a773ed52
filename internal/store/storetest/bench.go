package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// Durable is what the SQL stores implement: users, refresh tokens and
// records in one database.
type Durable interface {
	store.Users
	store.RefreshTokens
	store.Records
}

// BenchmarkRecords measures the record operations on a login's path: Get
// (revocation check) and PutIfAbsent (state and de-duplication);
// allocations reported. Each sub-benchmark gets a fresh store from open.
func BenchmarkRecords(b *testing.B, open func(b *testing.B) store.Records) {
	ctx := context.Background()
	b.Run("Get", func(b *testing.B) {
		db := open(b)
		if err := db.Put(ctx, "revoked:jti", []byte("1"), time.Hour); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.Get(ctx, "revoked:jti"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PutIfAbsent", func(b *testing.B) {
		db := open(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := db.PutIfAbsent(ctx, fmt.Sprintf("dedup:%d", i), []byte("1"), time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDurable measures the operations on a login's path through a SQL
// store: those of [BenchmarkRecords], then UpsertUser and
// RotateRefreshToken; allocations reported. Each sub-benchmark gets a fresh
// store from open.
func BenchmarkDurable(b *testing.B, open func(b *testing.B) Durable) {
	BenchmarkRecords(b, func(b *testing.B) store.Records { return open(b) })
	ctx := context.Background()
	b.Run("UpsertUser", func(b *testing.B) {
		db := open(b)
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
	})
	b.Run("RotateRefreshToken", func(b *testing.B) {
		db := open(b)
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
	})
}
