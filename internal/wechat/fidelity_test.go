package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"
)

// Tests of the client's reaction to WeChat's harder cases, played by wxemu
// (its faults and behaviours are listed in the wxemu package doc).

// calls returns the emulator's call count of a WeChat path.
func (e *emuEnv) calls(tb testing.TB, path string) int {
	tb.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(e.srv.URL + "/emu/calls")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		tb.Fatal(err)
	}
	return m[path]
}

func TestClient_Exchange_AnswerLost(t *testing.T) {
	e := newEmuEnv(t)
	ctx := context.Background()
	// A first exchange leaves a kept-alive connection to reuse: net/http
	// would replay an idempotent GET on it after the server hangs up.
	if _, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_bob", ScopeBase)); err != nil {
		t.Fatal(err)
	}
	code := e.authorize(t, "oWXEMU_bob", ScopeBase)
	e.control(t, "POST", "/emu/faults", map[string]any{"path": "/sns/oauth2/access_token", "drop_answer": true})
	before := e.calls(t, "/sns/oauth2/access_token")
	_, err := e.c.Exchange(ctx, code)
	if !errors.Is(err, ErrAnswerLost) || IsDeadCode(err) {
		t.Fatalf("err = %v, want ErrAnswerLost", err)
	}
	if n := e.calls(t, "/sns/oauth2/access_token") - before; n != 1 {
		t.Fatalf("the code was sent %d times, want 1", n)
	}
	assertNoSecret(t, err.Error(), code)
	// WeChat consumed it: trying it again is a dead code, which the login
	// turns into a new authorization.
	if _, err := e.c.Exchange(ctx, code); !IsDeadCode(err) || !IsCode(err, CodeCodeUsed) {
		t.Fatalf("second exchange: %v, want 40163", err)
	}
	if tok, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_bob", ScopeBase)); err != nil || OpenID(tok) != "oWXEMU_bob" {
		t.Fatalf("a new authorization: %v %v", tok, err)
	}
}

