package wechat

import (
	"context"
	"testing"
)

// BenchmarkTokenManager_AccessTokenWarm measures the hot path of
// /jssdk/config: a warm in-process copy read by parallel callers.
func BenchmarkTokenManager_AccessTokenWarm(b *testing.B) {
	e := newTokenEnv(b)
	m := e.manager(b, "")
	ctx := context.Background()
	if _, err := m.AccessToken(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.AccessToken(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTokenManager_JSAPITicketWarm is the same for the ticket.
func BenchmarkTokenManager_JSAPITicketWarm(b *testing.B) {
	e := newTokenEnv(b)
	m := e.manager(b, "")
	ctx := context.Background()
	if _, err := m.JSAPITicket(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.JSAPITicket(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
