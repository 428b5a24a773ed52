package logx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

const sampleJWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1XzEyMyIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYWJj"

// logOne logs one record through New(JSON handler) and returns the decoded
// line.
func logOne(t *testing.T, f func(l *slog.Logger)) (map[string]any, string) {
	t.Helper()
	var buf bytes.Buffer
	l := slog.New(New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	f(l)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	return m, buf.String()
}

func TestHandler_SecretKeys(t *testing.T) {
	for _, key := range []string{"secret", "appsecret", "token", "access_token", "refresh_token", "code", "jwt",
		"cookie", "authorization", "aes_key", "encoding_aes_key", "password", "ticket", "content", "echostr",
		"Authorization", "ACCESS_TOKEN", "callback_token", "forward_secret", "previous_aes_key"} {
		t.Run(key, func(t *testing.T) {
			m, raw := logOne(t, func(l *slog.Logger) { l.Info("x", key, "s3cr3t-value-42") })
			if m[key] != Redacted || strings.Contains(raw, "s3cr3t-value-42") {
				t.Fatalf("%s not redacted: %s", key, raw)
			}
		})
	}
}

func TestHandler_KeepsOrdinaryKeys(t *testing.T) {
	m, raw := logOne(t, func(l *slog.Logger) {
		l.Info("request", "errcode", 40029, "wechat_errcode", "40163", "wxcode", -40001, "route", "/oauth/callback",
			"status", 302, "reason", "signature", "msg_type", "text", "request_id", "abc123")
	})
	for k, want := range map[string]any{"errcode": float64(40029), "wechat_errcode": "40163", "wxcode": float64(-40001),
		"route": "/oauth/callback", "status": float64(302), "reason": "signature", "msg_type": "text", "request_id": "abc123"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v (%s)", k, m[k], want, raw)
		}
	}
}

func TestHandler_Values(t *testing.T) {
	urlErr := &url.Error{Op: "Get", URL: "https://api.weixin.qq.com/sns/oauth2/access_token?appid=wx1&secret=APPSECRETVALUE&code=CODEVALUE123&grant_type=authorization_code",
		Err: errors.New("dial tcp: i/o timeout")}
	for name, tc := range map[string]valueCase{
		"WholeJWT":         {slog.String("note", sampleJWT), "c2lnbmF0dXJl", ""},
		"JWTInText":        {slog.String("detail", "bearer "+sampleJWT+" rejected"), "eyJzdWIi", "rejected"},
		"URLErrorSecret":   {slog.Any("err", urlErr), "APPSECRETVALUE", "i/o timeout"},
		"URLErrorCode":     {slog.Any("err", urlErr), "CODEVALUE123", "appid=wx1"},
		"WrappedError":     {slog.Any("error", fmt.Errorf("exchange: %w", urlErr)), "CODEVALUE123", "exchange"},
		"QueryInString":    {slog.String("url", "/oauth/callback?code=abcDEF123&state=xyz"), "abcDEF123", "state=xyz"},
		"RefreshInString":  {slog.String("body", `refresh_token=RT-9f8e7d&grant_type=refresh_token`), "RT-9f8e7d", "grant_type"},
		"AccessTokenQuery": {slog.String("u", "https://api/cgi-bin/menu/get?access_token=ACCESSTOK99"), "ACCESSTOK99", "menu/get"},
		"StringerURL":      {slog.Any("u", &url.URL{Scheme: "https", Host: "h", Path: "/p", RawQuery: "ticket=TICKET77"}), "TICKET77", "https://h/p"},
		"Bytes":            {slog.Any("b", []byte("code=BYTECODE1")), "BYTECODE1", ""},
		"Group":            {slog.Group("req", slog.String("cookie", "wxauth_refresh=COOKIEVAL"), slog.String("path", "/me")), "COOKIEVAL", "/me"},
		"ErrcodeKept":      {slog.String("msg", "errcode=40029 invalid code"), "", "errcode=40029"},
	} {
		t.Run(name, func(t *testing.T) {
			_, raw := logOne(t, func(l *slog.Logger) { l.Info("x", tc.attr) })
			if tc.secret != "" && strings.Contains(raw, tc.secret) {
				t.Errorf("secret %q leaked: %s", tc.secret, raw)
			}
			if tc.keep != "" && !strings.Contains(raw, tc.keep) {
				t.Errorf("lost %q: %s", tc.keep, raw)
			}
		})
	}
}

// valueCase is one attribute, a secret that must not appear in the line
// and a part that must stay.
type valueCase struct {
	attr   slog.Attr
	secret string
	keep   string
}

func TestHandler_MessageWithAttrsAndGroups(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(New(slog.NewTextHandler(&buf, nil)))
	l = l.With("appsecret", "WITHSECRET", "component", "emulator").WithGroup("g")
	l.Info("redirect to /cb?code=MSGCODE", "token", "GROUPTOKEN", "n", 3)
	out := buf.String()
	for _, s := range []string{"WITHSECRET", "MSGCODE", "GROUPTOKEN"} {
		if strings.Contains(out, s) {
			t.Errorf("%s leaked: %s", s, out)
		}
	}
	for _, s := range []string{"component=emulator", "g.n=3", "g.token=REDACTED"} {
		if !strings.Contains(out, s) {
			t.Errorf("lost %q: %s", s, out)
		}
	}
}

func TestHandler_EnabledFollowsNext(t *testing.T) {
	h := New(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if h.Enabled(t.Context(), slog.LevelInfo) || !h.Enabled(t.Context(), slog.LevelError) {
		t.Fatal("Enabled does not follow the wrapped handler's level")
	}
}

func TestScrub_NoFalsePositives(t *testing.T) {
	for _, s := range []string{"developers.weixin.qq.com", "v1.25.0", "/qr/sessions/{id}", "errcode=-1", "wxcode=40001",
		"status=503 route=/login", "a.b.c"} {
		if got := Scrub(s); got != s {
			t.Errorf("Scrub(%q) = %q", s, got)
		}
	}
}

func BenchmarkHandler(b *testing.B) {
	l := slog.New(New(slog.NewJSONHandler(discard{}, nil)))
	b.ReportAllocs()
	for b.Loop() {
		l.Info("request", "method", "GET", "route", "/login", "path", "/login", "status", 302, "request_id", "AbCdEf0123456789")
	}
}

func BenchmarkHandler_Plain(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(discard{}, nil))
	b.ReportAllocs()
	for b.Loop() {
		l.Info("request", "method", "GET", "route", "/login", "path", "/login", "status", 302, "request_id", "AbCdEf0123456789")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
