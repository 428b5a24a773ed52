package qrlogin_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/internal/clocktest"
	"github.com/wxauth/wxauth/internal/qrlogin"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/wechat"
)

const appID = "wx0123456789abcdef"

// fakeWeChat is a WeChat of ...Fn fields; the emulator is used by the
// httpapi tests, this one reaches the cases it cannot produce (a failing
// user/info, many concurrent scanners).
type fakeWeChat struct {
	createFn   func(req wechat.QRCodeRequest) (*wechat.QRCode, error)
	followerFn func(openID string) (*wechat.Follower, error)
	created    []wechat.QRCodeRequest
	mu         sync.Mutex
}

func (f *fakeWeChat) CreateQRCode(ctx context.Context, req wechat.QRCodeRequest) (*wechat.QRCode, error) {
	f.mu.Lock()
	f.created = append(f.created, req)
	f.mu.Unlock()
	if f.createFn != nil {
		return f.createFn(req)
	}
	return &wechat.QRCode{Ticket: "gQ-ticket-" + req.SceneStr, ExpireSeconds: req.ExpireSeconds, URL: "http://weixin.qq.com/q/" + req.SceneStr}, nil
}

func (f *fakeWeChat) Follower(ctx context.Context, openID, lang string) (*wechat.Follower, error) {
	if f.followerFn != nil {
		return f.followerFn(openID)
	}
	return &wechat.Follower{Subscribe: 1, OpenID: openID, UnionID: "u_" + openID}, nil
}

type fixture struct {
	svc   *qrlogin.Service
	wx    *fakeWeChat
	mem   *memory.Store
	clock *clocktest.Clock
}

