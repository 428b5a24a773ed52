package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func BenchmarkManager_Issue(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			e := newEnv(b, alg)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.m.Issue(ctx, testSubject()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkManager_Verify(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		b.Run(alg+"/Cold", func(b *testing.B) {
			e := newEnv(b, alg)
			ctx := context.Background()
			toks := make([]string, 512)
			for i := range toks {
				toks[i] = e.issue(b).AccessToken
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%len(toks) == 0 {
					e.m.cache.clear() // unique tokens: every call verifies the signature
				}
				if _, err := e.m.Verify(ctx, toks[i%len(toks)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(alg+"/Warm", func(b *testing.B) {
			e := newEnv(b, alg)
			ctx := context.Background()
			tok := e.issue(b).AccessToken
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.m.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyHandler compares a /verify-like handler (cookie or bearer,
// warm cache) with a bare hello handler, the issue 9 target (>= 0.5x).
func BenchmarkVerifyHandler(b *testing.B) {
	e := newEnv(b, "ES256")
	tok := e.issue(b).AccessToken
	ctx := context.Background()
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello"))
	})
	verify := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		c, err := e.m.Verify(ctx, raw)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-User", c.Subject)
		w.WriteHeader(http.StatusNoContent)
	})
	for name, h := range map[string]http.Handler{"Hello": hello, "Verify": verify} {
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/verify", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code >= 400 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

func bearer(r *http.Request) (string, bool) {
	const p = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) <= len(p) || h[:len(p)] != p {
		return "", false
	}
	return h[len(p):], true
}

func BenchmarkCookies_Refresh(b *testing.B) {
	c := newClock()
	ck := newCookies(b, c, true, cookieKey(2), cookieKey(1))
	w := httptest.NewRecorder()
	ck.SetRefresh(w, "Zm9vYmFyLXJlZnJlc2gtdG9rZW4tdmFsdWUtNDMtY2hhcg", c.Now().Add(time.Hour))
	_, r := roundTrip(w)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ck.Refresh(r); !ok {
			b.Fatal("absent")
		}
	}
}
