package wxemu

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is one delivery the test callback got.
type received struct {
	query   map[string]string
	body    string
	message *xnode // the plaintext message (decrypted in compat/safe)
	err     string // what the callback found wrong with the request
}

// testCallback is a tiny service /wx written from WeChat's message
// encryption page and the WXBizMsgCrypt samples: it checks signature and
// msg_signature, decrypts with the official token, key and appid, and
// answers reply(message) (plaintext XML, "" for success), encrypting it in
// safe mode or when encryptReply is set.
type testCallback struct {
	mu           sync.Mutex
	got          []received
	token, key   string
	appID        string
	safe         bool
	encryptReply bool
	reply        func(m *xnode) string
	status       func(n int) int // HTTP status of the n-th delivery (1-based); nil = 200
}

func (c *testCallback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := map[string]string{}
	for k := range r.URL.Query() {
		q[k] = r.URL.Query().Get(k)
	}
	rec := received{query: q, body: string(body)}
	c.mu.Lock()
	n := len(c.got) + 1
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.got = append(c.got, rec)
		c.mu.Unlock()
	}()
	if c.status != nil {
		if s := c.status(n); s != http.StatusOK {
			w.WriteHeader(s)
			return
		}
	}
	if q["signature"] != Signature(c.token, q["timestamp"], q["nonce"]) {
		rec.err = "bad signature"
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	root, err := parseXML(body)
	if err != nil {
		rec.err = err.Error()
		return
	}
	rec.message = root
	if q["encrypt_type"] == "aes" {
		enc, _ := root.childText("Encrypt")
		if q["msg_signature"] != Signature(c.token, q["timestamp"], q["nonce"], enc) {
			rec.err = "bad msg_signature"
			http.Error(w, "bad msg_signature", http.StatusForbidden)
			return
		}
		_, msg, err := Decrypt(c.key, c.appID, enc)
		if err != nil {
			rec.err = err.Error()
			return
		}
		if rec.message, err = parseXML(msg); err != nil {
			rec.err = err.Error()
			return
		}
	}
	out := c.reply(rec.message)
	if out == "" {
		_, _ = w.Write([]byte("success"))
		return
	}
	if c.safe || c.encryptReply {
		enc, _ := Encrypt(c.key, c.appID, []byte("0123456789abcdef"), []byte(out))
		ts, nonce := "1713424427", "415670741"
		out = "<xml><Encrypt><![CDATA[" + enc + "]]></Encrypt><MsgSignature><![CDATA[" + Signature(c.token, ts, nonce, enc) +
			"]]></MsgSignature><TimeStamp>" + ts + "</TimeStamp><Nonce><![CDATA[" + nonce + "]]></Nonce></xml>"
	}
	_, _ = w.Write([]byte(out))
}

func (c *testCallback) deliveries() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.got...)
}

// textReply answers any message with a text reply built from its fields.
func textReply(m *xnode) string {
	to, _ := m.childText("FromUserName")
	from, _ := m.childText("ToUserName")
	content, _ := m.childText("Content")
	content = strings.ReplaceAll(content, "]]>", "]]]]><![CDATA[>")
	return "<xml><ToUserName><![CDATA[" + to + "]]></ToUserName><FromUserName><![CDATA[" + from +
		"]]></FromUserName><CreateTime>1714112446</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[echo: " +
		content + "]]></Content></xml>"
}

// newSendPair starts a callback for mode and an emulator pointing at it,
// with the official section-6 token, key and appid.
func newSendPair(t *testing.T, mode string, cb *testCallback, edit func(*Config)) (*Emulator, *httptest.Server) {
	t.Helper()
	cb.token, cb.key, cb.appID, cb.safe = cbToken, cbKey, cbAppID, mode == "safe"
	if cb.reply == nil {
		cb.reply = textReply
	}
	cbSrv := httptest.NewServer(cb)
	t.Cleanup(cbSrv.Close)
	return newTestEmulator(t, func(c *Config) {
		c.AppID = cbAppID
		c.CallbackURL, c.CallbackToken, c.AESKey, c.Mode = cbSrv.URL+"/wx", cbToken, cbKey, mode
		if edit != nil {
			edit(c)
		}
	})
}

