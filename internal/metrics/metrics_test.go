package metrics

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/internal/login"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/store/memory"
	"github.com/wxauth/wxauth/internal/wechat"
)

func TestNew_RegistersEveryFamily(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.HTTPRequest("/login", "GET", 302, 0.01)
	m.Login().LoginEnded("snsapi_base", login.OutcomeSuccess)
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
	if m.Login() != nil {
		t.Error("a nil Metrics gave a login observer")
	}
	m.HTTPRequest("/", "GET", 200, 0)
	m.CallbackMessage("a", "b", "c")
	m.QRAttemptStarted()
	m.QRAttemptEnded()
	m.StoreError("x")
	if m.WeChat() != nil || m.Callback() != nil {
		t.Error("nil Metrics returns a non-nil observer")
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

// TestMetrics_WeChat runs a real wechat client against canned answers and
// reads the labels its observer produced.
func TestMetrics_WeChat(t *testing.T) {
	srv := wechatServer(t, map[string]struct {
		status int
		body   string
	}{
		"/sns/oauth2/access_token": {200, `{"errcode":40029,"errmsg":"invalid code, rid: 1"}`},
		"/sns/userinfo":            {200, `{"openid":"o1","nickname":"n"}`},
		"/cgi-bin/stable_token":    {200, `{"access_token":"AT","expires_in":7200}`},
		"/cgi-bin/showqrcode":      {200, "\x89PNG\r\n"},
		"/cgi-bin/token":           {502, "<html>bad gateway</html>"},
	})
	m := New(nil)
	newClient := func(base string) *wechat.Client {
		c, err := wechat.NewClient(wechat.Config{AppID: "wx1234567890abcdef", AppSecret: "S",
			Endpoint: wechat.EmulatorEndpoint(base), HTTPClient: &http.Client{Timeout: 5 * time.Second}, Observer: m.WeChat()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := newClient(srv.URL)
	tr := &Trace{}
	ctx := ContextWithTrace(context.Background(), tr)
	c.Exchange(ctx, "CODE")
	c.UserInfo(ctx, "AT", "o1", "")
	wechat.NewAPI(c, nil).ShowQRCode(ctx, "T")
	c.StableToken(ctx, true) // a direct call: not a TokenManager refresh
	if tr.ErrCode() != "40029" {
		t.Errorf("trace errcode %q, want 40029 (the last failure)", tr.ErrCode())
	}
	for api, code := range map[string]string{
		"sns/oauth2/access_token": "40029", "sns/userinfo": "0", "cgi-bin/showqrcode": "0", "cgi-bin/stable_token": "0",
	} {
		if got := value(t, m.WeChatCalls.WithLabelValues(api, code)); got != 1 {
			t.Errorf("%s: wxauth_wechat_calls_total{errcode=%q} = %v, want 1", api, code, got)
		}
	}
	if n := count(m.WeChatCalls); n != 4 {
		t.Errorf("%d series, want 4 (one per call; the query never makes a label)", n)
	}
	if n := count(m.TokenRefreshes); n != 0 {
		t.Errorf("%d refresh series, want 0: only a TokenManager reports refreshes", n)
	}

	// A 5xx (retried: every attempt counts) and no answer at all.
	tr = &Trace{}
	ctx = ContextWithTrace(context.Background(), tr)
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c.ClassicToken(tctx)
	if got := value(t, m.WeChatCalls.WithLabelValues("cgi-bin/token", "http_502")); got < 1 {
		t.Errorf("http_502 calls = %v, want >= 1", got)
	}
	newClient("http://127.0.0.1:1").UserInfo(tctx, "AT", "o1", "")
	if got := value(t, m.WeChatCalls.WithLabelValues("sns/userinfo", "transport")); got < 1 {
		t.Errorf("transport failures = %v, want >= 1", got)
	}
	if tr.ErrCode() != "transport" {
		t.Errorf("trace errcode %q, want transport", tr.ErrCode())
	}
	var none *Trace
	if none.ErrCode() != "" {
		t.Error("nil Trace has an errcode")
	}

	// Refreshes, by cause.
	o := m.WeChat()
	o.CredentialRefreshed(ctx, "access_token", false)
	o.CredentialRefreshed(ctx, "access_token", true)
	o.CredentialRefreshed(ctx, "jsapi_ticket", false)
	for labels, want := range map[[2]string]float64{
		{"access_token", "fetch"}: 1, {"access_token", "force_refresh"}: 1, {"jsapi_ticket", "fetch"}: 1,
	} {
		if got := value(t, m.TokenRefreshes.WithLabelValues(labels[:]...)); got != want {
			t.Errorf("token refreshes %v = %v, want %v", labels, got, want)
		}
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

// TestMetrics_Callback runs a real callback.Server (plaintext mode) and
// reads the labels its observer produced.
func TestMetrics_Callback(t *testing.T) {
	m := New(nil)
	mem := memory.New(time.Now)
	t.Cleanup(func() { mem.Close() })
	srv, err := callback.NewServer(callback.Config{Token: "tok", Records: mem, Mode: "plain", Observer: m.Callback()},
		callback.HandlerFunc(func(ctx context.Context, msg *callback.Message) (callback.Reply, error) {
			if msg.MsgType == "text" {
				return callback.TextReply{Content: "hi"}, nil
			}
			return nil, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(parts ...string) string {
		slices.Sort(parts)
		sum := sha1.Sum([]byte(strings.Join(parts, "")))
		return hex.EncodeToString(sum[:])
	}
	query := "signature=" + sign("tok", "1", "n") + "&timestamp=1&nonce=n"
	post := func(q, body string) {
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/wx?"+q, strings.NewReader(body)))
	}
	msg := func(typ, extra string, id int) string {
		return fmt.Sprintf(`<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>`+
			`<MsgType>%s</MsgType>%s<MsgId>%d</MsgId></xml>`, typ, extra, id)
	}
	post(query, msg("text", "<Content>a</Content>", 1))
	post(query, msg("text", "<Content>a</Content>", 1)) // redelivery
	post(query, msg("event", "<Event>SCAN</Event>", 0))
	post(query, msg("Not-A-Label", "", 2))
	post("signature=bad&timestamp=1&nonce=n&encrypt_type=aes", "<xml/>")
	post("signature=bad&timestamp=1&nonce=n", "<xml/>")
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/wx?"+query+"&echostr=e", nil))
	if n := count(m.CallbackMessages); n != 7 {
		t.Errorf("%d series, want 7", n)
	}
	for labels, want := range map[[3]string]float64{
		{"text", "plain", "replied"}:                             1,
		{"text", "plain", "duplicate"}:                           1,
		{"event:scan", "plain", "success"}:                       1,
		{"other", "plain", "success"}:                            1,
		{"unknown", "safe", "refused_encrypted_without_aes_key"}: 1,
		{"unknown", "plain", "refused_signature"}:                1,
		{"url_verification", "plain", "replied"}:                 1,
	} {
		if got := value(t, m.CallbackMessages.WithLabelValues(labels[:]...)); got != want {
			t.Errorf("callback messages %v = %v, want %v", labels, got, want)
		}
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

// TestRegisterRecordEvictions: the counter reads the store's evictions at
// each scrape.
func TestRegisterRecordEvictions(t *testing.T) {
	reg := prometheus.NewRegistry()
	var n uint64 = 7
	RegisterRecordEvictions(reg, func() uint64 { return n })
	RegisterRecordEvictions(reg, nil) // nothing to register
	for _, want := range []float64{7, 9} {
		n = uint64(want)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) != 1 || mfs[0].GetName() != "wxauth_records_evicted_total" || mfs[0].Metric[0].GetCounter().GetValue() != want {
			t.Fatalf("gathered %v, want wxauth_records_evicted_total %v", mfs, want)
		}
	}
}
