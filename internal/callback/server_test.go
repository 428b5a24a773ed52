package callback

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/internal/logtest"
	"github.com/wxauth/wxauth/internal/store/memory"
)

func TestServer_ServeHTTP_Verify(t *testing.T) {
	e := newEnv(t, static(nil), func(c *Config) {
		c.Mode = "safe"
		c.Now = func() time.Time { return time.Unix(1714036504, 0) }
	})
	get := func(q string) *httptest.ResponseRecorder {
		return e.serve(httptest.NewRequest(http.MethodGet, "/wx?"+q, nil))
	}
	t.Run("official/GETVerification", func(t *testing.T) {
		w := get("signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492")
		if w.Code != http.StatusOK || w.Body.String() != "4375120948345356249" {
			t.Fatalf("got %d %q", w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type = %q", ct)
		}
	})
	t.Run("EchostrVerbatim", func(t *testing.T) {
		q := url.Values{"signature": {Sign(testToken, "1714036504", "n")}, "timestamp": {"1714036504"}, "nonce": {"n"},
			"echostr": {"<script>a+b&c</script>"}}
		w := get(q.Encode())
		if w.Code != http.StatusOK || w.Body.String() != "<script>a+b&c</script>" {
			t.Fatalf("got %d %q", w.Code, w.Body)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Error("no nosniff")
		}
	})
	for name, q := range map[string]string{
		"WrongSignature":   "signature=f464b24fc39322e44b38aa78f5edd27bd1441697&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492",
		"NoSignature":      "echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492",
		"OtherNonce":       "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711493",
		"UpperCaseHex":     "signature=F464B24FC39322E44B38AA78F5EDD27BD1441696&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492",
		"StaleTimestamp":   "signature=" + Sign(testToken, "1714030000", "1") + "&echostr=4375120948345356249&timestamp=1714030000&nonce=1",
		"BadPercentEscape": "signature=%zz&echostr=1&timestamp=1714036504&nonce=1",
	} {
		t.Run(name, func(t *testing.T) {
			w := get(q)
			if w.Code != http.StatusForbidden && w.Code != http.StatusBadRequest {
				t.Fatalf("status %d", w.Code)
			}
			if strings.Contains(w.Body.String(), "4375120948345356249") {
				t.Error("echostr echoed")
			}
		})
	}
}

func TestServer_ServeHTTP_Plain(t *testing.T) {
	t.Run("official/PlainPOST", func(t *testing.T) {
		e := newEnv(t, static(TextReply{Content: "pong"}), func(c *Config) {
			c.Now = func() time.Time { return time.Unix(1714037059, 0) }
		})
		q := "signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452656&openid=" + testOpenID
		w := e.serve(httptest.NewRequest(http.MethodPost, "/wx?"+q, strings.NewReader(textXML(1, "ping"))))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		r := parseReply(t, w.Body.String())
		if r.MsgType != "text" || r.Content != "pong" || r.ToUserName != testOpenID || r.FromUserName != testGhID || r.CreateTime != 1714037059 {
			t.Errorf("reply %+v", r)
		}
	})
	t.Run("NilReplyIsSuccess", func(t *testing.T) {
		e := newEnv(t, static(nil), nil)
		w := e.serve(plainRequest(textXML(1, "x"), strconv.FormatInt(testNow, 10)))
		if w.Code != http.StatusOK || w.Body.String() != "success" {
			t.Fatalf("got %d %q", w.Code, w.Body)
		}
	})
	t.Run("UnknownTypeIsSuccess", func(t *testing.T) {
		e := newEnv(t, NewMux(), nil)
		body := "<xml><ToUserName>" + testGhID + "</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime><MsgType>hologram</MsgType><MsgId>9</MsgId><Depth><A><B>x</B></A></Depth></xml>"
		w := e.serve(plainRequest(body, strconv.FormatInt(testNow, 10)))
		if w.Code != http.StatusOK || w.Body.String() != "success" {
			t.Fatalf("got %d %q", w.Code, w.Body)
		}
	})
	t.Run("HandlerErrorIsSuccess", func(t *testing.T) {
		e := newEnv(t, HandlerFunc(func(context.Context, *Message) (Reply, error) {
			return TextReply{Content: "ignored"}, errors.New("database down")
		}), nil)
		w := e.serve(plainRequest(textXML(1, "x"), strconv.FormatInt(testNow, 10)))
		if w.Body.String() != "success" {
			t.Fatalf("got %q", w.Body)
		}
	})
	t.Run("HandlerPanicIsSuccess", func(t *testing.T) {
		e := newEnv(t, HandlerFunc(func(context.Context, *Message) (Reply, error) { panic("boom") }), nil)
		w := e.serve(plainRequest(textXML(1, "x"), strconv.FormatInt(testNow, 10)))
		if w.Code != http.StatusOK || w.Body.String() != "success" {
			t.Fatalf("got %d %q", w.Code, w.Body)
		}
	})
	t.Run("MessageFields", func(t *testing.T) {
		var got *Message
		e := newEnv(t, HandlerFunc(func(_ context.Context, m *Message) (Reply, error) { got = m; return nil, nil }), nil)
		e.serve(plainRequest(textXML(1234567890123456789, "hi &amp; <b>"), strconv.FormatInt(testNow, 10)))
		if got == nil || got.MsgID != 1234567890123456789 || got.MsgType != "text" || got.FromUserName != testOpenID ||
			got.Content != "hi &amp; <b>" || got.Encrypted || got.Mode != "plain" || got.CreateTime != testNow {
			t.Fatalf("message %+v", got)
		}
		var txt Text
		if err := got.Decode(&txt); err != nil || txt.Content != "hi &amp; <b>" {
			t.Errorf("Decode = %+v, %v", txt, err)
		}
	})
}

func TestServer_ServeHTTP_Safe(t *testing.T) {
	ts := strconv.FormatInt(testNow, 10)
	t.Run("TextRoundTrip", func(t *testing.T) {
		var got *Message
		e := newEnv(t, HandlerFunc(func(_ context.Context, m *Message) (Reply, error) {
			got = m
			return TextReply{Content: "你好 ]]> back"}, nil
		}), func(c *Config) { c.Mode = "safe" })
		w := e.serve(safeRequest(t, testKey, textXML(7, "你好"), ts, false))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, e.logs)
		}
		if !got.Encrypted || got.Mode != "safe" || got.Content != "你好" {
			t.Errorf("message %+v", got)
		}
		r := parseReply(t, openReply(t, testKey, w.Body.Bytes()))
		if r.Content != "你好 ]]> back" || r.ToUserName != testOpenID {
			t.Errorf("reply %+v", r)
		}
	})
	t.Run("PlainRefused", func(t *testing.T) {
		e := newEnv(t, static(TextReply{Content: "x"}), func(c *Config) { c.Mode = "safe" })
		w := e.serve(plainRequest(textXML(1, "x"), ts))
		if w.Code != http.StatusForbidden {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("SuccessNeverEncrypted", func(t *testing.T) {
		e := newEnv(t, static(nil), func(c *Config) { c.Mode = "safe" })
		w := e.serve(safeRequest(t, testKey, textXML(1, "x"), ts, false))
		if w.Body.String() != "success" {
			t.Fatalf("got %q", w.Body)
		}
	})
	t.Run("PreviousKeyDecrypts", func(t *testing.T) {
		e := newEnv(t, static(TextReply{Content: "old key"}), func(c *Config) { c.PreviousAESKey = testPrev; c.Mode = "safe" })
		w := e.serve(safeRequest(t, testPrev, textXML(1, "x"), ts, false))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		if r := parseReply(t, openReply(t, testPrev, w.Body.Bytes())); r.Content != "old key" {
			t.Errorf("reply %+v", r)
		}
		w = e.serve(safeRequest(t, testKey, textXML(2, "x"), ts, false))
		if r := parseReply(t, openReply(t, testKey, w.Body.Bytes())); r.Content != "old key" {
			t.Errorf("current key: reply %+v", r)
		}
	})
	t.Run("official/SafeVectorJSONBodyIsNotXML", func(t *testing.T) {
		e := newEnv(t, static(nil), func(c *Config) {
			c.AESKey, c.AppID, c.OriginalID = vecSafeKey, vecSafeAppID, ""
			c.Now = func() time.Time { return time.Unix(1714112445, 0) }
		})
		q := "signature=6c5c811b55cc85e0e1b54100749188c20beb3f5d&timestamp=1714112445&nonce=415670741&openid=o9AgO5Kd5ggOC-bXrbNODIiE3bGY&encrypt_type=aes&msg_signature=046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
		body := "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><Encrypt><![CDATA[" + vecSafeEncrypt + "]]></Encrypt></xml>"
		w := e.serve(httptest.NewRequest(http.MethodPost, "/wx?"+q, strings.NewReader(body)))
		// Signatures and decryption pass; the plaintext is WeChat's JSON
		// format, which this XML endpoint refuses as -40002.
		if w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
		assertOneReject(t, e.logs, "xml", -40002)
	})
}

func TestServer_ServeHTTP_Compat(t *testing.T) {
	ts := strconv.FormatInt(testNow, 10)
	e := newEnv(t, static(TextReply{Content: "both"}), nil)
	t.Run("EncryptedAnsweredEncrypted", func(t *testing.T) {
		var mode string
		e := newEnv(t, HandlerFunc(func(_ context.Context, m *Message) (Reply, error) {
			mode = m.Mode
			return TextReply{Content: "both"}, nil
		}), nil)
		w := e.serve(safeRequest(t, testKey, textXML(1, "x"), ts, true))
		if r := parseReply(t, openReply(t, testKey, w.Body.Bytes())); r.Content != "both" {
			t.Errorf("reply %+v", r)
		}
		if mode != "compat" {
			t.Errorf("Mode = %q", mode)
		}
	})
	t.Run("PlainAnsweredPlain", func(t *testing.T) {
		w := e.serve(plainRequest(textXML(2, "x"), ts))
		if r := parseReply(t, w.Body.String()); r.Content != "both" {
			t.Errorf("reply %+v", r)
		}
	})
	t.Run("PlainModeWithoutKey", func(t *testing.T) {
		e := newEnv(t, static(nil), func(c *Config) { c.AESKey, c.Mode = "", "plain" })
		w := e.serve(safeRequest(t, testKey, textXML(1, "x"), ts, false))
		if w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestServer_ServeHTTP_BadInput(t *testing.T) {
	ts := strconv.FormatInt(testNow, 10)
	c := mustCrypter(t, testKey, testAppID)
	other := mustCrypter(t, testKey, "wx0000000000000000")
	good, _ := c.Encrypt([]byte("0123456789abcdef"), []byte(textXML(1, "x")))
	raw, _ := base64.StdEncoding.DecodeString(good)
	wrongAppID, _ := other.Encrypt([]byte("0123456789abcdef"), []byte(textXML(1, "x")))
	badPad := encryptPadBytes(t, c, append(append([]byte("0123456789abcdef"), 0, 0, 0, 4), []byte("<x/>wxb11529c136998cb6")...), []byte{6, 6, 6, 6, 6, 5})
	wrongTo := strings.Replace(textXML(1, "x"), testGhID, "gh_someoneelse", 1)
	wrongToEnc, _ := c.Encrypt([]byte("0123456789abcdef"), []byte(wrongTo))
	notXMLEnc, _ := c.Encrypt([]byte("0123456789abcdef"), []byte("not xml"))

	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
		code   int
	}{
		{"TooLarge", func() *http.Request {
			return plainRequest("<xml>"+strings.Repeat("a", MaxBodyBytes)+"</xml>", ts)
		}, 413, "body_too_large", 0},
		{"TooLargeNoLength", func() *http.Request {
			r := plainRequest("", ts)
			r.Body = http.NoBody
			r.Body = readCloser{strings.NewReader(strings.Repeat("a", MaxBodyBytes+10))}
			r.ContentLength = -1
			return r
		}, 413, "body_too_large", 0},
		{"EmptyBody", func() *http.Request { return plainRequest("", ts) }, 400, "empty_body", -40002},
		{"MalformedXML", func() *http.Request { return plainRequest("<xml><MsgType>text</MsgTyp></xml>", ts) }, 400, "xml", -40002},
		{"TruncatedXML", func() *http.Request { return plainRequest(textXML(1, "x")[:40], ts) }, 400, "xml", -40002},
		{"NotXML", func() *http.Request { return plainRequest(`{"MsgType":"text"}`, ts) }, 400, "xml", -40002},
		{"Doctype", func() *http.Request {
			return plainRequest(`<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Content>&x;</Content></xml>`, ts)
		}, 400, "xml", -40002},
		{"BillionLaughs", func() *http.Request {
			return plainRequest(`<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml><Content>&lol2;</Content></xml>`, ts)
		}, 400, "xml", -40002},
		{"UnknownEntity", func() *http.Request { return plainRequest(`<xml><Content>&nbsp;</Content></xml>`, ts) }, 400, "xml", -40002},
		{"InvalidUTF8", func() *http.Request { return plainRequest("<xml><Content>\xff</Content></xml>", ts) }, 400, "xml", -40002},
		{"ControlChar", func() *http.Request { return plainRequest("<xml><Content>\x01</Content></xml>", ts) }, 400, "xml", -40002},
		{"NonNumericMsgId", func() *http.Request { return plainRequest("<xml><MsgId>12a</MsgId></xml>", ts) }, 400, "xml", -40002},
		{"WrongSignature", func() *http.Request {
			r := plainRequest(textXML(1, "x"), ts)
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "signature=", "signature=0", 1)
			return r
		}, 403, "signature", -40001},
		{"WrongMsgSignature", func() *http.Request {
			r := encryptedRequest(good, ts, false)
			q := r.URL.Query()
			q.Set("msg_signature", Sign(testToken, ts, testNonce))
			r.URL.RawQuery = q.Encode()
			return r
		}, 403, "signature", -40001},
		{"MsgSignatureOfOtherEncrypt", func() *http.Request {
			r := encryptedRequest(good, ts, false)
			q := r.URL.Query()
			q.Set("msg_signature", Sign(testToken, ts, testNonce, wrongAppID))
			r.URL.RawQuery = q.Encode()
			return r
		}, 403, "signature", -40001},
		{"NoEncrypt", func() *http.Request {
			r := encryptedRequest(good, ts, false)
			r.Body = readCloser{strings.NewReader("<xml><ToUserName>" + testGhID + "</ToUserName></xml>")}
			r.ContentLength = -1
			return r
		}, 400, "xml", -40002},
		{"BadBase64", func() *http.Request { return encryptedRequest("!!notbase64!!", ts, false) }, 400, "base64", -40010},
		{"NotWholeBlocks", func() *http.Request {
			return encryptedRequest(base64.StdEncoding.EncodeToString(raw[:len(raw)-3]), ts, false)
		}, 400, "decrypt", -40007},
		{"WrongPadding", func() *http.Request { return encryptedRequest(badPad, ts, false) }, 400, "decrypt", -40007},
		{"WrongAppID", func() *http.Request { return encryptedRequest(wrongAppID, ts, false) }, 400, "appid", -40005},
		{"EncryptedNotXML", func() *http.Request { return encryptedRequest(notXMLEnc, ts, false) }, 400, "xml", -40002},
		{"WrongToUserNamePlain", func() *http.Request { return plainRequest(wrongTo, ts) }, 403, "to_user_name", 0},
		{"WrongToUserNameEncrypted", func() *http.Request { return encryptedRequest(wrongToEnc, ts, false) }, 403, "to_user_name", 0},
		{"ReplayStale", func() *http.Request { return plainRequest(textXML(1, "x"), strconv.FormatInt(testNow-301, 10)) }, 403, "timestamp", 0},
		{"ReplayEncryptedStale", func() *http.Request { return encryptedRequest(good, strconv.FormatInt(testNow-3600, 10), false) }, 403, "timestamp", 0},
		{"FutureTimestamp", func() *http.Request { return plainRequest(textXML(1, "x"), strconv.FormatInt(testNow+301, 10)) }, 403, "timestamp", 0},
		{"NonNumericTimestamp", func() *http.Request { return plainRequest(textXML(1, "x"), "yesterday") }, 403, "timestamp", 0},
		{"MissingTimestamp", func() *http.Request { return plainRequest(textXML(1, "x"), "") }, 403, "timestamp", 0},
		{"MethodPut", func() *http.Request { return httptest.NewRequest(http.MethodPut, "/wx", nil) }, 405, "method_not_allowed", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			e := newEnv(t, HandlerFunc(func(context.Context, *Message) (Reply, error) {
				called = true
				return nil, nil
			}), nil)
			w := e.serve(tt.req())
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; log: %s", w.Code, tt.status, e.logs)
			}
			if w.Body.Len() != 0 {
				t.Errorf("body %q on rejection", w.Body)
			}
			if called {
				t.Error("handler called")
			}
			assertOneReject(t, e.logs, tt.reason, tt.code)
			if strings.Contains(e.logs.String(), testOpenID) || strings.Contains(e.logs.String(), testKey) {
				t.Error("log line carries an openid or the key")
			}
		})
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// assertOneReject checks that the log holds exactly one rejection line
// naming reason and code.
func assertOneReject(tb testing.TB, logs *logtest.Buffer, reason string, code int) {
	tb.Helper()
	lines := logs.JSONLines(tb)
	if len(lines) != 1 {
		tb.Fatalf("%d log lines, want 1: %s", len(lines), logs)
	}
	l := lines[0]
	if l["msg"] != "callback rejected" || l["reason"] != reason {
		tb.Errorf("log line %v, want reason %q", l, reason)
	}
	got, _ := l["wxcode"].(float64)
	if int(got) != code {
		tb.Errorf("wxcode %v, want %d", l["wxcode"], code)
	}
}

func TestServer_ServeHTTP_News(t *testing.T) {
	articles := func(n int) []Article {
		a := make([]Article, n)
		for i := range a {
			a[i] = Article{Title: "t" + strconv.FormatInt(int64(i), 10), URL: "https://example.com/" + strconv.FormatInt(int64(i), 10)}
		}
		return a
	}
	tests := []struct {
		name string
		body string
		n    int
		want int
	}{
		{"AfterTextOne", textXML(1, "x"), 3, 1},
		{"AfterEventEight", eventXML("CLICK", "k"), 10, 8},
		{"EventUnderLimit", eventXML("CLICK", "k"), 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, static(NewsReply{Articles: articles(tt.n)}), nil)
			w := e.serve(plainRequest(tt.body, strconv.FormatInt(testNow, 10)))
			r := parseReply(t, w.Body.String())
			if r.ArticleCount != tt.want || len(r.Articles) != tt.want {
				t.Errorf("ArticleCount %d, items %d, want %d", r.ArticleCount, len(r.Articles), tt.want)
			}
			if tt.n > tt.want && !strings.Contains(e.logs.String(), "trimmed") {
				t.Error("trim not logged")
			}
		})
	}
	t.Run("EmptyIsSuccess", func(t *testing.T) {
		e := newEnv(t, static(NewsReply{}), nil)
		if w := e.serve(plainRequest(textXML(1, "x"), strconv.FormatInt(testNow, 10))); w.Body.String() != "success" {
			t.Errorf("got %q", w.Body)
		}
	})
}

func TestServer_ServeHTTP_Budget(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	e := newEnv(t, HandlerFunc(func(ctx context.Context, m *Message) (Reply, error) {
		started <- struct{}{}
		<-release // ignores ctx: a handler that runs past the budget
		return TextReply{Content: "late"}, nil
	}), func(c *Config) { c.Budget = 50 * time.Millisecond })
	w := e.serve(plainRequest(textXML(1, "x"), strconv.FormatInt(testNow, 10)))
	if w.Code != http.StatusOK || w.Body.String() != "success" {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
	if !strings.Contains(e.logs.String(), "past budget") {
		t.Errorf("not logged: %s", e.logs)
	}
}

func TestServer_ServeHTTP_InlineBudget(t *testing.T) {
	var deadline bool
	e := newEnv(t, HandlerFunc(func(ctx context.Context, m *Message) (Reply, error) {
		_, deadline = ctx.Deadline()
		<-ctx.Done() // honours ctx, as an inline handler must
		return TextReply{Content: "late"}, nil
	}), func(c *Config) { c.Budget = 30 * time.Millisecond; c.Inline = true })
	w := e.serve(plainRequest(textXML(1, "x"), strconv.FormatInt(testNow, 10)))
	if w.Code != http.StatusOK || w.Body.String() != "success" {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
	if !deadline {
		t.Error("the inline handler's context has no deadline")
	}
	if !strings.Contains(e.logs.String(), "past budget") {
		t.Errorf("not logged: %s", e.logs)
	}
	t.Run("InTime", func(t *testing.T) {
		e := newEnv(t, static(TextReply{Content: "quick"}), func(c *Config) { c.Inline = true })
		w := e.serve(plainRequest(textXML(2, "x"), strconv.FormatInt(testNow, 10)))
		if !strings.Contains(w.Body.String(), "quick") {
			t.Errorf("got %d %q", w.Code, w.Body)
		}
	})
}

func TestServer_ServeHTTP_Dedup(t *testing.T) {
	ts := strconv.FormatInt(testNow, 10)
	t.Run("Sequential", func(t *testing.T) {
		calls := 0
		e := newEnv(t, HandlerFunc(func(_ context.Context, m *Message) (Reply, error) {
			calls++
			return TextReply{Content: "call " + strconv.FormatInt(int64(calls), 10)}, nil
		}), func(c *Config) {
			now := time.Unix(testNow, 0)
			c.Now = func() time.Time { now = now.Add(time.Second); return now } // a later reply would differ
		})
		var replies []string
		for i := 0; i < 3; i++ {
			w := e.serve(plainRequest(textXML(42, "x"), ts))
			replies = append(replies, w.Body.String())
		}
		if calls != 1 {
			t.Fatalf("handler called %d times", calls)
		}
		if replies[0] != replies[1] || replies[1] != replies[2] || parseReply(t, replies[0]).Content != "call 1" {
			t.Errorf("replies differ: %q", replies)
		}
	})
	t.Run("ConcurrentEncrypted", func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		release := make(chan struct{})
		e := newEnv(t, HandlerFunc(func(_ context.Context, m *Message) (Reply, error) {
			mu.Lock()
			calls++
			mu.Unlock()
			<-release
			return TextReply{Content: "once"}, nil
		}), func(c *Config) { c.Mode = "safe" })
		var wg sync.WaitGroup
		replies := make([]string, 3)
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := e.serve(safeRequest(t, testKey, eventXML("CLICK", "V1001_TODAY_MUSIC"), ts, false))
				replies[i] = w.Body.String()
			}()
		}
		// Release the first delivery once both others are polling.
		for e.records.gets.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		wg.Wait()
		if calls != 1 {
			t.Fatalf("handler called %d times", calls)
		}
		var plain []string
		for _, r := range replies {
			plain = append(plain, openReply(t, testKey, []byte(r)))
		}
		if plain[0] != plain[1] || plain[1] != plain[2] || parseReply(t, plain[0]).Content != "once" {
			t.Errorf("plaintext replies differ: %q", plain)
		}
	})
	t.Run("EventKeyDistinguishes", func(t *testing.T) {
		calls := 0
		e := newEnv(t, HandlerFunc(func(context.Context, *Message) (Reply, error) { calls++; return nil, nil }), nil)
		e.serve(plainRequest(eventXML("CLICK", "A"), ts))
		e.serve(plainRequest(eventXML("CLICK", "B"), ts))
		e.serve(plainRequest(eventXML("VIEW", "A"), ts))
		e.serve(plainRequest(eventXML("CLICK", "A"), ts))
		if calls != 3 {
			t.Errorf("handler called %d times, want 3", calls)
		}
	})
	t.Run("RecordsDownStillAnswers", func(t *testing.T) {
		e := newEnv(t, static(TextReply{Content: "ok"}), nil)
		e.records.failPut = errors.New("redis: connection refused")
		w := e.serve(plainRequest(textXML(1, "x"), ts))
		if parseReply(t, w.Body.String()).Content != "ok" {
			t.Errorf("got %q", w.Body)
		}
	})
	t.Run("PendingPastBudgetIsSuccess", func(t *testing.T) {
		e := newEnv(t, static(TextReply{Content: "never"}), func(c *Config) { c.Budget = 30 * time.Millisecond })
		key := dedupKey(&Message{ToUserName: testGhID, MsgID: 5, MsgType: "text"})
		e.records.m[key] = []byte{recPending}
		w := e.serve(plainRequest(textXML(5, "x"), ts))
		if w.Body.String() != "success" {
			t.Errorf("got %q", w.Body)
		}
	})
}

