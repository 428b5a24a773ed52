package session

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
)

// newMemoryManager builds a Manager on the in-memory store and the test
// clock, with a user to log in.
func newMemoryManager(tb testing.TB, c *clocktest.Clock) (*Manager, *memory.Store, store.User) {
	tb.Helper()
	ms := memory.New(c.Now)
	tb.Cleanup(func() { ms.Close() })
	ctx := context.Background()
	u, err := ms.UpsertUser(ctx, store.User{AppID: "wx0123456789abcdef", OpenID: "oOPENID1", Scope: "snsapi_base"}, c.Now())
	if err != nil {
		tb.Fatal(err)
	}
	m, err := NewManager(ctx, Config{
		Issuer: "https://auth.example.com",
		Box:    newBox(tb, 3),
		Now:    c.Now,
		Logger: slog.New(slog.DiscardHandler),
	}, Stores{Keys: ms, RefreshTokens: ms, Records: ms, Users: ms})
	if err != nil {
		tb.Fatal(err)
	}
	return m, ms, u
}

// issueTo starts a login family for u.
func issueTo(tb testing.TB, m *Manager, u store.User) Tokens {
	tb.Helper()
	tok, err := m.Issue(context.Background(), Subject{UserID: u.ID, OpenID: u.OpenID, AppID: u.AppID, Scope: u.Scope})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestManager_MemoryStore(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	m, ms, u := newMemoryManager(t, c)
	tok := issueTo(t, m, u)
	if cl, err := m.Verify(ctx, tok.AccessToken); err != nil || cl.Subject != u.ID {
		t.Fatalf("Verify = %+v, %v", cl, err)
	}

	// The user gains a unionid; the refreshed JWT carries it.
	if _, err := ms.UpsertUser(ctx, store.User{AppID: u.AppID, OpenID: u.OpenID, UnionID: "oUNION1"}, c.Now()); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	next, err := m.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if cl, err := m.Verify(ctx, next.AccessToken); err != nil || cl.UnionID != "oUNION1" || cl.SessionID != tok.SessionID {
		t.Fatalf("refreshed = %+v, %v", cl, err)
	}

	// Reuse of the first refresh token revokes the family everywhere.
	c.Advance(time.Minute)
	if _, err := m.Refresh(ctx, tok.RefreshToken); !errors.Is(err, ErrRefreshTokenReused) {
		t.Fatalf("reuse = %v", err)
	}
	if _, err := m.Verify(ctx, next.AccessToken); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify after reuse = %v", err)
	}
	if _, err := m.Refresh(ctx, next.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
		t.Fatalf("Refresh after reuse = %v", err)
	}

	// Keys rotate in the memory store too.
	kid, err := m.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := m.Keys(ctx)
	if err != nil || len(infos) != 2 || infos[1].ID != kid {
		t.Fatalf("Keys = %+v, %v", infos, err)
	}
}

func BenchmarkManager_Verify_MemoryStore(b *testing.B) {
	ctx := context.Background()
	c := newClock()
	m, _, u := newMemoryManager(b, c)
	tok := issueTo(b, m, u)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(ctx, tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}