func send(t *testing.T, srv *httptest.Server, body string) map[string]any {
	t.Helper()
	return postJSON(t, srv.URL+"/emu/send", body)
}

func TestEmulator_Send(t *testing.T) {
	t.Run("Safe", func(t *testing.T) {
		cb := &testCallback{}
		_, srv := newSendPair(t, "safe", cb, nil)
		res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"hi"}}`)
		if res["valid"] != true || res["deliveries"] != 1.0 || res["error"] != "" {
			t.Fatalf("result: %v", res)
		}
		reply, _ := res["reply"].(map[string]any)
		if reply["MsgType"] != "text" || reply["Content"] != "echo: hi" || reply["ToUserName"] != "oWXEMU_alice" {
			t.Errorf("reply: %v", reply)
		}
		got := cb.deliveries()
		if len(got) != 1 || got[0].err != "" {
			t.Fatalf("callback saw %+v", got)
		}
		d := got[0]
		for _, k := range []string{"signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature"} {
			if d.query[k] == "" {
				t.Errorf("query lacks %s: %v", k, d.query)
			}
		}
		if d.query["openid"] != "oWXEMU_alice" || d.query["timestamp"] != strconv.FormatInt(t0.Unix(), 10) {
			t.Errorf("query %v", d.query)
		}
		outer, _ := parseXML([]byte(d.body))
		if len(outer.kids) != 2 || outer.kids[0].name != "ToUserName" || outer.kids[1].name != "Encrypt" || outer.kids[0].text != defaultOriginal {
			t.Errorf("safe body must be ToUserName+Encrypt only: %s", d.body)
		}
		m := d.message
		var names []string
		for _, k := range m.kids {
			names = append(names, k.name)
		}
		if strings.Join(names, ",") != "ToUserName,FromUserName,CreateTime,MsgType,Content,MsgId" {
			t.Errorf("field order %v", names)
		}
		if id, err := strconv.ParseInt(m.child("MsgId").text, 10, 64); err != nil || id < 1e16 {
			t.Errorf("MsgId %q is not a 64-bit id", m.child("MsgId").text)
		}
		if ct := m.child("CreateTime").text; ct != strconv.FormatInt(t0.Unix(), 10) {
			t.Errorf("CreateTime %s", ct)
		}
	})
	t.Run("SafeOfficialReplyVector", func(t *testing.T) {
		// The official reply envelope passes the signature and appid checks;
		// its plaintext is JSON, so only the XML step may complain.
		p := &push{cb: callbackConfig{token: cbToken, aesKey: cbKey, mode: "safe"}, appID: cbAppID}
		body := "<xml><Encrypt><![CDATA[" + cbReplyEnc + "]]></Encrypt><MsgSignature><![CDATA[1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1]]></MsgSignature><TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>"
		_, plain, err := checkReply(p, []byte(body))
		if plain != cbReplyPlain || err == nil || !strings.Contains(err.Error(), "decrypted reply") {
			t.Errorf("plain %q err %v", plain, err)
		}
		bad := strings.Replace(body, "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1", "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea2", 1)
		if _, _, err := checkReply(p, []byte(bad)); err == nil || !strings.Contains(err.Error(), "MsgSignature") {
			t.Errorf("bad signature: %v", err)
		}
	})
	t.Run("Compat", func(t *testing.T) {
		cb := &testCallback{}
		_, srv := newSendPair(t, "compat", cb, nil)
		res := send(t, srv, `{"from":"oWXEMU_bob","message":{"MsgType":"text","Content":"hi"}}`)
		if res["valid"] != true {
			t.Fatalf("plaintext reply in compat mode: %v", res)
		}
		d := cb.deliveries()[0]
		outer, _ := parseXML([]byte(d.body))
		if c, _ := outer.childText("Content"); c != "hi" || outer.child("Encrypt") == nil || d.query["msg_signature"] == "" {
			t.Errorf("compat body must carry plain fields and Encrypt: %s", d.body)
		}
		cb.encryptReply = true
		if res := send(t, srv, `{"from":"oWXEMU_bob","message":{"MsgType":"text","Content":"hi"}}`); res["valid"] != true || res["plain"] == "" {
			t.Errorf("encrypted reply in compat mode: %v", res)
		}
	})
	t.Run("Plain", func(t *testing.T) {
		cb := &testCallback{}
		_, srv := newSendPair(t, "plain", cb, nil)
		res := send(t, srv, `{"from":"oWXEMU_bob","message":{"MsgType":"text","Content":"a]]>b <&>"}}`)
		if res["valid"] != true {
			t.Fatalf("%v", res)
		}
		d := cb.deliveries()[0]
		if _, ok := d.query["msg_signature"]; ok || d.query["encrypt_type"] != "" {
			t.Errorf("plain query %v", d.query)
		}
		if c, _ := d.message.childText("Content"); c != "a]]>b <&>" {
			t.Errorf("Content survived as %q", c)
		}
		if r, _ := res["reply"].(map[string]any); r["Content"] != "echo: a]]>b <&>" {
			t.Errorf("reply %v", res["reply"])
		}
		if !strings.Contains(d.body, "<ToUserName><![CDATA[gh_wxemu00000000]]></ToUserName>") || !strings.Contains(d.body, "<CreateTime>"+strconv.FormatInt(t0.Unix(), 10)+"</CreateTime>") {
			t.Errorf("body %s", d.body)
		}
		cb.encryptReply = true
		if res := send(t, srv, `{"from":"oWXEMU_bob","message":{"MsgType":"text","Content":"x"}}`); res["valid"] != false {
			t.Errorf("encrypted reply in plain mode accepted: %v", res)
		}
	})
	t.Run("Options", func(t *testing.T) {
		cb := &testCallback{}
		_, srv := newSendPair(t, "safe", cb, nil)
		res := send(t, srv, `{"from":"oWXEMU_bob","message":{"MsgType":"location","Location_X":23.134521,"Location_Y":113.358803,"Scale":20,"Label":"位置"},
			"timestamp":1700000000,"create_time":1700000001,"msg_id":1234567890123456789}`)
		d := cb.deliveries()[0]
		if d.query["timestamp"] != "1700000000" || d.message.child("CreateTime").text != "1700000001" || d.message.child("MsgId").text != "1234567890123456789" {
			t.Errorf("options not applied: %v %v", d.query, res)
		}
		if !strings.Contains(res["sent"].(string), "<Location_X>23.134521</Location_X>") || !strings.Contains(res["sent"].(string), "<Label><![CDATA[位置]]></Label>") {
			t.Errorf("numbers must be bare, strings CDATA: %s", res["sent"])
		}
	})
	t.Run("Repeat", func(t *testing.T) {
		for _, concurrent := range []string{"false", "true"} {
			t.Run("Concurrent="+concurrent, func(t *testing.T) {
				cb := &testCallback{}
				_, srv := newSendPair(t, "safe", cb, nil)
				res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"},"repeat":3,"concurrent":`+concurrent+`}`)
				replies, _ := res["replies"].([]any)
				if len(replies) != 3 || res["deliveries"] != 3.0 {
					t.Fatalf("%v", res)
				}
				got := cb.deliveries()
				if len(got) != 3 {
					t.Fatalf("callback saw %d deliveries", len(got))
				}
				for _, d := range got[1:] {
					if d.body != got[0].body || d.query["nonce"] != got[0].query["nonce"] {
						t.Error("repeat did not deliver the same bytes")
					}
				}
			})
		}
	})
	t.Run("Redelivery", func(t *testing.T) {
		cb := &testCallback{status: func(n int) int {
			if n < 3 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}}
		_, srv := newSendPair(t, "safe", cb, nil)
		res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"}}`)
		if res["deliveries"] != 3.0 || res["valid"] != true {
			t.Errorf("%v", res)
		}
		cb2 := &testCallback{status: func(int) int { return http.StatusBadGateway }}
		_, srv2 := newSendPair(t, "safe", cb2, nil)
		res = send(t, srv2, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"}}`)
		if res["deliveries"] != 3.0 || res["valid"] != false || !strings.Contains(res["error"].(string), "502") || len(cb2.deliveries()) != 3 {
			t.Errorf("%v", res)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		var n int
		var mu sync.Mutex
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			n++
			mu.Unlock()
			// Reading the body lets the server notice the client hanging up.
			_, _ = io.ReadAll(r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		})
		cbSrv := httptest.NewServer(slow)
		t.Cleanup(cbSrv.Close)
		_, srv := newTestEmulator(t, func(c *Config) {
			c.CallbackURL, c.CallbackToken, c.Mode = cbSrv.URL, cbToken, "plain"
			c.HTTPClient = &http.Client{Timeout: 20 * time.Millisecond}
		})
		res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"}}`)
		mu.Lock()
		defer mu.Unlock()
		if res["deliveries"] != 3.0 || res["valid"] != false || n > 3 || !strings.Contains(res["error"].(string), "timeout") {
			t.Errorf("%v (server saw %d)", res, n)
		}
	})
	t.Run("NoCallback409", func(t *testing.T) {
		_, srv := newTestEmulator(t, nil)
		if res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"}}`); res["_status"] != 409.0 {
			t.Errorf("%v", res)
		}
	})
	t.Run("BadRequests", func(t *testing.T) {
		_, srv := newSendPair(t, "plain", &testCallback{}, nil)
		for name, body := range map[string]string{
			"NoMsgType":  `{"from":"oWXEMU_alice","message":{"Content":"x"}}`,
			"NotObject":  `{"from":"oWXEMU_alice","message":"x"}`,
			"BadName":    `{"from":"oWXEMU_alice","message":{"MsgType":"text","<a>":"x"}}`,
			"NoFrom":     `{"message":{"MsgType":"text"}}`,
			"RepeatHuge": `{"from":"oWXEMU_alice","message":{"MsgType":"text"},"repeat":1000}`,
			"NotJSON":    `{`,
		} {
			t.Run(name, func(t *testing.T) {
				if res := send(t, srv, body); res["_status"] != 400.0 {
					t.Errorf("%v", res)
				}
			})
		}
	})
}