func TestNewServer(t *testing.T) {
	ok := Config{Token: "t", Records: newFakeRecords()}
	tests := []struct {
		name string
		mod  func(*Config)
		h    Handler
	}{
		{"NoToken", func(c *Config) { c.Token = "" }, static(nil)},
		{"NoRecords", func(c *Config) { c.Records = nil }, static(nil)},
		{"NoHandler", func(c *Config) {}, nil},
		{"BadAESKey", func(c *Config) { c.AESKey, c.AppID = "short", "wx1" }, static(nil)},
		{"BadPreviousAESKey", func(c *Config) { c.AESKey, c.AppID, c.PreviousAESKey = testKey, "wx1", "x" }, static(nil)},
		{"KeyWithoutAppID", func(c *Config) { c.AESKey = testKey }, static(nil)},
		{"SafeWithoutKey", func(c *Config) { c.Mode = "safe" }, static(nil)},
		{"UnknownMode", func(c *Config) { c.Mode = "strict" }, static(nil)},
		{"BudgetPastWeChat", func(c *Config) { c.Budget = 5 * time.Second }, static(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			if _, err := NewServer(cfg, tt.h); err == nil {
				t.Fatal("no error")
			}
		})
	}
	t.Run("Defaults", func(t *testing.T) {
		s, err := NewServer(Config{Token: "t", Records: newFakeRecords(), AESKey: testKey, AppID: "wx1", DedupTTL: time.Second}, static(nil))
		if err != nil {
			t.Fatal(err)
		}
		if s.mode != "compat" || s.budget != DefaultBudget || s.dedupTTL != MinDedupTTL {
			t.Errorf("mode %q budget %v ttl %v", s.mode, s.budget, s.dedupTTL)
		}
	})
}

