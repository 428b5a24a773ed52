package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/web"
)

func TestPages_ErrorPage(t *testing.T) {
	const page = "https://h5.example.com/app/"
	restart := "/login?redirect=https%3A%2F%2Fh5.example.com%2Fapp%2F&scope=snsapi_base"
	tests := []struct {
		name, method, target string
		err                  apiError
		retry, start         string
	}{
		{"ExpiredWithRestart", "GET", "/oauth/callback?state=x", errLoginExpired.withRetry(restart), "", restart},
		{"ExpiredUnknownOrigin", "GET", "/oauth/callback?state=x", errLoginExpired, "", "/"},
		{"BusyRetriesTheLogin", "GET", "/oauth/callback?state=x", errWeChatBusy.withRetry(restart), restart, page},
		{"BusyCallbackWithoutRestart", "GET", "/oauth/callback?code=c&state=x", errWeChatBusy, "", "/"},
		{"BusyRetriesTheGET", "GET", "/qr/login?redirect=x", errUnavailable, "/qr/login?redirect=x", "/"},
		{"BusyPOSTNoRetry", "POST", "/session/refresh", errUnavailable, "", "/"},
		{"RateLimited", "GET", "/login?redirect=x", errTooManyRequests, "/login?redirect=x", "/"},
		{"QRMismatchBackToQR", "GET", "/qr/sessions/a/complete", errQRMismatch.withRetry("/qr/login?redirect=" + "https%3A%2F%2Fh5.example.com%2Fapp%2F"), "", "/qr/login?redirect=https%3A%2F%2Fh5.example.com%2Fapp%2F"},
		{"UnlistedRedirectHome", "GET", "/login?redirect=https://evil.example", errBadRequest, "", "/"},
		{"RetryURLElsewhereIgnoredAsOrigin", "GET", "/x", errWeChatBusy.withRetry("https://evil.example/"), "https://evil.example/", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pg := errorPageFor(httptest.NewRequest(tc.method, tc.target, nil), tc.err)
			if pg.Retry != tc.retry || pg.Start != tc.start {
				t.Errorf("retry %q start %q, want %q %q", pg.Retry, pg.Start, tc.retry, tc.start)
			}
			if pg.StartLabel == "" || pg.StartLabelZh == "" {
				t.Errorf("start action has no label: %+v", pg)
			}
		})
	}
}

// TestPages_RedirectRefused checks that the page of a refused redirect
// names no configuration variable and carries no Go error text, while the
// log line has both the reason and the request id.
func TestPages_RedirectRefused(t *testing.T) {
	tmpl, err := web.Parse()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	p := &pages{tmpl: tmpl, logger: slog.New(slog.NewTextHandler(&logs, nil))}
	for _, raw := range []string{"", "https://evil.example/"} {
		reason := &testErr{"redirect not allowed: https://evil.example is not an allowed origin"}
		r := httptest.NewRequest("GET", "/login?redirect="+raw, nil)
		r = r.WithContext(withTestRequestID(r.Context(), "req-123"))
		w := httptest.NewRecorder()
		p.error(w, r, p.redirectRefused(r.Context(), raw, reason))
		body := w.Body.String()
		for _, bad := range []string{"WXAUTH_", "redirect not allowed", "evil.example", "empty"} {
			if strings.Contains(body, bad) {
				t.Errorf("redirect %q: page shows %q", raw, bad)
			}
		}
		for _, want := range []string{`id="start" href="/"`, "req-123", "请求无效", "Invalid request"} {
			if !strings.Contains(body, want) {
				t.Errorf("redirect %q: page lacks %s", raw, want)
			}
		}
	}
	if l := logs.String(); !strings.Contains(l, "WXAUTH_ALLOWED_REDIRECTS") || !strings.Contains(l, "evil.example") || !strings.Contains(l, "request_id=req-123") {
		t.Errorf("log line lacks the reason or the request id: %s", l)
	}
}

func TestHandleHome(t *testing.T) {
	tmpl, err := web.Parse()
	if err != nil {
		t.Fatal(err)
	}
	h := handleHome(&pages{tmpl: tmpl, logger: slog.New(slog.DiscardHandler)}, "https://login.example.com")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	for _, want := range []string{`href="/.well-known/openid-configuration"`, `href="/healthz"`, "微信登录服务", "WeChat login service", "https://login.example.com"} {
		if !strings.Contains(body, want) {
			t.Errorf("home page lacks %s", want)
		}
	}
}

type testErr struct{ s string }

func (e *testErr) Error() string { return e.s }

// withTestRequestID gives ctx a request id as the middleware would.
func withTestRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, routeInfoKey, &routeInfo{id: id})
}