func newFixture(t *testing.T, mod func(*qrlogin.Config)) *fixture {
	t.Helper()
	f := &fixture{wx: &fakeWeChat{}, clock: clocktest.New(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))}
	f.mem = memory.New(f.clock.Now)
	t.Cleanup(func() { f.mem.Close() })
	cfg := qrlogin.Config{AppID: appID, WeChat: f.wx, Users: f.mem, Records: f.mem, Broker: f.mem, Now: f.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := qrlogin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

func event(from, ev, key, ticket string) *callback.Message {
	return &callback.Message{ToUserName: "gh_test", FromUserName: from, MsgType: "event", Event: ev, EventKey: key, Ticket: ticket}
}

func text(t *testing.T, r callback.Reply) string {
	t.Helper()
	tr, ok := r.(callback.TextReply)
	if !ok {
		t.Fatalf("reply %#v is not text", r)
	}
	return tr.Content
}

func TestNew(t *testing.T) {
	mem := memory.New(time.Now)
	defer mem.Close()
	ok := qrlogin.Config{AppID: appID, WeChat: &fakeWeChat{}, Users: mem, Records: mem, Broker: mem}
	for name, mod := range map[string]func(*qrlogin.Config){
		"NoAppID":   func(c *qrlogin.Config) { c.AppID = "" },
		"NoWeChat":  func(c *qrlogin.Config) { c.WeChat = nil },
		"NoRecords": func(c *qrlogin.Config) { c.Records = nil },
		"NoBroker":  func(c *qrlogin.Config) { c.Broker = nil },
		"NoUsers":   func(c *qrlogin.Config) { c.Users = nil },
		"TTLShort":  func(c *qrlogin.Config) { c.TTL = time.Millisecond },
		"TTLLong":   func(c *qrlogin.Config) { c.TTL = qrlogin.MaxTTL + time.Second },
		"TTLNeg":    func(c *qrlogin.Config) { c.TTL = -time.Second },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := qrlogin.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	svc, err := qrlogin.New(ok)
	if err != nil || svc.TTL() != qrlogin.DefaultTTL {
		t.Fatalf("defaults: %v %v", svc, err)
	}
}

func TestService_Create(t *testing.T) {
	f := newFixture(t, nil)
	a, err := f.svc.Create(context.Background(), "https://h5.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	if !qrlogin.ValidID(a.ID) || len(a.Key) != qrlogin.IDLen || a.Status != qrlogin.StatusPending ||
		!strings.HasPrefix(a.Scene, "login_") || !qrlogin.ValidID(strings.TrimPrefix(a.Scene, "login_")) {
		t.Fatalf("attempt %+v", a)
	}
	if strings.Contains(a.Scene, a.ID) {
		t.Error("the scene, which WeChat pushes to the callback, reveals the attempt id")
	}
	req := f.wx.created[0]
	if req.ActionName != wechat.QRStrScene || req.ExpireSeconds != 300 || req.SceneStr != a.Scene {
		t.Errorf("qrcode/create request %+v", req)
	}
	if a.ExpiresIn(f.clock.Now()) != 300 || a.ExpiresIn(f.clock.Now().Add(299500*time.Millisecond)) != 1 || a.ExpiresIn(a.ExpiresAt) != 0 {
		t.Error("ExpiresIn does not count whole seconds up")
	}
	got, err := f.svc.Status(context.Background(), a.ID)
	if err != nil || got.Key != "" || got.Redirect != "https://h5.example.com/" || got.Ticket != a.Ticket || got.QRURL != a.QRURL {
		t.Fatalf("Status = %+v, %v", got, err)
	}

	t.Run("WeChatRefuses", func(t *testing.T) {
		f := newFixture(t, nil)
		f.wx.createFn = func(wechat.QRCodeRequest) (*wechat.QRCode, error) {
			return nil, &wechat.Error{API: "cgi-bin/qrcode/create", Code: 45009, Msg: "reach max api daily quota limit"}
		}
		_, err := f.svc.Create(context.Background(), "https://h5.example.com/")
		if !wechat.IsCode(err, 45009) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestService_Status(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for _, id := range []string{"", "short", strings.Repeat("a", 23), strings.Repeat("-", 22), strings.Repeat("é", 11), strings.Repeat("a", 22)} {
		if _, err := f.svc.Status(ctx, id); !errors.Is(err, qrlogin.ErrNotFound) || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Status(%q) err %v", id, err)
		}
	}
	a, _ := f.svc.Create(ctx, "https://h5.example.com/")
	f.clock.Advance(qrlogin.DefaultTTL - time.Second)
	if got, _ := f.svc.Status(ctx, a.ID); got.Status != qrlogin.StatusPending {
		t.Errorf("1 s before expiry: %s", got.Status)
	}
	f.clock.Advance(time.Second)
	if got, _ := f.svc.Status(ctx, a.ID); got.Status != qrlogin.StatusExpired {
		t.Errorf("at expiry: %s", got.Status)
	}
	// Long after, the record is gone.
	f.clock.Advance(time.Hour)
	if _, err := f.svc.Status(ctx, a.ID); !errors.Is(err, qrlogin.ErrNotFound) {
		t.Errorf("an hour later: %v", err)
	}
}

func TestService_ServeMessage(t *testing.T) {
	ctx := context.Background()

	t.Run("NotLoginEvents", func(t *testing.T) {
		f := newFixture(t, nil)
		a, _ := f.svc.Create(ctx, "https://h5.example.com/")
		for name, m := range map[string]*callback.Message{
			"Text":                {FromUserName: "o1", MsgType: "text", Content: a.Scene},
			"Click":               event("o1", "CLICK", a.Scene, ""),
			"PlainSubscribe":      event("o1", "subscribe", "", ""),
			"SubscribeNoPrefix":   event("o1", "subscribe", a.Scene, ""),
			"OtherScene":          event("o1", "SCAN", "promo", ""),
			"SubscribeOtherScene": event("o1", "subscribe", "qrscene_promo", ""),
			"IntegerScene":        event("o1", "SCAN", "123", ""),
			"ShortLoginScene":     event("o1", "SCAN", "login_abc", ""),
			"LongLoginScene":      event("o1", "SCAN", a.Scene+"x", ""),
			"BadCharsLoginScene":  event("o1", "SCAN", "login_"+strings.Repeat("%", 22), ""),
			"PrefixedTwice":       event("o1", "SCAN", "qrscene_"+a.Scene, ""),
			"Unsubscribe":         event("o1", "unsubscribe", "", ""),
		} {
			r, err := f.svc.ServeMessage(ctx, m)
			if !errors.Is(err, callback.ErrNotHandled) || r != nil {
				t.Errorf("%s: %v, %v; want ErrNotHandled", name, r, err)
			}
		}
		if got, _ := f.svc.Status(ctx, a.ID); got.Status != qrlogin.StatusPending {
			t.Errorf("status %s", got.Status)
		}
	})

	for _, tc := range []struct{ name, ev, prefix string }{{"SCAN", "SCAN", ""}, {"Subscribe", "subscribe", "qrscene_"}, {"LowerCaseScan", "scan", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *qrlogin.Config) { c.ConfirmText = "ok!" })
			a, _ := f.svc.Create(ctx, "https://h5.example.com/")
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			updates, err := f.svc.Watch(wctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			r, err := f.svc.ServeMessage(ctx, event("oUser1", tc.ev, tc.prefix+a.Scene, a.Ticket))
			if err != nil || text(t, r) != "ok!" {
				t.Fatalf("reply %v, %v", r, err)
			}
			select {
			case st := <-updates:
				if st != qrlogin.StatusConfirmed {
					t.Errorf("published %q", st)
				}
			case <-time.After(10 * time.Second): // a guard against hanging, not a timing check
				t.Fatal("nothing published on qr:<id>")
			}
			got, _ := f.svc.Status(ctx, a.ID)
			u, err := f.mem.FindUser(ctx, appID, "oUser1")
			if err != nil || got.Status != qrlogin.StatusConfirmed || got.UserID != u.ID || got.OpenID != "oUser1" ||
				got.UnionID != "u_oUser1" || u.UnionID != "u_oUser1" {
				t.Fatalf("attempt %+v, user %+v, %v", got, u, err)
			}
			// The same person through web authorization is the same user.
			web, _ := f.mem.UpsertUser(ctx, store.User{AppID: appID, OpenID: "oUser1", UnionID: "u_oUser1", Scope: wechat.ScopeBase}, f.clock.Now())
			if web.ID != got.UserID {
				t.Errorf("web authorization user %s, QR user %s", web.ID, got.UserID)
			}
			// A second scan is refused.
			r, err = f.svc.ServeMessage(ctx, event("oUser2", "SCAN", a.Scene, a.Ticket))
			if err != nil || text(t, r) != qrlogin.DefaultRefusedText {
				t.Fatalf("second scan %v, %v", r, err)
			}
		})
	}

	t.Run("WrongTicket", func(t *testing.T) {
		f := newFixture(t, nil)
		a, _ := f.svc.Create(ctx, "https://h5.example.com/")
		r, err := f.svc.ServeMessage(ctx, event("o1", "SCAN", a.Scene, "gQ-another"))
		if err != nil || text(t, r) != qrlogin.DefaultRefusedText {
			t.Fatalf("%v, %v", r, err)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		f := newFixture(t, func(c *qrlogin.Config) { c.RefusedText = "too late" })
		a, _ := f.svc.Create(ctx, "https://h5.example.com/")
		f.clock.Advance(qrlogin.DefaultTTL)
		r, err := f.svc.ServeMessage(ctx, event("o1", "SCAN", a.Scene, a.Ticket))
		if err != nil || text(t, r) != "too late" {
			t.Fatalf("%v, %v", r, err)
		}
		if _, err := f.mem.FindUser(ctx, appID, "o1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an expired scan created a user: %v", err)
		}
	})

	t.Run("UnknownLoginScene", func(t *testing.T) {
		f := newFixture(t, nil)
		r, err := f.svc.ServeMessage(ctx, event("o1", "subscribe", "qrscene_login_"+strings.Repeat("Q", 22), ""))
		if err != nil || text(t, r) != qrlogin.DefaultRefusedText {
			t.Fatalf("%v, %v", r, err)
		}
	})

	t.Run("UserInfoFails", func(t *testing.T) {
		f := newFixture(t, nil)
		a, _ := f.svc.Create(ctx, "https://h5.example.com/")
		f.wx.followerFn = func(string) (*wechat.Follower, error) {
			return nil, &wechat.Error{API: "cgi-bin/user/info", Code: -1, Msg: "system error"}
		}
		if _, err := f.svc.ServeMessage(ctx, event("o1", "SCAN", a.Scene, a.Ticket)); !wechat.IsCode(err, -1) {
			t.Fatalf("err %v", err)
		}
		// The attempt stays pending: scanning again works.
		f.wx.followerFn = nil
		r, err := f.svc.ServeMessage(ctx, event("o1", "SCAN", a.Scene, a.Ticket))
		if err != nil || text(t, r) != qrlogin.DefaultConfirmText {
			t.Fatalf("retry: %v, %v", r, err)
		}
	})

	t.Run("ConcurrentScans", func(t *testing.T) {
		f := newFixture(t, nil)
		a, _ := f.svc.Create(ctx, "https://h5.example.com/")
		// Every scanner passes the status check before any claims: only
		// the claim can keep the attempt single use.
		var arrived sync.WaitGroup
		arrived.Add(32)
		f.wx.followerFn = func(openID string) (*wechat.Follower, error) {
			arrived.Done()
			arrived.Wait()
			return &wechat.Follower{Subscribe: 1, OpenID: openID}, nil
		}
		var confirmed, refused atomic.Int32
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := f.svc.ServeMessage(ctx, event(fmt.Sprintf("oUser%02d", i), "SCAN", a.Scene, a.Ticket))
				if err != nil {
					t.Error(err)
					return
				}
				switch text(t, r) {
				case qrlogin.DefaultConfirmText:
					confirmed.Add(1)
				case qrlogin.DefaultRefusedText:
					refused.Add(1)
				}
			}()
		}
		wg.Wait()
		if confirmed.Load() != 1 || refused.Load() != 31 {
			t.Fatalf("confirmed %d, refused %d; want exactly one", confirmed.Load(), refused.Load())
		}
	})
}

func TestService_Complete(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	a, _ := f.svc.Create(ctx, "https://h5.example.com/")
	if _, err := f.svc.Complete(ctx, a.ID, a.Key); !errors.Is(err, qrlogin.ErrPending) {
		t.Fatalf("before the scan: %v", err)
	}
	f.svc.ServeMessage(ctx, event("oUser1", "SCAN", a.Scene, a.Ticket))
	for _, key := range []string{"", "x", strings.Repeat("a", 22)} {
		got, err := f.svc.Complete(ctx, a.ID, key)
		if !errors.Is(err, qrlogin.ErrBinding) || got.Redirect != "https://h5.example.com/" {
			t.Fatalf("key %q: %v", key, err)
		}
	}
	if _, err := f.svc.Complete(ctx, strings.Repeat("z", 22), a.Key); !errors.Is(err, qrlogin.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := f.svc.Complete(ctx, a.ID, a.Key)
			switch {
			case err == nil && got.OpenID == "oUser1" && got.UserID != "":
				ok.Add(1)
			case errors.Is(err, qrlogin.ErrUsed):
				used.Add(1)
			default:
				t.Errorf("Complete: %+v, %v", got, err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || used.Load() != 15 {
		t.Fatalf("completed %d, used %d; want exactly one", ok.Load(), used.Load())
	}
	if got, _ := f.svc.Status(ctx, a.ID); got.Status != qrlogin.StatusUsed {
		t.Errorf("status %s", got.Status)
	}

	t.Run("AfterWindow", func(t *testing.T) {
		f := newFixture(t, nil)
		a, _ := f.svc.Create(ctx, "https://h5.example.com/")
		f.clock.Advance(qrlogin.DefaultTTL - time.Second) // scanned in the last second
		f.svc.ServeMessage(ctx, event("oUser1", "SCAN", a.Scene, a.Ticket))
		f.clock.Advance(qrlogin.CompleteWindow - time.Second)
		if got, _ := f.svc.Status(ctx, a.ID); got.Status != qrlogin.StatusConfirmed {
			t.Fatalf("within the window: %s", got.Status)
		}
		f.clock.Advance(time.Second)
		if _, err := f.svc.Complete(ctx, a.ID, a.Key); !errors.Is(err, qrlogin.ErrExpired) {
			t.Fatalf("after the window: %v", err)
		}
	})
}

func BenchmarkService_ServeMessage(b *testing.B) {
	ctx := context.Background()
	mem := memory.New(time.Now)
	defer mem.Close()
	svc, _ := qrlogin.New(qrlogin.Config{AppID: appID, WeChat: &fakeWeChat{}, Users: mem, Records: mem, Broker: mem})
	b.Run("NotLogin", func(b *testing.B) {
		m := event("o1", "subscribe", "qrscene_promo", "")
		b.ReportAllocs()
		for b.Loop() {
			svc.ServeMessage(ctx, m)
		}
	})
	b.Run("Confirm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			a, _ := svc.Create(ctx, "https://h5.example.com/")
			b.StartTimer()
			svc.ServeMessage(ctx, event("o1", "SCAN", a.Scene, a.Ticket))
		}
	})
}

// FuzzService_ServeMessage feeds arbitrary events: the handler never
// panics, answers only login-shaped scenes, and confirms nothing it did
// not create.
func FuzzService_ServeMessage(f *testing.F) {
	for _, seed := range [][2]string{{"SCAN", "login_" + strings.Repeat("A", 22)}, {"subscribe", "qrscene_login_" + strings.Repeat("b", 22)},
		{"subscribe", "qrscene_promo"}, {"SCAN", "123"}, {"CLICK", "login_"}, {"scan", "login_\x00"}} {
		f.Add(seed[0], seed[1])
	}
	mem := memory.New(time.Now)
	defer mem.Close()
	svc, err := qrlogin.New(qrlogin.Config{AppID: appID, WeChat: &fakeWeChat{}, Users: mem, Records: mem, Broker: mem})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ev, key string) {
		r, err := svc.ServeMessage(context.Background(), event("oFuzz", ev, key, ""))
		scene := strings.TrimPrefix(key, "qrscene_")
		loginShaped := strings.HasPrefix(scene, "login_") && qrlogin.ValidID(strings.TrimPrefix(scene, "login_"))
		switch {
		case errors.Is(err, callback.ErrNotHandled):
			if r != nil {
				t.Fatalf("reply %v with ErrNotHandled", r)
			}
		case err != nil:
			t.Fatalf("error %v", err)
		case !loginShaped:
			t.Fatalf("answered %q %q, which is no login scene", ev, key)
		case r.(callback.TextReply).Content != qrlogin.DefaultRefusedText:
			t.Fatalf("confirmed an attempt that does not exist: %v", r)
		}
	})
}
