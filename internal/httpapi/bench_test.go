package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/internal/wechat"
)

// benchHandler returns the whole service handler of a harness (middleware,
// router and handlers; rate limits off), to be called through
// httptest.NewRecorder without a network.
func benchHandler(b *testing.B) (*harness, http.Handler) {
	b.Helper()
	h := newHarness(b, denyRedirect)
	return h, h.handler
}

// getRequest is a server-side GET target with the header name-value pairs.
func getRequest(target string, headers ...string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// serveOnce runs one request through handler and fails unless the status is
// want. It returns the recorder.
func serveOnce(b *testing.B, handler http.Handler, target string, want int, headers ...string) *httptest.ResponseRecorder {
	b.Helper()
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, getRequest(target, headers...))
	if rec.Code != want {
		b.Fatalf("GET %s: %d, want %d: %s", target, rec.Code, want, rec.Body)
	}
	return rec
}

// runParallel serves target through handler b.N times from GOMAXPROCS
// goroutines; every answer must have status want.
func runParallel(b *testing.B, handler http.Handler, target string, want int, headers ...string) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, getRequest(target, headers...))
			if rec.Code != want {
				b.Errorf("GET %s: %d, want %d", target, rec.Code, want)
				return
			}
		}
	})
}

// BenchmarkHelloRecorder is the ceiling of this harness: a bare handler
// writing "hello" through the same httptest request and recorder, so the
// other benchmarks read as a multiple of it.
func BenchmarkHelloRecorder(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	runParallel(b, hello, "/", http.StatusOK)
}

// BenchmarkHealthz is GET /healthz through the whole handler: the cost of
// the middleware (request id, recovery, metrics, access log, rate limits)
// and the router around a handler that does nothing, the floor under every
// other endpoint.
func BenchmarkHealthz(b *testing.B) {
	_, handler := benchHandler(b)
	serveOnce(b, handler, "/healthz", http.StatusOK)
	runParallel(b, handler, "/healthz", http.StatusOK)
}

// BenchmarkLogin is GET /login: redirect allowlist, a new 22-character
// state, its record in the in-memory store, the state cookie and the
// authorize URL (302).
func BenchmarkLogin(b *testing.B) {
	_, handler := benchHandler(b)
	benchToWeChat(b, handler, "/login?redirect="+url.QueryEscape(testPage)+"&scope="+wechat.ScopeBase)
}

// benchToWeChat checks that GET target inside WeChat redirects to WeChat's
// authorize URL, then runs it in parallel.
func benchToWeChat(b *testing.B, handler http.Handler, target string) {
	b.Helper()
	rec := serveOnce(b, handler, target, http.StatusFound, "User-Agent", wechatAgent)
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "/connect/oauth2/authorize?appid="+testAppID) {
		b.Fatalf("GET %s redirected to %q", target, loc)
	}
	runParallel(b, handler, target, http.StatusFound, "User-Agent", wechatAgent)
}

// BenchmarkVerify is GET /verify with a valid ES256 JWT in the
// Authorization header (nginx auth_request), the same token every time as
// a page's repeated API calls send it.
func BenchmarkVerify(b *testing.B) {
	h, handler := benchHandler(b)
	resp, _ := h.login(newClient(b), wechat.ScopeUserInfo, "oWXEMU_alice", "allow")
	jwt := fragment(b, resp).Get("access_token")
	rec := serveOnce(b, handler, "/verify", http.StatusOK, "Authorization", "Bearer "+jwt)
	if rec.Header().Get("X-Auth-Request-Openid") != "oWXEMU_alice" {
		b.Fatalf("/verify headers %v", rec.Header())
	}
	serveOnce(b, handler, "/verify", http.StatusUnauthorized, "Authorization", "Bearer "+jwt[:len(jwt)-2]+"AA")
	runParallel(b, handler, "/verify", http.StatusOK, "Authorization", "Bearer "+jwt)
}

// BenchmarkJSSDKConfig is GET /jssdk/config with the jsapi_ticket warm:
// allowlist check of the page URL, the ticket from memory, a nonce and the
// SHA-1 signature, JSON by hand.
func BenchmarkJSSDKConfig(b *testing.B) {
	_, handler := benchHandler(b)
	target := "/jssdk/config?url=" + url.QueryEscape(testPage+"?from=menu#top")
	rec := serveOnce(b, handler, target, http.StatusOK) // fetches the access token and the ticket
	if !strings.Contains(rec.Body.String(), `"signature":"`) {
		b.Fatalf("/jssdk/config: %s", rec.Body)
	}
	serveOnce(b, handler, "/jssdk/config?url="+url.QueryEscape("https://evil.example/"), http.StatusBadRequest)
	runParallel(b, handler, target, http.StatusOK)
}

// BenchmarkQR_Status measures GET /qr/sessions/{id}, the polling fallback
// of every waiting page, through the whole handler.
func BenchmarkQR_Status(b *testing.B) {
	h := newHarness(b, denyRedirect, withQR)
	a := newDesktopClient(b).create(h.svc.URL)
	req := httptest.NewRequest("GET", "/qr/sessions/"+a.ID, nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkQR_Create measures POST /qr/sessions against the emulator
// (qrcode/create over loopback HTTP included).
func BenchmarkQR_Create(b *testing.B) {
	h := newHarness(b, denyRedirect, withQR)
	body := `{"redirect":"` + testPage + `"}`
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		req := httptest.NewRequest("POST", "/qr/sessions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = fmt.Sprintf("10.1.%d.%d:1234", n>>8&255, n&255)
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("status %d %s", w.Code, w.Body)
		}
	}
}