func TestEmulator_VerifyURL(t *testing.T) {
	echo := func(correct bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if q.Get("signature") != Signature(cbToken, q.Get("timestamp"), q.Get("nonce")) {
				http.Error(w, "bad signature", http.StatusForbidden)
				return
			}
			s := q.Get("echostr")
			if !correct {
				s = `"` + s + `"`
			}
			_, _ = w.Write([]byte(s))
		})
	}
	for _, correct := range []bool{true, false} {
		t.Run(strconv.FormatBool(correct), func(t *testing.T) {
			cbSrv := httptest.NewServer(echo(correct))
			t.Cleanup(cbSrv.Close)
			_, srv := newTestEmulator(t, func(c *Config) { c.CallbackURL, c.CallbackToken = cbSrv.URL, cbToken })
			for _, m := range []map[string]any{getJSON(t, srv.URL+"/wx-verify"), postJSON(t, srv.URL+"/emu/verify-url", `{}`)} {
				if m["ok"] != correct || m["echostr"] == "" {
					t.Errorf("%v", m)
				}
			}
		})
	}
	t.Run("WrongToken", func(t *testing.T) {
		cbSrv := httptest.NewServer(echo(true))
		t.Cleanup(cbSrv.Close)
		_, srv := newTestEmulator(t, func(c *Config) { c.CallbackURL, c.CallbackToken = cbSrv.URL, "OtherToken" })
		if m := getJSON(t, srv.URL+"/wx-verify"); m["ok"] != false || m["status"] != 403.0 {
			t.Errorf("%v", m)
		}
	})
}