func TestClient_Exchange_BusyIsAnAnswer(t *testing.T) {
	e := newEmuEnv(t)
	code := e.authorize(t, "oWXEMU_bob", ScopeBase)
	e.control(t, "POST", "/emu/faults", map[string]any{"path": "/sns/oauth2/access_token", "errcode": -1, "times": 2})
	before := e.calls(t, "/sns/oauth2/access_token")
	if _, err := e.c.Exchange(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	if n := e.calls(t, "/sns/oauth2/access_token") - before; n != 3 {
		t.Fatalf("%d calls, want 3 (-1 twice, then the code)", n)
	}
}

func TestClient_Exchange_GatewayErrorNotRepeated(t *testing.T) {
	e := newEmuEnv(t)
	code := e.authorize(t, "oWXEMU_bob", ScopeBase)
	e.control(t, "POST", "/emu/faults", map[string]any{"path": "/sns/oauth2/access_token", "status": 502})
	before := e.calls(t, "/sns/oauth2/access_token")
	_, err := e.c.Exchange(context.Background(), code)
	var se *StatusError
	if !errors.Is(err, ErrAnswerLost) || !errors.As(err, &se) || se.StatusCode != 502 {
		t.Fatalf("err = %v", err)
	}
	if n := e.calls(t, "/sns/oauth2/access_token") - before; n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}

func TestClient_Snapshot(t *testing.T) {
	e := newEmuEnv(t)
	ctx := context.Background()
	base, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_snap", ScopeBase))
	if err != nil || IsSnapshotUser(base) {
		t.Fatalf("snsapi_base is never a snapshot page: %v %v", base, err)
	}
	snap, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_snap", ScopeUserInfo))
	if err != nil || !IsSnapshotUser(snap) {
		t.Fatalf("snapshot: %v %v", snap, err)
	}
	if _, err := e.c.UserInfo(ctx, snap.AccessToken, OpenID(snap), ""); !IsCode(err, CodeUnauthorized) {
		t.Fatalf("userinfo of a snapshot user: %v, want 48001", err)
	}
	// is_snapshotuser missing on a first exchange: only sns/userinfo's
	// 48001 tells.
	e.control(t, "POST", "/emu/faults", map[string]any{"path": "/sns/oauth2/access_token", "omit_snapshot": true})
	quiet, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_snap", ScopeUserInfo))
	if err != nil || IsSnapshotUser(quiet) || Scope(quiet) != ScopeUserInfo {
		t.Fatalf("flag omitted: %v %v", quiet, err)
	}
	if _, err := e.c.UserInfo(ctx, quiet.AccessToken, OpenID(quiet), ""); !IsCode(err, CodeUnauthorized) {
		t.Fatalf("userinfo: %v, want 48001", err)
	}
}

func TestClient_Refresh_Reauthorization(t *testing.T) {
	e := newEmuEnv(t)
	ctx := context.Background()
	first, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_alice", ScopeUserInfo))
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.c.Exchange(ctx, e.authorize(t, "oWXEMU_alice", ScopeUserInfo))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Refresh(ctx, first.RefreshToken); !IsCode(err, CodeInvalidRefreshToken) || !NeedsReauthorization(err) {
		t.Fatalf("refresh_token of an earlier authorization: %v, want 40030", err)
	}
	if _, err := e.c.Refresh(ctx, second.RefreshToken); err != nil {
		t.Fatal(err)
	}
	e.control(t, "POST", "/emu/void-web-tokens", map[string]any{"openid": "oWXEMU_alice"})
	if _, err := e.c.Refresh(ctx, second.RefreshToken); !IsCode(err, CodeTokenVoided) || !NeedsReauthorization(err) {
		t.Fatalf("voided refresh_token: %v, want 42007", err)
	}
	if _, err := e.c.UserInfo(ctx, second.AccessToken, "oWXEMU_alice", ""); !IsCode(err, CodeTokenVoided) {
		t.Fatalf("voided access_token: %v, want 42007", err)
	}
}

func TestTokenManager_ForceRefreshAnswersSameToken(t *testing.T) {
	e := newEmuEnv(t)
	ctx := context.Background()
	t1, err := e.m.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// t1 refused: a forced refresh gives t2 and voids t1 at once.
	if err := e.m.Invalidate(ctx, t1); err != nil {
		t.Fatal(err)
	}
	t2, err := e.m.AccessToken(ctx)
	if err != nil || t2 == t1 {
		t.Fatalf("after invalidating: %q %v", t2, err)
	}
	// t2 reported failed within 30 s: stable_token answers t2 again without
	// refreshing. The manager serves it instead of forcing on every call.
	before := e.calls(t, "/cgi-bin/stable_token")
	if err := e.m.Invalidate(ctx, t2); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got, err := e.m.AccessToken(ctx); err != nil || got != t2 {
			t.Fatalf("after the same token came back: %q %v, want %q", got, err, t2)
		}
	}
	if n := e.calls(t, "/cgi-bin/stable_token") - before; n != 1 {
		t.Fatalf("%d stable_token calls, want 1", n)
	}
	if _, err := e.a.Follower(ctx, "oWXEMU_alice", ""); err != nil {
		t.Fatalf("t2 still works: %v", err)
	}
}

func TestTokenManager_IPRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		body map[string]any
		code int
	}{
		{"Whitelist40164", map[string]any{"ips": []string{"192.0.2.1"}}, CodeIPWhitelist},
		{"RiskConfirm89503", map[string]any{"ips": []string{}, "risk_confirm": true}, CodeIPConfirm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEmuEnv(t)
			e.control(t, "POST", "/emu/ip-whitelist", tc.body)
			_, err := e.m.AccessToken(context.Background())
			if !IsCode(err, tc.code) || Temporary(err) {
				t.Fatalf("err = %v, want %d", err, tc.code)
			}
			if n := e.calls(t, "/cgi-bin/stable_token"); n != 1 {
				t.Fatalf("%d calls, want 1 (not retried)", n)
			}
		})
	}
}
