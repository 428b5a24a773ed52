package wxemu

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestEmulator_ReplyValidation(t *testing.T) {
	hdr := func(m *xnode, to, from string) string {
		if to == "" {
			to, _ = m.childText("FromUserName")
		}
		if from == "" {
			from, _ = m.childText("ToUserName")
		}
		return "<ToUserName><![CDATA[" + to + "]]></ToUserName><FromUserName><![CDATA[" + from + "]]></FromUserName><CreateTime>1</CreateTime>"
	}
	news := func(n, count int) func(m *xnode) string {
		return func(m *xnode) string {
			var b strings.Builder
			b.WriteString("<xml>" + hdr(m, "", "") + "<MsgType><![CDATA[news]]></MsgType><ArticleCount>" + strconv.Itoa(count) + "</ArticleCount><Articles>")
			for i := 0; i < n; i++ {
				b.WriteString("<item><Title><![CDATA[t]]></Title><Description><![CDATA[d]]></Description><PicUrl><![CDATA[p]]></PicUrl><Url><![CDATA[u]]></Url></item>")
			}
			b.WriteString("</Articles></xml>")
			return b.String()
		}
	}
	tests := []struct {
		name    string
		event   bool
		reply   func(m *xnode) string
		valid   bool
		errPart string
	}{
		{"Success", false, func(*xnode) string { return "" }, true, ""},
		{"Text", false, textReply, true, ""},
		{"News1AfterText", false, news(1, 1), true, ""},
		{"News2AfterText", false, news(2, 2), false, "1 article"},
		{"News8AfterClick", true, news(8, 8), true, ""},
		{"News9AfterClick", true, news(9, 9), false, "at most 8"},
		{"NewsCountMismatch", true, news(2, 3), false, "ArticleCount"},
		{"Image", false, func(m *xnode) string {
			return "<xml>" + hdr(m, "", "") + "<MsgType><![CDATA[image]]></MsgType><Image><MediaId><![CDATA[m1]]></MediaId></Image></xml>"
		}, true, ""},
		{"ImageNoMediaId", false, func(m *xnode) string {
			return "<xml>" + hdr(m, "", "") + "<MsgType><![CDATA[image]]></MsgType><Image></Image></xml>"
		}, false, "MediaId"},
		{"Transfer", false, func(m *xnode) string {
			return "<xml>" + hdr(m, "", "") + "<MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>"
		}, true, ""},
		{"NotSwapped", false, func(m *xnode) string {
			to, _ := m.childText("ToUserName")
			from, _ := m.childText("FromUserName")
			return "<xml>" + hdr(m, to, from) + "<MsgType><![CDATA[text]]></MsgType><Content>x</Content></xml>"
		}, false, "ToUserName"},
		{"UnknownType", false, func(m *xnode) string {
			return "<xml>" + hdr(m, "", "") + "<MsgType><![CDATA[nope]]></MsgType></xml>"
		}, false, "MsgType"},
		{"Malformed", false, func(m *xnode) string { return "<xml><ToUserName>" }, false, "malformed"},
		{"WrongRoot", false, func(m *xnode) string { return "<reply></reply>" }, false, "root"},
		{"Doctype", false, func(m *xnode) string { return `<!DOCTYPE xml [<!ENTITY x "y">]><xml>&x;</xml>` }, false, "DOCTYPE"},
	}
	for _, mode := range []string{"plain", "safe"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				_, srv := newSendPair(t, mode, &testCallback{reply: tt.reply}, nil)
				body := `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"}}`
				if tt.event {
					body = `{"from":"oWXEMU_alice","message":{"MsgType":"event","Event":"CLICK","EventKey":"k"}}`
				}
				res := send(t, srv, body)
				if res["valid"] != tt.valid || !strings.Contains(res["error"].(string), tt.errPart) {
					t.Errorf("valid=%v error=%q, want %v %q", res["valid"], res["error"], tt.valid, tt.errPart)
				}
			})
		}
	}
	t.Run("Safe/PlainReplyRejected", func(t *testing.T) {
		cb := &testCallback{}
		_, srv := newSendPair(t, "safe", cb, nil)
		cb.safe = false // answer in plaintext
		res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"}}`)
		if res["valid"] != false || !strings.Contains(res["error"].(string), "encrypted") {
			t.Errorf("%v", res)
		}
	})
	t.Run("Safe/BadReplySignature", func(t *testing.T) {
		cb := &testCallback{}
		_, srv := newSendPair(t, "safe", cb, nil)
		cb.token = "BBBBB" // signs the reply with the wrong token; requests then fail its check, so sign by hand
		cb.reply = textReply
		srvCb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			enc, _ := Encrypt(cbKey, cbAppID, []byte("0123456789abcdef"), []byte(textReply(mustMessage(t, r))))
			_, _ = w.Write([]byte("<xml><Encrypt><![CDATA[" + enc + "]]></Encrypt><MsgSignature><![CDATA[" +
				Signature("BBBBB", "1", "2", enc) + "]]></MsgSignature><TimeStamp>1</TimeStamp><Nonce><![CDATA[2]]></Nonce></xml>"))
		}))
		t.Cleanup(srvCb.Close)
		postJSON(t, srv.URL+"/emu/callback", `{"url":"`+srvCb.URL+`","token":"`+cbToken+`","aes_key":"`+cbKey+`","mode":"safe"}`)
		res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"}}`)
		if res["valid"] != false || !strings.Contains(res["error"].(string), "MsgSignature") {
			t.Errorf("%v", res)
		}
	})
	t.Run("Safe/ReplyForOtherAppID", func(t *testing.T) {
		cb := &testCallback{}
		_, srv := newSendPair(t, "safe", cb, nil)
		srvCb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			enc, _ := Encrypt(cbKey, "wx0000000000000000", []byte("0123456789abcdef"), []byte(textReply(mustMessage(t, r))))
			_, _ = w.Write([]byte("<xml><Encrypt><![CDATA[" + enc + "]]></Encrypt><MsgSignature><![CDATA[" +
				Signature(cbToken, "1", "2", enc) + "]]></MsgSignature><TimeStamp>1</TimeStamp><Nonce><![CDATA[2]]></Nonce></xml>"))
		}))
		t.Cleanup(srvCb.Close)
		postJSON(t, srv.URL+"/emu/callback", `{"url":"`+srvCb.URL+`","token":"`+cbToken+`","aes_key":"`+cbKey+`","mode":"safe"}`)
		res := send(t, srv, `{"from":"oWXEMU_alice","message":{"MsgType":"text","Content":"x"}}`)
		if res["valid"] != false || !strings.Contains(res["error"].(string), "appid") {
			t.Errorf("%v", res)
		}
	})
}
