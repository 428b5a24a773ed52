package callback

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// benchRequests are distinct deliveries (distinct MsgIds), so that every
// iteration is handled rather than answered from the de-duplication record.
type benchRequests struct {
	urls   []*url.URL
	bodies [][]byte
}

const benchDistinct = 4096

func newBenchRequests(tb testing.TB, safe bool) *benchRequests {
	tb.Helper()
	ts := strconv.FormatInt(testNow, 10)
	c := mustCrypter(tb, testKey, testAppID)
	br := &benchRequests{}
	for i := 0; i < benchDistinct; i++ {
		body := textXML(int64(1e15+i), "hi")
		q := url.Values{"signature": {Sign(testToken, ts, testNonce)}, "timestamp": {ts}, "nonce": {testNonce}, "openid": {testOpenID}}
		if safe {
			enc, err := c.Encrypt([]byte("a8eedb185eb2fecf"), []byte(body))
			if err != nil {
				tb.Fatal(err)
			}
			body = "<xml><ToUserName><![CDATA[" + testGhID + "]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
			q.Set("encrypt_type", "aes")
			q.Set("msg_signature", Sign(testToken, ts, testNonce, enc))
		}
		u, _ := url.Parse("/wx?" + q.Encode())
		br.urls = append(br.urls, u)
		br.bodies = append(br.bodies, []byte(body))
	}
	return br
}

func benchServer(b *testing.B, safe, inline bool) {
	rules, err := ParseRules(SampleRules)
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, rules, func(c *Config) {
		c.Logger = nil
		c.Inline = inline
		if safe {
			c.Mode = "safe"
		}
	})
	br := newBenchRequests(b, safe)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % benchDistinct
		if j == 0 && i > 0 {
			b.StopTimer()
			e.records.m = map[string][]byte{}
			b.StartTimer()
		}
		r := &http.Request{Method: http.MethodPost, URL: br.urls[j], Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(br.bodies[j])), ContentLength: int64(len(br.bodies[j]))}
		w.Body.Reset()
		e.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.Len() < 100 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkServer_SafeText is one safe-mode text round trip: verify,
// decrypt, scan, route through the sample Rules, de-duplicate against a map,
// encode, encrypt and sign the reply; the handler chain inline (as authsvc
// runs it without a forwarder) or on its own goroutine.
func BenchmarkServer_SafeText(b *testing.B) {
	b.Run("Inline", func(b *testing.B) { benchServer(b, true, true) })
	b.Run("Goroutine", func(b *testing.B) { benchServer(b, true, false) })
}

// BenchmarkServer_PlainText is the same round trip in plaintext mode.
func BenchmarkServer_PlainText(b *testing.B) {
	b.Run("Inline", func(b *testing.B) { benchServer(b, false, true) })
	b.Run("Goroutine", func(b *testing.B) { benchServer(b, false, false) })
}

// BenchmarkHello is a bare net/http handler through the same request
// construction and recorder: the reference for the Server's overhead.
func BenchmarkHello(b *testing.B) {
	br := newBenchRequests(b, false)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		j := i % benchDistinct
		r := &http.Request{Method: http.MethodPost, URL: br.urls[j], Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(br.bodies[j])), ContentLength: int64(len(br.bodies[j]))}
		w.Body.Reset()
		h.ServeHTTP(w, r)
	}
}

// benchLoopback posts the requests to h over loopback HTTP/1.1 keep-alive.
func benchLoopback(b *testing.B, h http.Handler, br *benchRequests, reset func()) {
	ts := httptest.NewServer(h)
	defer ts.Close()
	client := ts.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % benchDistinct
		if j == 0 && i > 0 && reset != nil {
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		postOK(b, client, ts.URL+br.urls[j].String(), br.bodies[j])
	}
}

// BenchmarkLoopback_SafeText is BenchmarkServer_SafeText over loopback HTTP.
func BenchmarkLoopback_SafeText(b *testing.B) {
	rules, _ := ParseRules(SampleRules)
	e := newEnv(b, rules, func(c *Config) { c.Logger, c.Mode = nil, "safe" })
	benchLoopback(b, e.srv, newBenchRequests(b, true), func() { e.records.m = map[string][]byte{} })
}

// BenchmarkLoopback_Hello is a bare hello handler over loopback HTTP.
func BenchmarkLoopback_Hello(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello")
	})
	benchLoopback(b, h, newBenchRequests(b, false), nil)
}

func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var buf [40]byte
		appendSign(buf[:0], testToken, "1714112445", testNonce, vecSafeEncrypt)
	}
}

func BenchmarkCrypter_Decrypt(b *testing.B) {
	c := mustCrypter(b, vecSafeKey, vecSafeAppID)
	b.ReportAllocs()
	b.SetBytes(int64(len(vecSafeEncrypt)))
	for i := 0; i < b.N; i++ {
		if _, _, err := c.Decrypt(vecSafeEncrypt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHeader(b *testing.B) {
	body := []byte(textXML(1234567890, "hello there"))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		var h header
		if err := parseHeader(body, &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendReply(b *testing.B) {
	r := TextReply{Content: "Hello! 你好！This account is served by wxauth."}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendReply(buf[:0], r, testOpenID, testGhID, testNow)
	}
}

func BenchmarkAppendReply_News(b *testing.B) {
	r := NewsReply{Articles: []Article{{Title: "wxauth", Description: "log in from WeChat", PicURL: "https://example.com/p.png", URL: "https://example.com/"}}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendReply(buf[:0], r, testOpenID, testGhID, testNow)
	}
}

// BenchmarkLoopback_Ratio alternates a bare hello request and a safe-mode
// text round trip over loopback HTTP, so both see the same machine load, and
// reports each one's time and the safe mode's throughput as a fraction of
// hello's (throughput-ratio; issue 9 targets >= 0.55).
func BenchmarkLoopback_Ratio(b *testing.B) {
	rules, _ := ParseRules(SampleRules)
	e := newEnv(b, rules, func(c *Config) { c.Logger, c.Mode = nil, "safe" })
	hello := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello")
	}))
	defer hello.Close()
	safe := httptest.NewServer(e.srv)
	defer safe.Close()
	safeReqs, plainReqs := newBenchRequests(b, true), newBenchRequests(b, false)
	post := func(client *http.Client, base string, br *benchRequests, j int) time.Duration {
		start := time.Now()
		postOK(b, client, base+br.urls[j].String(), br.bodies[j])
		return time.Since(start)
	}
	var tHello, tSafe time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % benchDistinct
		if j == 0 && i > 0 {
			e.records.m = map[string][]byte{}
		}
		tHello += post(hello.Client(), hello.URL, plainReqs, j)
		tSafe += post(safe.Client(), safe.URL, safeReqs, j)
	}
	b.ReportMetric(float64(tHello.Nanoseconds())/float64(b.N), "hello-ns/req")
	b.ReportMetric(float64(tSafe.Nanoseconds())/float64(b.N), "safe-ns/req")
	b.ReportMetric(float64(tHello)/float64(tSafe), "throughput-ratio")
}

// postOK posts the XML body to u and reads the answer, failing unless it is
// 200.
func postOK(b *testing.B, client *http.Client, u string, body []byte) {
	resp, err := client.Post(u, "text/xml", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}