func TestServer_ReplyVector(t *testing.T) {
	// official/ReplyA43: the encrypted reply of the debug demo.
	e := newEnv(t, static(nil), func(c *Config) {
		c.AESKey, c.AppID = vecSafeKey, vecSafeAppID
		c.Rand = strings.NewReader("707722b803182950")
		c.Now = func() time.Time { return time.Unix(1713424427, 0) }
	})
	got, err := e.srv.appendEncrypted(nil, e.srv.crypters[0], []byte(`{"demo_resp":"good luck"}`), "415670741")
	if err != nil {
		t.Fatal(err)
	}
	want := "<xml><Encrypt><![CDATA[" + vecReplyEncrypt + "]]></Encrypt><MsgSignature><![CDATA[1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1]]></MsgSignature>" +
		"<TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>"
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestServer_LogsNoContents(t *testing.T) {
	const content = "my-private-message-1234"
	e := newEnv(t, static(TextReply{Content: "reply-private-5678"}), nil)
	e.serve(safeRequest(t, testKey, textXML(1, content), strconv.FormatInt(testNow, 10), false))
	e.serve(plainRequest(textXML(2, content), strconv.FormatInt(testNow, 10)))
	e.serve(plainRequest(textXML(2, content), strconv.FormatInt(testNow-1000, 10)))
	logs := e.logs.String()
	if !strings.Contains(logs, "callback handled") || !strings.Contains(logs, "openid_hash") {
		t.Fatalf("debug lines missing: %s", logs)
	}
	for _, secret := range []string{content, "reply-private-5678", testOpenID, testToken + "\"", testKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("log carries %q:\n%s", secret, logs)
		}
	}
}

