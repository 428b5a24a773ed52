package wechat

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
)

// recorder is an Observer keeping what it is told.
type recorder struct {
	mu        sync.Mutex
	calls     []Call
	refreshes []string // "name" or "name forced"
}

func (r *recorder) Call(_ context.Context, c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder) CredentialRefreshed(_ context.Context, name string, forced bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if forced {
		name += " forced"
	}
	r.refreshes = append(r.refreshes, name)
}

func (r *recorder) snapshot() ([]Call, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), slices.Clone(r.refreshes)
}

func TestClient_Observer(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"/sns/userinfo": sequence(errBody(CodeBusy, "system error"),
			jsonBody(`{"openid":"o1","nickname":"n","unionid":"u1"}`)),
		"/sns/oauth2/access_token": errBody(CodeInvalidCode, "invalid code"),
		"/cgi-bin/showqrcode": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
		},
	})
	rec := &recorder{}
	c := newTestClient(t, f)
	c.obs = rec
	ctx := context.Background()
	if _, err := c.UserInfo(ctx, "AT", "o1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exchange(ctx, "CODE"); !IsCode(err, CodeInvalidCode) {
		t.Fatalf("Exchange: %v", err)
	}
	if _, err := NewAPI(c, nil).ShowQRCode(ctx, "T"); err == nil {
		t.Fatal("ShowQRCode: no error from a 502")
	}

	type seen struct {
		api     string
		status  int
		errcode int
		failed  bool
	}
	var got []seen
	calls, _ := rec.snapshot()
	for _, c := range calls {
		if c.Duration < 0 {
			t.Errorf("%s: negative duration", c.API)
		}
		got = append(got, seen{c.API, c.StatusCode, c.ErrCode, c.Err != nil})
	}
	want := []seen{
		{"sns/userinfo", 200, CodeBusy, true}, // retried
		{"sns/userinfo", 200, 0, false},
		{"sns/oauth2/access_token", 200, CodeInvalidCode, true},
	}
	for range maxAttempts { // a 5xx is retried
		want = append(want, seen{"cgi-bin/showqrcode", 502, 0, true})
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls observed:\n got %v\nwant %v", got, want)
	}

	// No answer at all: status 0 and the redacted *url.Error.
	dead, deadRec := newTestClient(t, nil), &recorder{}
	dead.obs = deadRec
	if _, err := dead.Exchange(ctx, "CODE"); err == nil {
		t.Fatal("Exchange on a closed port succeeded")
	}
	calls, _ = deadRec.snapshot()
	if len(calls) == 0 {
		t.Fatal("transport failure not observed")
	}
	for _, c := range calls {
		var ue *url.Error
		if c.API != "sns/oauth2/access_token" || c.StatusCode != 0 || c.ErrCode != 0 || !errors.As(c.Err, &ue) {
			t.Errorf("transport failure observed as %+v", c)
		}
	}
}

func TestTokenManager_Observer(t *testing.T) {
	e := newTokenEnv(t)
	rec := &recorder{}
	m := e.manager(t, "")
	m.c.obs = rec
	t1 := mustToken(t, m)
	if err := m.Invalidate(context.Background(), t1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.JSAPITicket(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, refreshes := rec.snapshot()
	if want := []string{"access_token", "access_token forced", "jsapi_ticket"}; !slices.Equal(refreshes, want) {
		t.Errorf("refreshes %v, want %v", refreshes, want)
	}

	// cgi-bin/token has no force_refresh: a refresh after a refusal is
	// never reported forced.
	e, rec = newTokenEnv(t), &recorder{}
	classic := e.manager(t, TokenAPIClassic)
	classic.c.obs = rec
	t2 := mustToken(t, classic)
	if err := classic.Invalidate(context.Background(), t2); err != nil {
		t.Fatal(err)
	}
	if _, refreshes := rec.snapshot(); !slices.Equal(refreshes, []string{"access_token", "access_token"}) {
		t.Errorf("classic refreshes %v, want two unforced", refreshes)
	}
}
