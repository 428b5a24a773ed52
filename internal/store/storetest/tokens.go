package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
)

// hashOf returns the hex SHA-256 of s, as RefreshToken.Hash is.
func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestRefreshTokens checks the [store.RefreshTokens] contract: single-use
// rotation, reuse detection revoking the whole family (also under two
// concurrent rotations), the grace window, expiry and RevokeFamily.
func TestRefreshTokens(t *testing.T, newStore NewFunc[store.RefreshTokens]) {
	setup := func(t *testing.T) store.RefreshTokens {
		clock := clocktest.New(Epoch())
		return newStore(t, clock.Now)
	}
	tok := func(name, family string) store.RefreshToken {
		return store.RefreshToken{
			Hash: hashOf(name), FamilyID: family, UserID: "u_AAAAAAAAAAAAAAAAAAAAAA", Scope: "snsapi_base",
			CreatedAt: Epoch(), ExpiresAt: Epoch().Add(30 * 24 * time.Hour),
		}
	}
	create := func(t *testing.T, s store.RefreshTokens, rt store.RefreshToken) {
		t.Helper()
		noErr(t, s.CreateRefreshToken(testCtx(t), rt), "CreateRefreshToken")
	}
	next := func(name, family string, at time.Time) store.RefreshToken {
		rt := tok(name, family)
		rt.CreatedAt = at
		return rt
	}

	t.Run("CreateGet", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		rt := tok("r1", "f1")
		create(t, s, rt)
		got, err := s.GetRefreshToken(ctx, rt.Hash)
		noErr(t, err, "GetRefreshToken")
		if got.Hash != rt.Hash || got.FamilyID != "f1" || got.UserID != rt.UserID || got.Scope != rt.Scope ||
			!got.CreatedAt.Equal(rt.CreatedAt) || !got.ExpiresAt.Equal(rt.ExpiresAt) || !got.UsedAt.IsZero() {
			t.Fatalf("GetRefreshToken = %+v, want %+v", got, rt)
		}
		err = s.CreateRefreshToken(ctx, rt)
		isErr(t, err, store.ErrAlreadyExists, "second CreateRefreshToken")
		_, err = s.GetRefreshToken(ctx, hashOf("unknown"))
		isErr(t, err, store.ErrNotFound, "GetRefreshToken unknown")
	})

	t.Run("Rotate", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		create(t, s, tok("r1", "f1"))
		at := Epoch().Add(time.Hour)
		old, err := s.RotateRefreshToken(ctx, hashOf("r1"), next("r2", "f1", at), at, 0)
		noErr(t, err, "RotateRefreshToken")
		if old.Hash != hashOf("r1") || old.FamilyID != "f1" || old.UserID != "u_AAAAAAAAAAAAAAAAAAAAAA" {
			t.Fatalf("RotateRefreshToken returned %+v", old)
		}
		used, err := s.GetRefreshToken(ctx, hashOf("r1"))
		noErr(t, err, "GetRefreshToken old")
		if !used.UsedAt.Equal(at) {
			t.Fatalf("old UsedAt = %v, want %v", used.UsedAt, at)
		}
		succ, err := s.GetRefreshToken(ctx, hashOf("r2"))
		noErr(t, err, "GetRefreshToken successor")
		if succ.FamilyID != "f1" || !succ.UsedAt.IsZero() {
			t.Fatalf("successor = %+v", succ)
		}
		// The successor rotates in turn.
		at2 := at.Add(time.Hour)
		_, err = s.RotateRefreshToken(ctx, hashOf("r2"), next("r3", "f1", at2), at2, 0)
		noErr(t, err, "RotateRefreshToken successor")
	})

	t.Run("Unknown", func(t *testing.T) {
		s := setup(t)
		_, err := s.RotateRefreshToken(testCtx(t), hashOf("nope"), next("r2", "f1", Epoch()), Epoch(), 0)
		isErr(t, err, store.ErrNotFound, "RotateRefreshToken unknown")
	})

	t.Run("Expired", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		rt := tok("r1", "f1")
		create(t, s, rt)
		_, err := s.RotateRefreshToken(ctx, rt.Hash, next("r2", "f1", rt.ExpiresAt), rt.ExpiresAt, 0)
		isErr(t, err, store.ErrNotFound, "RotateRefreshToken at ExpiresAt")
		// Not consumed: still rotates a moment before its end.
		before := rt.ExpiresAt.Add(-time.Second)
		_, err = s.RotateRefreshToken(ctx, rt.Hash, next("r3", "f1", before), before, 0)
		noErr(t, err, "RotateRefreshToken before ExpiresAt")
	})

	t.Run("ReuseRevokesFamily", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		create(t, s, tok("r1", "f1"))
		create(t, s, tok("other", "f2"))
		at := Epoch().Add(time.Minute)
		_, err := s.RotateRefreshToken(ctx, hashOf("r1"), next("r2", "f1", at), at, 0)
		noErr(t, err, "first rotation")
		later := at.Add(time.Minute)
		_, err = s.RotateRefreshToken(ctx, hashOf("r1"), next("r2b", "f1", later), later, 0)
		isErr(t, err, store.ErrReused, "rotating a used token")
		_, err = s.RotateRefreshToken(ctx, hashOf("r2"), next("r3", "f1", later), later, 0)
		isErr(t, err, store.ErrNotFound, "successor after reuse")
		_, err = s.GetRefreshToken(ctx, hashOf("r2"))
		isErr(t, err, store.ErrNotFound, "GetRefreshToken of a revoked family")
		if _, err := s.GetRefreshToken(ctx, hashOf("r2b")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the rejected successor was stored: %v", err)
		}
		_, err = s.RotateRefreshToken(ctx, hashOf("other"), next("other2", "f2", later), later, 0)
		noErr(t, err, "another family is unaffected")
	})

	t.Run("ConcurrentRotate", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		create(t, s, tok("r1", "f1"))
		at := Epoch().Add(time.Minute)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range 2 {
			wg.Go(func() {
				<-start
				_, errs[i] = s.RotateRefreshToken(ctx, hashOf("r1"), next(fmt.Sprint("succ", i), "f1", at), at, 0)
			})
		}
		close(start)
		wg.Wait()
		var ok, reused int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrReused):
				reused++
			default:
				t.Fatalf("RotateRefreshToken: %v", err)
			}
		}
		if ok != 1 || reused != 1 {
			t.Fatalf("%d successes and %d ErrReused, want 1 and 1", ok, reused)
		}
		for i := range 2 {
			later := at.Add(time.Second)
			_, err := s.RotateRefreshToken(ctx, hashOf(fmt.Sprint("succ", i)), next(fmt.Sprint("x", i), "f1", later), later, 0)
			isErr(t, err, store.ErrNotFound, "successor of a revoked family")
		}
	})

	// Every caller reads its clock before the rotation, so the loser's
	// reading may precede the winner's used_at: it must still count as a
	// reuse with grace 0 (it used to read as "within grace" and fork the
	// family into two live chains).
	t.Run("ConcurrentRotateEarlierClock", func(t *testing.T) {
		const trials, callers = 10, 6
		forks := 0
		for trial := range trials {
			s := setup(t)
			ctx := testCtx(t)
			first := fmt.Sprint("r", trial)
			create(t, s, tok(first, "f1"))
			var wg sync.WaitGroup
			errs := make([]error, callers)
			start := make(chan struct{})
			for i := range callers {
				// Distinct readings, a millisecond apart.
				at := Epoch().Add(time.Minute + time.Duration(i)*time.Millisecond)
				wg.Go(func() {
					<-start
					_, errs[i] = s.RotateRefreshToken(ctx, hashOf(first), next(fmt.Sprint("succ", trial, "-", i), "f1", at), at, 0)
				})
			}
			close(start)
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrReused), errors.Is(err, store.ErrNotFound):
					// the reuse, or a caller after it found the family revoked
				default:
					t.Fatalf("RotateRefreshToken: %v", err)
				}
			}
			if ok != 1 {
				forks++
			}
		}
		t.Logf("%d trials of %d concurrent rotations of one token with distinct clock readings: %d forked", trials, callers, forks)
		if forks != 0 {
			t.Fatalf("%d of %d trials had more than one successful rotation, want exactly one each", forks, trials)
		}
		// Sequentially, a later caller with an earlier reading.
		s := setup(t)
		ctx := testCtx(t)
		create(t, s, tok("r1", "f1"))
		at := Epoch().Add(time.Minute)
		_, err := s.RotateRefreshToken(ctx, hashOf("r1"), next("r2", "f1", at), at, 0)
		noErr(t, err, "first rotation")
		early := at.Add(-time.Millisecond)
		_, err = s.RotateRefreshToken(ctx, hashOf("r1"), next("r2b", "f1", early), early, 0)
		isErr(t, err, store.ErrReused, "second rotation with a reading before the first's")
	})

	t.Run("GraceWindow", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		create(t, s, tok("r1", "f1"))
		const grace = 10 * time.Second
		at := Epoch().Add(time.Minute)
		_, err := s.RotateRefreshToken(ctx, hashOf("r1"), next("r2", "f1", at), at, grace)
		noErr(t, err, "first rotation")
		within := at.Add(grace - time.Second)
		_, err = s.RotateRefreshToken(ctx, hashOf("r1"), next("r2", "f1", within), within, grace)
		noErr(t, err, "second rotation within grace, same successor")
		_, err = s.RotateRefreshToken(ctx, hashOf("r1"), next("r2b", "f1", within), within, grace)
		isErr(t, err, store.ErrAlreadyExists, "second rotation within grace into another successor (a fork)")
		_, err = s.GetRefreshToken(ctx, hashOf("r2b"))
		isErr(t, err, store.ErrNotFound, "the refused fork's successor")
		// A caller whose clock reading precedes the first use is within
		// grace too, never "before" it.
		early := at.Add(-time.Second)
		_, err = s.RotateRefreshToken(ctx, hashOf("r1"), next("r2", "f1", early), early, grace)
		noErr(t, err, "rotation within grace by a caller whose clock is behind")
		after := at.Add(grace + time.Second)
		_, err = s.RotateRefreshToken(ctx, hashOf("r1"), next("r2c", "f1", after), after, grace)
		isErr(t, err, store.ErrReused, "rotation after grace")
		_, err = s.RotateRefreshToken(ctx, hashOf("r2"), next("r3", "f1", after), after, grace)
		isErr(t, err, store.ErrNotFound, "successor after reuse")
	})

	t.Run("RevokeFamily", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		create(t, s, tok("r1", "f1"))
		create(t, s, tok("r1b", "f1"))
		create(t, s, tok("o1", "f2"))
		noErr(t, s.RevokeFamily(ctx, "f1", Epoch()), "RevokeFamily")
		noErr(t, s.RevokeFamily(ctx, "f1", Epoch()), "RevokeFamily twice")
		noErr(t, s.RevokeFamily(ctx, "unknown", Epoch()), "RevokeFamily unknown")
		for _, h := range []string{"r1", "r1b"} {
			_, err := s.RotateRefreshToken(ctx, hashOf(h), next(h+"n", "f1", Epoch()), Epoch(), time.Minute)
			isErr(t, err, store.ErrNotFound, "rotate in a revoked family")
		}
		got, err := s.GetRefreshToken(ctx, hashOf("o1"))
		noErr(t, err, "other family")
		if got.FamilyID != "f2" {
			t.Fatalf("other family = %+v", got)
		}
	})
}

