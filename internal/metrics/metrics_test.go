package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
)

func TestNew_RegistersEveryFamily(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.HTTPRequest("/login", "GET", 302, 0.01)
	m.Login("snsapi_base", LoginSuccess)
	m.CallbackMessage("text", "safe", "replied")
	m.StoreError("Records.Get")
	m.QRAttemptStarted()
	m.WeChatCalls.WithLabelValues("sns/userinfo", "0").Inc()
	m.WeChatDuration.WithLabelValues("sns/userinfo").Observe(0.1)
	m.TokenRefreshes.WithLabelValues("access_token", "fetch").Inc()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fams {
		got[f.GetName()] = true
	}
	for _, name := range []string{"wxauth_http_requests_total", "wxauth_http_request_duration_seconds", "wxauth_logins_total",
		"wxauth_wechat_calls_total", "wxauth_wechat_call_duration_seconds", "wxauth_callback_messages_total",
		"wxauth_token_refreshes_total", "wxauth_qr_login_attempts_active", "wxauth_store_errors_total"} {
		if !got[name] {
			t.Errorf("%s not registered", name)
		}
	}
	// Two instances in one process, each with its own registry.
	New(prometheus.NewRegistry())
}

func TestMetrics_NilIsNoop(t *testing.T) {
	var m *Metrics
	m.Login("snsapi_base", LoginSuccess)
	m.HTTPRequest("/", "GET", 200, 0)
	m.CallbackMessage("a", "b", "c")
	m.QRAttemptStarted()
	m.QRAttemptEnded()
	m.StoreError("x")
	h := http.NotFoundHandler()
	if got := m.Callback(h); fmt.Sprint(got) != fmt.Sprint(h) {
		t.Error("nil Metrics wraps the callback handler")
	}
	set := store.Set{Records: memory.New(time.Now)}
	if m.Stores(set).Records != set.Records {
		t.Error("nil Metrics wraps the stores")
	}
}

