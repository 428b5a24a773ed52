package callback

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/logtest"
	"github.com/wxauth/wxauth/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeRecords is a map-based store.Records with call counters.
type fakeRecords struct {
	mu      sync.Mutex
	m       map[string][]byte
	gets    atomic.Int64
	puts    atomic.Int64
	failPut error // returned by PutIfAbsent when set
}

var _ store.Records = (*fakeRecords)(nil)

func newFakeRecords() *fakeRecords { return &fakeRecords{m: map[string][]byte{}} }

func (f *fakeRecords) PutIfAbsent(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if f.failPut != nil {
		return false, f.failPut
	}
	if ttl < MinDedupTTL {
		panic("ttl below the minimum")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[key]; ok {
		return false, nil
	}
	f.m[key] = append([]byte(nil), val...)
	return true, nil
}

func (f *fakeRecords) Put(_ context.Context, key string, val []byte, _ time.Duration) error {
	f.puts.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[key] = append([]byte(nil), val...)
	return nil
}

func (f *fakeRecords) Get(_ context.Context, key string) ([]byte, error) {
	f.gets.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

func (f *fakeRecords) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := f.Get(ctx, key)
	if err == nil {
		f.Delete(ctx, key)
	}
	return v, err
}

func (f *fakeRecords) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, key)
	return nil
}

// Test account values.
const (
	testToken  = "AAAAA"
	testKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	testPrev   = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	testAppID  = "wxb11529c136998cb6"
	testGhID   = "gh_97417a04a28d"
	testOpenID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
	testNow    = 1714112445
	testNonce  = "415670741"
)

// fixedRand yields the same 16 bytes forever; safe for concurrent use.
type fixedRand struct{}

func (fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "0123456789abcdef"[i%16]
	}
	return len(p), nil
}

type env struct {
	srv     *Server
	records *fakeRecords
	logs    *logtest.Buffer
	cfg     Config
}

// newEnv builds a Server on the test account; mod adjusts the config.
func newEnv(tb testing.TB, h Handler, mod func(*Config)) *env {
	tb.Helper()
	logs := &logtest.Buffer{}
	cfg := Config{
		Token:      testToken,
		AESKey:     testKey,
		AppID:      testAppID,
		OriginalID: testGhID,
		Mode:       "compat",
		MaxSkew:    300 * time.Second,
		Records:    newFakeRecords(),
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        func() time.Time { return time.Unix(testNow, 0) },
		Rand:       fixedRand{},
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := NewServer(cfg, h)
	if err != nil {
		tb.Fatal(err)
	}
	rec, _ := cfg.Records.(*fakeRecords)
	return &env{srv: srv, records: rec, logs: logs, cfg: cfg}
}

// textXML is a user's text message.
func textXML(msgID int64, content string) string {
	return "<xml><ToUserName><![CDATA[" + testGhID + "]]></ToUserName><FromUserName><![CDATA[" + testOpenID +
		"]]></FromUserName><CreateTime>" + strconv.FormatInt(testNow, 10) + "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" +
		content + "]]></Content><MsgId>" + strconv.FormatInt(msgID, 10) + "</MsgId></xml>"
}

// eventXML is an event push.
func eventXML(event, key string) string {
	return "<xml><ToUserName><![CDATA[" + testGhID + "]]></ToUserName><FromUserName><![CDATA[" + testOpenID +
		"]]></FromUserName><CreateTime>" + strconv.FormatInt(testNow, 10) + "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[" +
		event + "]]></Event><EventKey><![CDATA[" + key + "]]></EventKey></xml>"
}

// plainRequest is a signed plaintext POST.
func plainRequest(body string, ts string) *http.Request {
	q := url.Values{"signature": {Sign(testToken, ts, testNonce)}, "timestamp": {ts}, "nonce": {testNonce}, "openid": {testOpenID}}
	return httptest.NewRequest(http.MethodPost, "/wx?"+q.Encode(), strings.NewReader(body))
}

// safeRequest encrypts body with key and signs it; compat adds the plain
// header fields beside Encrypt.
func safeRequest(tb testing.TB, key, body string, ts string, compat bool) *http.Request {
	tb.Helper()
	c := mustCrypter(tb, key, testAppID)
	enc, err := c.Encrypt([]byte("a8eedb185eb2fecf"), []byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	return encryptedRequest(enc, ts, compat)
}

func encryptedRequest(enc, ts string, compat bool) *http.Request {
	env := "<xml><ToUserName><![CDATA[" + testGhID + "]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
	if compat {
		env = "<xml><ToUserName><![CDATA[" + testGhID + "]]></ToUserName><FromUserName><![CDATA[" + testOpenID +
			"]]></FromUserName><MsgType><![CDATA[text]]></MsgType><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
	}
	q := url.Values{
		"signature": {Sign(testToken, ts, testNonce)}, "timestamp": {ts}, "nonce": {testNonce}, "openid": {testOpenID},
		"encrypt_type": {"aes"}, "msg_signature": {Sign(testToken, ts, testNonce, enc)},
	}
	return httptest.NewRequest(http.MethodPost, "/wx?"+q.Encode(), strings.NewReader(env))
}

// serve runs one request.
func (e *env) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// envelope is an encrypted reply.
type envelope struct {
	Encrypt      string `xml:"Encrypt"`
	MsgSignature string `xml:"MsgSignature"`
	TimeStamp    string `xml:"TimeStamp"`
	Nonce        string `xml:"Nonce"`
}

// openReply checks the envelope's signature and returns the plaintext reply.
func openReply(tb testing.TB, key string, body []byte) string {
	tb.Helper()
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		tb.Fatalf("reply is not an envelope: %v\n%s", err, body)
	}
	if env.Encrypt == "" {
		tb.Fatalf("reply has no Encrypt: %s", body)
	}
	if want := Sign(testToken, env.TimeStamp, env.Nonce, env.Encrypt); env.MsgSignature != want {
		tb.Fatalf("MsgSignature = %s, want %s", env.MsgSignature, want)
	}
	msg, appID, err := mustCrypter(tb, key, testAppID).Decrypt(env.Encrypt)
	if err != nil || appID != testAppID {
		tb.Fatalf("decrypt reply: %v (appid %q)", err, appID)
	}
	return string(msg)
}

// replyXML is a plaintext reply as WeChat parses it.
type replyXML struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	CreateTime   int64  `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	Content      string `xml:"Content"`
	ArticleCount int    `xml:"ArticleCount"`
	Articles     []struct {
		Title string `xml:"Title"`
	} `xml:"Articles>item"`
	Music struct {
		Title    string `xml:"Title"`
		MusicURL string `xml:"MusicUrl"`
	} `xml:"Music"`
}

func parseReply(tb testing.TB, s string) replyXML {
	tb.Helper()
	var r replyXML
	if err := xml.Unmarshal([]byte(s), &r); err != nil {
		tb.Fatalf("reply is not XML: %v\n%s", err, s)
	}
	return r
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs:\ngot:  %s\nwant: %s", name, got, want)
	}
}

// static answers every message with r.
func static(r Reply) Handler {
	return HandlerFunc(func(context.Context, *Message) (Reply, error) { return r, nil })
}

func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
