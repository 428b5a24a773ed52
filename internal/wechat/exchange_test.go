package wechat

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const exchangeOK = `{"access_token":"ACCESS_TOKEN_X","expires_in":7200,"refresh_token":"REFRESH_TOKEN_X","openid":"OPENID","scope":"snsapi_userinfo","unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL","is_snapshotuser":1}`

func TestClient_Exchange(t *testing.T) {
	const code = "CODE_0123456789"
	t.Run("OK", func(t *testing.T) {
		var q url.Values
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": queryTo(&q, jsonBody(exchangeOK))})
		c := newTestClient(t, f)
		now := time.Unix(1700000000, 0)
		c.now = func() time.Time { return now }
		tok, err := c.Exchange(context.Background(), code)
		if err != nil {
			t.Fatal(err)
		}
		if q.Get("appid") != testAppID || q.Get("secret") != testSecret || q.Get("code") != code || q.Get("grant_type") != "authorization_code" {
			t.Fatalf("query %v", q)
		}
		if tok.AccessToken != "ACCESS_TOKEN_X" || tok.RefreshToken != "REFRESH_TOKEN_X" || !tok.Expiry.Equal(now.Add(7200*time.Second)) || tok.ExpiresIn != 7200 {
			t.Fatalf("token %+v", tok)
		}
		if OpenID(tok) != "OPENID" || Scope(tok) != ScopeUserInfo || UnionID(tok) != "o6_bmasdasdsad6_2sgVt7hMZOPfL" || !IsSnapshotUser(tok) {
			t.Fatalf("extras: openid %q scope %q unionid %q snapshot %v", OpenID(tok), Scope(tok), UnionID(tok), IsSnapshotUser(tok))
		}
		if tok.Extra("access_token") != nil || tok.Extra("refresh_token") != nil {
			t.Fatal("tokens repeated in Extra")
		}
	})
	t.Run("NoExtras", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": jsonBody(`{"access_token":"A","expires_in":7200,"refresh_token":"R","openid":"O","scope":"snsapi_base"}`)})
		tok, err := newTestClient(t, f).Exchange(context.Background(), code)
		if err != nil {
			t.Fatal(err)
		}
		if UnionID(tok) != "" || IsSnapshotUser(tok) || Scope(tok) != ScopeBase {
			t.Fatalf("extras %q %v %q", UnionID(tok), IsSnapshotUser(tok), Scope(tok))
		}
	})
	for _, tc := range []struct {
		name string
		code int
	}{
		{"InvalidCode40029", CodeInvalidCode},
		{"CodeUsed40163", CodeCodeUsed},
		{"CodeExpired42003", CodeCodeExpired},
		{"InvalidAppID40013", CodeInvalidAppID},
		{"AppSecret40125", CodeAppSecret},
		{"IPWhitelist40164", CodeIPWhitelist},
		{"Quota45009", CodeQuota},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": errBody(tc.code, "some error")})
			_, err := newTestClient(t, f).Exchange(context.Background(), code)
			var we *Error
			if !errors.As(err, &we) || we.Code != tc.code || we.API != "sns/oauth2/access_token" {
				t.Fatalf("err = %#v", err)
			}
			if !IsCode(err, 1, tc.code) || IsCode(err, CodeBusy) {
				t.Fatal("IsCode")
			}
			if !strings.HasSuffix(we.Msg, " rid: 6650a1b2-1c2d3e4f-5a6b7c8d") {
				t.Fatalf("Msg %q lost its rid suffix", we.Msg)
			}
			if Temporary(err) {
				t.Fatal("Temporary")
			}
			if n := f.count("/sns/oauth2/access_token"); n != 1 {
				t.Fatalf("%d calls, want 1 (no retry)", n)
			}
			assertNoSecret(t, err.Error(), code)
		})
	}
	t.Run("Busy-1RetriedThenOK", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": sequence(errBody(-1, "system error"), errBody(-1, "system error"), jsonBody(exchangeOK))})
		tok, err := newTestClient(t, f).Exchange(context.Background(), code)
		if err != nil || OpenID(tok) != "OPENID" {
			t.Fatalf("%v %v", tok, err)
		}
		if n := f.count("/sns/oauth2/access_token"); n != 3 {
			t.Fatalf("%d calls, want 3", n)
		}
	})
	t.Run("TooFrequent45011RetriedThenOK", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": sequence(errBody(45011, "api minute-quota reach limit"), jsonBody(exchangeOK))})
		if _, err := newTestClient(t, f).Exchange(context.Background(), code); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Busy-1GivesUp", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": errBody(-1, "system error")})
		_, err := newTestClient(t, f).Exchange(context.Background(), code)
		if !IsCode(err, CodeBusy) || !Temporary(err) {
			t.Fatalf("err = %v", err)
		}
		if n := f.count("/sns/oauth2/access_token"); n != maxAttempts {
			t.Fatalf("%d calls, want %d", n, maxAttempts)
		}
	})
	t.Run("Status502NotRetried", func(t *testing.T) {
		// A gateway error after the request was sent: WeChat may have
		// consumed the code behind it, so the exchange is not repeated.
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": sequence(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}, jsonBody(exchangeOK))})
		_, err := newTestClient(t, f).Exchange(context.Background(), code)
		var se *StatusError
		if !errors.Is(err, ErrAnswerLost) || !errors.As(err, &se) || se.StatusCode != 502 || !Temporary(err) || IsDeadCode(err) {
			t.Fatalf("err = %v", err)
		}
		if n := f.count("/sns/oauth2/access_token"); n != 1 {
			t.Fatalf("%d calls, want 1 (never repeated once sent)", n)
		}
	})
	t.Run("Status502RefreshRetried", func(t *testing.T) {
		// A refresh consumes nothing: its 5xx is retried.
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/refresh_token": sequence(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}, jsonBody(exchangeOK))})
		if _, err := newTestClient(t, f).Refresh(context.Background(), "REFRESH"); err != nil {
			t.Fatal(err)
		}
		if n := f.count("/sns/oauth2/refresh_token"); n != 2 {
			t.Fatalf("%d calls, want 2", n)
		}
	})
	t.Run("DialErrorRetried", func(t *testing.T) {
		// Nothing was written: the code cannot have reached WeChat.
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": jsonBody(exchangeOK)})
		c := newTestClient(t, f)
		var dials atomic.Int64
		c.hc = &http.Client{Timeout: 5 * time.Second, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if dials.Add(1) <= 2 {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			}
			return http.DefaultTransport.RoundTrip(r)
		})}
		tok, err := c.Exchange(context.Background(), code)
		if err != nil || OpenID(tok) != "OPENID" {
			t.Fatalf("%v %v", tok, err)
		}
		if n := f.count("/sns/oauth2/access_token"); n != 1 || dials.Load() != 3 {
			t.Fatalf("%d calls after %d attempts, want 1 after 3", n, dials.Load())
		}
	})
	t.Run("FailureAfterHeaderWrittenNotRetried", func(t *testing.T) {
		var attempts atomic.Int64
		c := newTestClient(t, nil)
		c.hc = &http.Client{Timeout: 5 * time.Second, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			attempts.Add(1)
			if tr := httptrace.ContextClientTrace(r.Context()); tr != nil && tr.WroteHeaders != nil {
				tr.WroteHeaders()
			}
			return nil, io.ErrUnexpectedEOF
		})}
		_, err := c.Exchange(context.Background(), code)
		var ue *url.Error
		if !errors.Is(err, ErrAnswerLost) || !errors.As(err, &ue) || attempts.Load() != 1 {
			t.Fatalf("err = %v after %d attempts, want ErrAnswerLost after 1", err, attempts.Load())
		}
		assertNoSecret(t, err.Error(), code)
	})
	t.Run("NotReplayableByTransport", func(t *testing.T) {
		// net/http's Transport re-sends a replayable (idempotent) request
		// by itself when a reused connection breaks; the exchange must not
		// be one.
		var seen *http.Request
		c := newTestClient(t, nil)
		c.hc = &http.Client{Timeout: 5 * time.Second, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			seen = r
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		})}
		c.Exchange(context.Background(), code)
		if seen == nil || seen.Body == nil || seen.Body == http.NoBody || seen.GetBody != nil || seen.Method != http.MethodGet {
			t.Fatalf("request %+v is replayable", seen)
		}
	})
	t.Run("Status503BodyCut", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, strings.Repeat("x", 5000))
		}})
		_, err := newTestClient(t, f).Exchange(context.Background(), code)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != 503 || len(se.Body) != 1024 || se.API != "sns/oauth2/access_token" || !Temporary(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Status404NotRetried", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": http.NotFound})
		_, err := newTestClient(t, f).Exchange(context.Background(), code)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != 404 || Temporary(err) || f.count("/sns/oauth2/access_token") != 1 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ResponseOver1MiB", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"access_token":"`+strings.Repeat("a", 2<<20)+`"}`)
		}})
		_, err := newTestClient(t, f).Exchange(context.Background(), code)
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("NotJSON", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": jsonBody(`<html>`)})
		if _, err := newTestClient(t, f).Exchange(context.Background(), code); err == nil {
			t.Fatal("want error")
		}
	})
	t.Run("MissingOpenID", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": jsonBody(`{"access_token":"A","expires_in":7200}`)})
		_, err := newTestClient(t, f).Exchange(context.Background(), code)
		if err == nil {
			t.Fatal("want error")
		}
		assertNoSecret(t, err.Error(), "A")
	})
	t.Run("EmptyCode", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": jsonBody(exchangeOK)})
		if _, err := newTestClient(t, f).Exchange(context.Background(), ""); !errors.Is(err, ErrInvalidArgument) || f.count("/sns/oauth2/access_token") != 0 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("TransportErrorRedacted", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens: connection refused
		c, err := NewClient(Config{AppID: testAppID, AppSecret: testSecret, Endpoint: EmulatorEndpoint("http://" + addr), HTTPClient: &http.Client{Timeout: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exchange(context.Background(), code)
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Fatalf("err = %#v, want *url.Error", err)
		}
		assertNoSecret(t, err.Error(), code)
		if !strings.Contains(ue.URL, "secret=REDACTED") || !strings.Contains(ue.URL, "code=REDACTED") || !strings.Contains(ue.URL, "/sns/oauth2/access_token") {
			t.Fatalf("URL %q", ue.URL)
		}
	})
	t.Run("TimeoutNotRetriedRedacted", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}})
		c := newTestClient(t, f)
		c.hc = &http.Client{Timeout: 50 * time.Millisecond}
		_, err := c.Exchange(context.Background(), code)
		var ue *url.Error
		if !errors.As(err, &ue) || !ue.Timeout() || !Temporary(err) || !errors.Is(err, ErrAnswerLost) {
			t.Fatalf("err = %#v", err)
		}
		assertNoSecret(t, err.Error(), code)
		if n := f.count("/sns/oauth2/access_token"); n != 1 {
			t.Fatalf("%d calls, want 1 (the request was sent)", n)
		}
	})
	t.Run("ContextCanceledNoRetry", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": errBody(-1, "busy")})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newTestClient(t, f).Exchange(ctx, code)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		assertNoSecret(t, err.Error(), code)
	})
	t.Run("DeadlineStopsBackoff", func(t *testing.T) {
		f := newFake(t, map[string]http.HandlerFunc{"/sns/oauth2/access_token": errBody(-1, "busy")})
		c := newTestClient(t, f)
		c.backoff = func(int) time.Duration { return time.Hour }
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.Exchange(ctx, code)
		if !IsCode(err, CodeBusy) || f.count("/sns/oauth2/access_token") != 1 {
			t.Fatalf("err = %v after %d calls; the wait exceeds the deadline so no retry", err, f.count("/sns/oauth2/access_token"))
		}
	})
}
