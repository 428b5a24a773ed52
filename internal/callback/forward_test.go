package callback

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestForwarder(t *testing.T) {
	const secret = "s3cret-forward-key"
	var gotBody map[string]any
	var gotSig string
	answer := func(w http.ResponseWriter, r *http.Request) {}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(b)
		gotSig = r.Header.Get(SignatureHeader)
		if gotSig != hex.EncodeToString(mac.Sum(nil)) || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		gotBody = nil
		if err := json.Unmarshal(b, &gotBody); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		answer(w, r)
	}))
	defer ts.Close()
	fwd, err := NewForwarder(ForwardConfig{URL: ts.URL + "/hook?token=query-secret", Secret: secret, HTTPClient: ts.Client(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	body := "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]></FromUserName><CreateTime>1348831860</CreateTime>" +
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[pic_weixin]]></Event><EventKey>k</EventKey><MsgId>12</MsgId>" +
		"<SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo></xml>"
	m, err := ParseMessage([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	m.Encrypted, m.Mode = true, "safe"
	ctx := context.Background()

	t.Run("SignedJSONAndTextReply", func(t *testing.T) {
		answer = func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"type":"text","content":"from owner"}`)
		}
		got, err := fwd.ServeMessage(ctx, m)
		if err != nil || got != (TextReply{Content: "from owner"}) {
			t.Fatalf("got %v, %v", got, err)
		}
		want := map[string]any{
			"ToUserName": "gh_1", "FromUserName": "o_1", "CreateTime": 1348831860.0, "MsgType": "event",
			"Event": "pic_weixin", "EventKey": "k", "MsgId": 12.0, "Encrypted": true, "Mode": "safe",
			"SendPicsInfo": map[string]any{"Count": "2", "PicList": map[string]any{
				"item": []any{map[string]any{"PicMd5Sum": "a"}, map[string]any{"PicMd5Sum": "b"}}}},
		}
		if !reflect.DeepEqual(gotBody, want) {
			t.Errorf("forwarded %v\nwant %v", gotBody, want)
		}
	})
	t.Run("NewsReply", func(t *testing.T) {
		answer = func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"type":"news","articles":[{"title":"a","url":"https://x"}]}`)
		}
		got, err := fwd.ServeMessage(ctx, m)
		if err != nil || !reflect.DeepEqual(got, NewsReply{Articles: []Article{{Title: "a", URL: "https://x"}}}) {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	for name, a := range map[string]func(http.ResponseWriter, *http.Request){
		"NoContent": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
		"EmptyBody": func(w http.ResponseWriter, r *http.Request) {},
		"Success":   func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"type":"success"}`) },
	} {
		t.Run(name, func(t *testing.T) {
			answer = a
			if got, err := fwd.ServeMessage(ctx, m); got != nil || err != nil {
				t.Errorf("got %v, %v", got, err)
			}
		})
	}
	for name, a := range map[string]func(http.ResponseWriter, *http.Request){
		"Status500":   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
		"NotJSON":     func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<xml/>") },
		"UnknownType": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"type":"sticker"}`) },
		"UnknownKey": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"type":"text","content":"x","extra":1}`)
		},
	} {
		t.Run(name, func(t *testing.T) {
			answer = a
			got, err := fwd.ServeMessage(ctx, m)
			if got != nil || err == nil {
				t.Fatalf("got %v, %v", got, err)
			}
			if strings.Contains(err.Error(), "query-secret") {
				t.Errorf("error quotes the URL query: %v", err)
			}
		})
	}
	t.Run("WrongSecretRefused", func(t *testing.T) {
		other, _ := NewForwarder(ForwardConfig{URL: ts.URL, Secret: "other", HTTPClient: ts.Client()})
		if _, err := other.ServeMessage(ctx, m); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestForwarder_TimeoutIsSuccess(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	fwd, err := NewForwarder(ForwardConfig{URL: ts.URL + "/?key=query-secret", HTTPClient: ts.Client(), Timeout: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, fwd, nil)
	w := e.serve(plainRequest(textXML(1, "x"), strconv.FormatInt(testNow, 10)))
	if w.Code != http.StatusOK || w.Body.String() != "success" {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "handler failed") || strings.Contains(logs, "query-secret") {
		t.Errorf("log: %s", logs)
	}
}

func TestNewForwarder_BadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/y", "/relative", "http://", "::"} {
		if _, err := NewForwarder(ForwardConfig{URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