// wechatServer answers each path with a canned status and body.
func wechatServer(t *testing.T, answers map[string]struct {
	status int
	body   string
}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTransport_RoundTrip(t *testing.T) {
	big := `{"errcode":0,"pad":"` + strings.Repeat("x", maxInspect) + `"}`
	srv := wechatServer(t, map[string]struct {
		status int
		body   string
	}{
		"/sns/oauth2/access_token":  {200, `{"errcode":40029,"errmsg":"invalid code, rid: 1"}`},
		"/sns/userinfo":             {200, `{"openid":"o1","nickname":"n"}`},
		"/cgi-bin/stable_token":     {200, `{"access_token":"AT","expires_in":7200}`},
		"/cgi-bin/ticket/getticket": {200, `{"errcode":0,"errmsg":"ok","ticket":"T","expires_in":7200}`},
		"/cgi-bin/showqrcode":       {200, "\x89PNG\r\n"},
		"/busy":                     {200, `{"errcode":-1,"errmsg":"system error"}`},
		"/gateway":                  {502, "<html>bad gateway</html>"},
		"/big":                      {200, big},
	})
	m := New(nil)
	hc := &http.Client{Transport: &Transport{Metrics: m}}
	call := func(ctx context.Context, method, path, body string) string {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path+"?access_token=SECRET", rd)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s: read: %v", path, err)
		}
		return string(b)
	}
	for path, want := range map[string]string{
		"/sns/oauth2/access_token": "40029", "/sns/userinfo": "0", "/cgi-bin/showqrcode": "0", "/busy": "-1",
		"/gateway": "http_502", "/big": "unread", "/cgi-bin/ticket/getticket": "0",
	} {
		body := call(context.Background(), "GET", path, "")
		if path == "/big" && len(body) != len(big) {
			t.Errorf("/big body came back with %d bytes, want %d", len(body), len(big))
		}
		if path == "/sns/oauth2/access_token" && !strings.Contains(body, "invalid code") {
			t.Errorf("body not restored: %q", body)
		}
		api := strings.TrimPrefix(path, "/")
		if got := value(t, m.WeChatCalls.WithLabelValues(api, want)); got != 1 {
			t.Errorf("%s: wxauth_wechat_calls_total{errcode=%q} = %v, want 1", path, want, got)
		}
	}
	if n := count(m.WeChatCalls); n != 7 {
		t.Errorf("%d series, want 7 (one per call; the query never makes a label)", n)
	}

	// stable_token: the cause comes from force_refresh; the body is intact.
	call(context.Background(), "POST", "/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"wx1","secret":"S","force_refresh":false}`)
	call(context.Background(), "POST", "/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"wx1","secret":"S","force_refresh":true}`)
	for cause, want := range map[string]float64{"fetch": 1, "force_refresh": 1} {
		if got := value(t, m.TokenRefreshes.WithLabelValues("access_token", cause)); got != want {
			t.Errorf("token refreshes cause %s = %v, want %v", cause, got, want)
		}
	}
	if got := value(t, m.TokenRefreshes.WithLabelValues("jsapi_ticket", "fetch")); got != 1 {
		t.Errorf("jsapi_ticket refreshes = %v, want 1", got)
	}

	// The trace keeps the last failing errcode of the calls made with ctx.
	ctx, tr := WithTrace(context.Background())
	call(ctx, "GET", "/busy", "")
	call(ctx, "GET", "/sns/userinfo", "")
	if tr.ErrCode() != "-1" {
		t.Errorf("trace errcode %q, want -1", tr.ErrCode())
	}
	var none *Trace
	if none.ErrCode() != "" {
		t.Error("nil Trace has an errcode")
	}

	// No answer at all: errcode "transport", error unchanged.
	dead := &http.Client{Transport: &Transport{Metrics: m}, Timeout: 5 * time.Second}
	if _, err := dead.Get("http://127.0.0.1:1/sns/userinfo"); err == nil {
		t.Fatal("call to a closed port succeeded")
	}
	if got := value(t, m.WeChatCalls.WithLabelValues("sns/userinfo", "transport")); got != 1 {
		t.Errorf("transport failures = %v, want 1", got)
	}
}

// brokenRecords fails every call with a backend error, except keys named
// "missing", which are not found.
type brokenRecords struct{ store.Records }

var errBackend = errors.New("backend down")

func (brokenRecords) Get(ctx context.Context, key string) ([]byte, error) {
	if key == "missing" {
		return nil, fmt.Errorf("get: %w", store.ErrNotFound)
	}
	return nil, fmt.Errorf("get: %w", errBackend)
}

func (brokenRecords) Put(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return errBackend
}

func TestMetrics_Stores(t *testing.T) {
	m := New(nil)
	mem := memory.New(time.Now)
	t.Cleanup(func() { mem.Close() })
	set := m.Stores(store.Set{Records: brokenRecords{mem}, Users: mem, Locker: mem, Broker: mem, TokenCache: mem})
	ctx := context.Background()
	if _, err := set.Records.Get(ctx, "k"); !errors.Is(err, errBackend) {
		t.Fatalf("error not passed through: %v", err)
	}
	set.Records.Get(ctx, "missing")
	set.Records.Put(ctx, "k", nil, time.Minute)
	set.Users.GetUser(ctx, "u_nobody") // not found: a normal outcome
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	set.Records.Get(cancelled, "k") // the caller gave up: not the store's fault
	for op, want := range map[string]float64{"Records.Get": 1, "Records.Put": 1, "Users.GetUser": 0} {
		if got := value(t, m.StoreErrors.WithLabelValues(op)); got != want {
			t.Errorf("store errors %s = %v, want %v", op, got, want)
		}
	}
	// Records still delegates what the wrapper does not override.
	if ok, err := set.Records.PutIfAbsent(ctx, "x", []byte("v"), time.Minute); err != nil || !ok {
		t.Errorf("PutIfAbsent through the wrapper: %v %v", ok, err)
	}
}

// fakeCallback imitates callback.Server for the adapters: it refuses with
// a logged reason, answers a redelivery without the chain, or runs it.
type fakeCallback struct {
	logger  *slog.Logger
	h       callback.Handler
	entered chan struct{} // closed when the chain starts on "slow"
}

func (f fakeCallback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("case") {
	case "refuse":
		f.logger.LogAttrs(r.Context(), slog.LevelWarn, "callback rejected", slog.Int("status", 403), slog.String("reason", "signature"))
		w.WriteHeader(http.StatusForbidden)
	case "hostile":
		f.logger.LogAttrs(r.Context(), slog.LevelWarn, "callback rejected", slog.String("reason", "bad reason\n{}"))
		w.WriteHeader(http.StatusBadRequest)
	case "duplicate":
		io.WriteString(w, "success")
	case "verify":
		io.WriteString(w, "echo")
	case "slow":
		// The Server's budget ends while the chain still runs.
		go f.h.ServeMessage(context.WithoutCancel(r.Context()), &callback.Message{MsgType: "text", Mode: "safe", Content: "slow"})
		<-f.entered
		io.WriteString(w, "success")
	default:
		m := &callback.Message{MsgType: r.URL.Query().Get("type"), Event: r.URL.Query().Get("event"), Mode: "compat"}
		reply, _ := f.h.ServeMessage(context.WithoutCancel(r.Context()), m)
		if reply == nil {
			io.WriteString(w, "success")
			return
		}
		io.WriteString(w, "<xml/>")
	}
}

func TestMetrics_Callback(t *testing.T) {
	m := New(nil)
	var logs bytes.Buffer
	logger := slog.New(CallbackReasons(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError})))
	entered, unblock := make(chan struct{}), make(chan struct{})
	defer close(unblock)
	chain := m.CallbackHandler(callback.HandlerFunc(func(ctx context.Context, msg *callback.Message) (callback.Reply, error) {
		if msg.Content == "slow" {
			close(entered)
			<-unblock
			return callback.TextReply{Content: "late"}, nil
		}
		if msg.MsgType == "text" {
			return callback.TextReply{Content: "hi"}, nil
		}
		return nil, nil
	}))
	h := m.Callback(fakeCallback{logger: logger, h: chain, entered: entered})
	for _, q := range []string{"case=refuse&encrypt_type=aes", "case=hostile", "case=duplicate", "type=text", "type=event&event=SCAN",
		"type=%3Cscript%3E", "case=slow"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/wx?"+q, strings.NewReader("<xml/>")))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/wx?case=verify", nil))
	for labels, want := range map[[3]string]float64{
		{"unknown", "safe", "refused_signature"}:   1,
		{"unknown", "plain", "refused_status_400"}: 1,
		{"unknown", "plain", "duplicate"}:          1,
		{"text", "compat", "replied"}:              1,
		{"event:scan", "compat", "success"}:        1,
		{"other", "compat", "success"}:             1,
		{"url_verification", "plain", "replied"}:   1,
		{"text", "safe", "success"}:                1,
	} {
		if got := value(t, m.CallbackMessages.WithLabelValues(labels[:]...)); got != want {
			t.Errorf("callback messages %v = %v, want %v", labels, got, want)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("the tap wrote warn lines below the configured level: %s", logs.String())
	}
}

// value reads the current value of a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// count returns how many series c holds.
func count(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

// staticRT answers every request with the same small JSON body.
type staticRT struct{ body string }

func (s staticRT) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(s.body)), ContentLength: int64(len(s.body)), Request: r}, nil
}

// BenchmarkTransport is the cost the RoundTripper adds to one WeChat call
// (buffering and decoding the errcode), without any network.
func BenchmarkTransport(b *testing.B) {
	t := &Transport{Base: staticRT{`{"access_token":"ACCESS","expires_in":7200,"refresh_token":"R","openid":"o","scope":"snsapi_base"}`}, Metrics: New(nil)}
	req, _ := http.NewRequest(http.MethodGet, "https://api.weixin.qq.com/sns/oauth2/access_token?appid=a&secret=s&code=c", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := t.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