func TestServer_LateReplyServesRedelivery(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, HandlerFunc(func(ctx context.Context, m *Message) (Reply, error) {
		<-release // past the budget
		return TextReply{Content: "late"}, nil
	}), func(c *Config) { c.Budget = 30 * time.Millisecond })
	if w := e.serve(plainRequest(textXML(77, "x"), strconv.FormatInt(testNow, 10))); w.Body.String() != "success" {
		t.Fatalf("first delivery: %q", w.Body)
	}
	close(release)
	for e.records.puts.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	w := e.serve(plainRequest(textXML(77, "x"), strconv.FormatInt(testNow, 10)))
	if r := parseReply(t, w.Body.String()); r.Content != "late" {
		t.Errorf("redelivery: %q", w.Body)
	}
}

func TestServer_DedupWithMemoryStore(t *testing.T) {
	calls := 0
	mem := memory.New(time.Now)
	e := newEnv(t, HandlerFunc(func(context.Context, *Message) (Reply, error) {
		calls++
		return TextReply{Content: "once"}, nil
	}), func(c *Config) { c.Records = mem; c.Mode = "safe" })
	var plain []string
	for i := 0; i < 3; i++ {
		w := e.serve(safeRequest(t, testKey, eventXML("subscribe", "qrscene_42"), strconv.FormatInt(testNow, 10), false))
		plain = append(plain, openReply(t, testKey, w.Body.Bytes()))
	}
	if calls != 1 || plain[0] != plain[1] || plain[1] != plain[2] {
		t.Errorf("calls %d, replies %q", calls, plain)
	}
}
