package callback

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
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
