package callback

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/wxauth/wxauth/internal/logtest"
)

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