// TestKeys checks the [store.Keys] contract: round trip of every field,
// oldest first, an updater error aborting with nothing stored, removal, and
// concurrent UpdateKeys calls all applied (none lost).
func TestKeys(t *testing.T, newStore NewFunc[store.Keys]) {
	setup := func(t *testing.T) store.Keys {
		clock := clocktest.New(Epoch())
		return newStore(t, clock.Now)
	}
	key := func(id string, created time.Time) store.SigningKey {
		return store.SigningKey{
			ID: id, Alg: "ES256", Private: []byte("sealed\x00" + id), Public: []byte("pub\x00" + id),
			CreatedAt: created, SignFrom: created.Add(time.Hour),
		}
	}
	ids := func(ks []store.SigningKey) []string {
		out := make([]string, len(ks))
		for i, k := range ks {
			out[i] = k.ID
		}
		return out
	}
	// wantIDs fails t unless s lists exactly the keys want, in order, and
	// returns them.
	wantIDs := func(t *testing.T, ctx context.Context, s store.Keys, what string, want ...string) []store.SigningKey {
		t.Helper()
		got, err := s.ListKeys(ctx)
		noErr(t, err, "ListKeys")
		if !slices.Equal(ids(got), want) {
			t.Fatalf("%s: ListKeys = %v, want %v", what, ids(got), want)
		}
		return got
	}

	t.Run("RoundTripOldestFirst", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		got, err := s.ListKeys(ctx)
		noErr(t, err, "ListKeys empty")
		if len(got) != 0 {
			t.Fatalf("ListKeys of an empty store = %d keys", len(got))
		}
		old := key("kOld", Epoch())
		old.RetiredAt = Epoch().Add(24 * time.Hour)
		old.RemoveAt = Epoch().Add(48 * time.Hour)
		newer := key("kNew", Epoch().Add(24*time.Hour))
		newer.Alg = "EdDSA"
		noErr(t, s.UpdateKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
			if len(cur) != 0 {
				return nil, fmt.Errorf("update saw %d keys, want 0", len(cur))
			}
			return []store.SigningKey{newer, old}, nil
		}), "UpdateKeys")
		got = wantIDs(t, ctx, s, "after UpdateKeys", "kOld", "kNew")
		for i, want := range []store.SigningKey{old, newer} {
			k := got[i]
			if k.Alg != want.Alg || !bytes.Equal(k.Private, want.Private) || !bytes.Equal(k.Public, want.Public) ||
				!k.CreatedAt.Equal(want.CreatedAt) || !k.SignFrom.Equal(want.SignFrom) ||
				!k.RetiredAt.Equal(want.RetiredAt) || !k.RemoveAt.Equal(want.RemoveAt) {
				t.Fatalf("key %d = %+v, want %+v", i, k, want)
			}
		}
	})

	t.Run("UpdateErrorAborts", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		noErr(t, s.UpdateKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
			return []store.SigningKey{key("k1", Epoch())}, nil
		}), "UpdateKeys")
		errBoom := errors.New("boom")
		err := s.UpdateKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
			return []store.SigningKey{key("k2", Epoch())}, errBoom
		})
		isErr(t, err, errBoom, "UpdateKeys with a failing update")
		wantIDs(t, ctx, s, "after an aborted update", "k1")
	})

	t.Run("Remove", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		noErr(t, s.UpdateKeys(ctx, func([]store.SigningKey) ([]store.SigningKey, error) {
			return []store.SigningKey{key("k1", Epoch()), key("k2", Epoch().Add(time.Hour))}, nil
		}), "UpdateKeys add")
		noErr(t, s.UpdateKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
			return cur[1:], nil
		}), "UpdateKeys remove")
		wantIDs(t, ctx, s, "after removal", "k2")
	})

	t.Run("ConcurrentUpdates", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = s.UpdateKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, error) {
					return append(cur, key(fmt.Sprint("k", i), Epoch().Add(time.Duration(i)*time.Hour))), nil
				})
			})
		}
		wg.Wait()
		for _, err := range errs {
			noErr(t, err, "UpdateKeys")
		}
		got, err := s.ListKeys(ctx)
		noErr(t, err, "ListKeys")
		if len(got) != n {
			t.Fatalf("%d keys after %d concurrent appends: %v", len(got), n, ids(got))
		}
	})
}
