package storetest

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/store"
)

// userIDPattern is the shape of User.ID.
var userIDPattern = regexp.MustCompile(`^u_[0-9A-Za-z]{22}$`)

// TestUsers checks the [store.Users] contract: identity by unionid, else
// (appid, openid); a user gaining a unionid keeps its ID; unionid matches
// across appids; partial updates (profile only with ProfileUpdatedAt, Scope
// and WebToken only when set); concurrent upserts of one new person make one
// user.
func TestUsers(t *testing.T, newStore NewFunc[store.Users]) {
	setup := func(t *testing.T) store.Users {
		clock := clocktest.New(Epoch())
		return newStore(t, clock.Now)
	}
	upsert := func(t *testing.T, s store.Users, u store.User, now time.Time) store.User {
		t.Helper()
		got, err := s.UpsertUser(testCtx(t), u, now)
		noErr(t, err, "UpsertUser")
		if !userIDPattern.MatchString(got.ID) {
			t.Fatalf("ID %q does not match %v", got.ID, userIDPattern)
		}
		return got
	}

	t.Run("ByOpenID", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		u := upsert(t, s, store.User{ID: "u_ignored", AppID: "wx1", OpenID: "o1", Scope: "snsapi_base"}, Epoch())
		if u.ID == "u_ignored" || u.AppID != "wx1" || u.OpenID != "o1" || u.UnionID != "" || u.Scope != "snsapi_base" {
			t.Fatalf("UpsertUser = %+v", u)
		}
		if !u.CreatedAt.Equal(Epoch()) || !u.UpdatedAt.Equal(Epoch()) {
			t.Fatalf("CreatedAt %v UpdatedAt %v, want %v", u.CreatedAt, u.UpdatedAt, Epoch())
		}
		got, err := s.GetUser(ctx, u.ID)
		noErr(t, err, "GetUser")
		sameUser(t, got, u)
		got, err = s.FindUser(ctx, "wx1", "o1")
		noErr(t, err, "FindUser")
		sameUser(t, got, u)

		later := Epoch().Add(time.Hour)
		again := upsert(t, s, store.User{AppID: "wx1", OpenID: "o1"}, later)
		if again.ID != u.ID {
			t.Fatalf("same openid got a new ID %s, want %s", again.ID, u.ID)
		}
		if again.Scope != "snsapi_base" || !again.CreatedAt.Equal(Epoch()) || !again.UpdatedAt.Equal(later) {
			t.Fatalf("second UpsertUser = %+v", again)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		_, err := s.GetUser(ctx, "u_0000000000000000000000")
		isErr(t, err, store.ErrNotFound, "GetUser")
		_, err = s.FindUser(ctx, "wx1", "nobody")
		isErr(t, err, store.ErrNotFound, "FindUser")
		upsert(t, s, store.User{AppID: "wx1", OpenID: "o1"}, Epoch())
		_, err = s.FindUser(ctx, "wx2", "o1")
		isErr(t, err, store.ErrNotFound, "FindUser under another appid")
	})

	t.Run("GainsUnionIDKeepsID", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		first := upsert(t, s, store.User{AppID: "wx1", OpenID: "o1"}, Epoch())
		withUnion := upsert(t, s, store.User{AppID: "wx1", OpenID: "o1", UnionID: "un1"}, Epoch().Add(time.Minute))
		if withUnion.ID != first.ID || withUnion.UnionID != "un1" {
			t.Fatalf("after gaining a unionid: %+v, want ID %s and unionid un1", withUnion, first.ID)
		}
		// The same person through another Official Account of the owner.
		other := upsert(t, s, store.User{AppID: "wx2", OpenID: "o2", UnionID: "un1"}, Epoch().Add(2*time.Minute))
		if other.ID != first.ID || other.AppID != "wx2" || other.OpenID != "o2" {
			t.Fatalf("unionid across appids: %+v, want ID %s as wx2/o2", other, first.ID)
		}
		for _, id := range [][2]string{{"wx1", "o1"}, {"wx2", "o2"}} {
			got, err := s.FindUser(ctx, id[0], id[1])
			noErr(t, err, "FindUser "+id[0])
			if got.ID != first.ID {
				t.Fatalf("FindUser(%s, %s) = %s, want %s", id[0], id[1], got.ID, first.ID)
			}
		}
		// Back through wx1 without a unionid (snsapi_base gives none).
		back := upsert(t, s, store.User{AppID: "wx1", OpenID: "o1"}, Epoch().Add(3*time.Minute))
		if back.ID != first.ID || back.UnionID != "un1" {
			t.Fatalf("openid-only login after unionid: %+v", back)
		}
	})

	t.Run("UnionIDFirst", func(t *testing.T) {
		s := setup(t)
		a := upsert(t, s, store.User{AppID: "wx1", OpenID: "o1", UnionID: "un1"}, Epoch())
		b := upsert(t, s, store.User{AppID: "wx2", OpenID: "o2", UnionID: "un1"}, Epoch())
		c := upsert(t, s, store.User{AppID: "wx1", OpenID: "o3", UnionID: "un3"}, Epoch())
		d := upsert(t, s, store.User{AppID: "wx2", OpenID: "o1"}, Epoch()) // same openid, other app: another person
		if a.ID != b.ID {
			t.Fatalf("one unionid, two IDs: %s, %s", a.ID, b.ID)
		}
		if c.ID == a.ID || d.ID == a.ID || d.ID == c.ID {
			t.Fatalf("different people share an ID: %s %s %s", a.ID, c.ID, d.ID)
		}
	})

	t.Run("PartialUpdates", func(t *testing.T) {
		s := setup(t)
		ctx := testCtx(t)
		profile := store.User{
			AppID: "wx1", OpenID: "o1", Nickname: "张三", HeadImgURL: "https://thirdwx.qlogo.cn/mmopen/x/132",
			Sex: 1, Province: "广东", City: "深圳", Country: "中国", Privilege: []string{"CHINAUNICOM", "P2"},
			Scope: "snsapi_userinfo", WebToken: []byte("sealed\x00web"), ProfileUpdatedAt: Epoch(),
		}
		u := upsert(t, s, profile, Epoch())
		if u.Nickname != "张三" || u.HeadImgURL != profile.HeadImgURL || u.Sex != 1 || u.Province != "广东" ||
			u.City != "深圳" || u.Country != "中国" || !slices.Equal(u.Privilege, profile.Privilege) ||
			!bytes.Equal(u.WebToken, profile.WebToken) || !u.ProfileUpdatedAt.Equal(Epoch()) {
			t.Fatalf("profile not stored: %+v", u)
		}
		// A snsapi_base login: no profile, no scope change, no token.
		later := Epoch().Add(time.Hour)
		base := upsert(t, s, store.User{AppID: "wx1", OpenID: "o1", Nickname: "ignored"}, later)
		sameProfile(t, base, u)
		if base.Scope != "snsapi_userinfo" || !bytes.Equal(base.WebToken, profile.WebToken) {
			t.Fatalf("scope or web token changed by an empty update: %+v", base)
		}
		// A new userinfo fetch replaces the profile, even with empty fields.
		fresh := upsert(t, s, store.User{AppID: "wx1", OpenID: "o1", Nickname: "李四", Scope: "snsapi_base",
			WebToken: []byte("new"), ProfileUpdatedAt: later}, later)
		if fresh.Nickname != "李四" || fresh.City != "" || len(fresh.Privilege) != 0 || fresh.Sex != 0 ||
			!fresh.ProfileUpdatedAt.Equal(later) || fresh.Scope != "snsapi_base" || string(fresh.WebToken) != "new" {
			t.Fatalf("profile not replaced: %+v", fresh)
		}
		got, err := s.GetUser(ctx, u.ID)
		noErr(t, err, "GetUser")
		sameUser(t, got, fresh)
	})

	t.Run("ConcurrentNewPerson", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			user store.User
		}{
			{"UnionID", store.User{AppID: "wx1", OpenID: "o1", UnionID: "un1"}},
			{"OpenID", store.User{AppID: "wx1", OpenID: "o1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := setup(t)
				ctx := testCtx(t)
				const n = 16
				ids := make([]string, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						u, err := s.UpsertUser(ctx, tc.user, Epoch())
						ids[i], errs[i] = u.ID, err
					})
				}
				close(start)
				wg.Wait()
				for i := range n {
					noErr(t, errs[i], fmt.Sprintf("UpsertUser %d", i))
					if ids[i] != ids[0] {
						t.Fatalf("concurrent upserts of one person made two users: %s and %s", ids[0], ids[i])
					}
				}
				got, err := s.FindUser(ctx, "wx1", "o1")
				noErr(t, err, "FindUser")
				if got.ID != ids[0] {
					t.Fatalf("FindUser = %s, want %s", got.ID, ids[0])
				}
			})
		}
	})

	t.Run("ConcurrentOpenIDThenUnionID", func(t *testing.T) {
		// One person logging in from two appids at once, both with the
		// unionid: whatever the interleaving, one user.
		s := setup(t)
		ctx := testCtx(t)
		first := upsert(t, s, store.User{AppID: "wx1", OpenID: "o1"}, Epoch())
		var wg sync.WaitGroup
		res := make([]store.User, 2)
		errs := make([]error, 2)
		for i, u := range []store.User{
			{AppID: "wx1", OpenID: "o1", UnionID: "un1"},
			{AppID: "wx2", OpenID: "o2", UnionID: "un1"},
		} {
			wg.Go(func() { res[i], errs[i] = s.UpsertUser(ctx, u, Epoch()) })
		}
		wg.Wait()
		noErr(t, errs[0], "UpsertUser wx1")
		noErr(t, errs[1], "UpsertUser wx2")
		if res[0].ID != res[1].ID {
			t.Fatalf("one unionid, two users: %s, %s", res[0].ID, res[1].ID)
		}
		final, err := s.FindUser(ctx, "wx1", "o1")
		noErr(t, err, "FindUser")
		if final.ID != res[0].ID || final.UnionID != "un1" {
			t.Fatalf("FindUser(wx1, o1) = %+v, want ID %s (first was %s)", final, res[0].ID, first.ID)
		}
	})
}

// sameUser fails t unless got and want agree on every field.
func sameUser(t *testing.T, got, want store.User) {
	t.Helper()
	if got.ID != want.ID || got.AppID != want.AppID || got.OpenID != want.OpenID || got.UnionID != want.UnionID ||
		got.Scope != want.Scope || !bytes.Equal(got.WebToken, want.WebToken) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("user = %+v, want %+v", got, want)
	}
	sameProfile(t, got, want)
}

// sameProfile fails t unless got and want have the same sns/userinfo fields.
func sameProfile(t *testing.T, got, want store.User) {
	t.Helper()
	if got.Nickname != want.Nickname || got.HeadImgURL != want.HeadImgURL || got.Sex != want.Sex ||
		got.Province != want.Province || got.City != want.City || got.Country != want.Country ||
		len(got.Privilege) != len(want.Privilege) || (len(got.Privilege) > 0 && !slices.Equal(got.Privilege, want.Privilege)) ||
		!got.ProfileUpdatedAt.Equal(want.ProfileUpdatedAt) {
		t.Fatalf("profile = %+v, want %+v", got, want)
	}
}
