package wxemu

import (
	"bytes"
	"errors"
	"testing"
)

// Vectors from the official WXBizMsgCrypt samples (Message_encryption_and_decryption_instructions.html).
const (
	vecKey       = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	vecAppID     = "wxb11529c136998cb6"
	vecCipher    = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
	cbToken      = "AAAAA"
	cbKey        = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	cbAppID      = "wxba5fad812f8e6fb9"
	cbEncrypt    = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="
	cbPlain      = `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`
	cbReplyEnc   = "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
	cbReplyPlain = `{"demo_resp":"good luck"}`
)

func TestSignature(t *testing.T) {
	tests := []struct {
		name  string
		parts []string
		want  string
	}{
		{"official/URLVerify", []string{"AAAAA", "1714036504", "1514711492"}, "f464b24fc39322e44b38aa78f5edd27bd1441696"},
		{"official/PlainPost", []string{"AAAAA", "1714037059", "486452656"}, "899cf89e464efb63f54ddac96b0a0a235f53aa78"},
		{"official/SafeSignature", []string{cbToken, "1714112445", "415670741"}, "6c5c811b55cc85e0e1b54100749188c20beb3f5d"},
		{"official/SafeMsgSignature", []string{cbToken, "1714112445", "415670741", cbEncrypt}, "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"},
		{"official/ReplyMsgSignature", []string{cbToken, "1713424427", "415670741", cbReplyEnc}, "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"},
		{"official/TestToken", []string{"test", "1410685589", "test"}, "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Signature(tt.parts...); got != tt.want {
				t.Errorf("Signature = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestEncrypt(t *testing.T) {
	tests := []struct {
		name, key, appID, random, msg, want string
	}{
		{"official/WXBizMsgCrypt", vecKey, vecAppID, "aaaabbbbccccdddd", "我是中文abcd123", vecCipher},
		{"official/SafeModePush", cbKey, cbAppID, "a8eedb185eb2fecf", cbPlain, cbEncrypt},
		{"official/SafeModeReply", cbKey, cbAppID, "707722b803182950", cbReplyPlain, cbReplyEnc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encrypt(tt.key, tt.appID, []byte(tt.random), []byte(tt.msg))
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			if got != tt.want {
				t.Errorf("Encrypt = %s\nwant      %s", got, tt.want)
			}
			random, msg, err := Decrypt(tt.key, tt.appID, tt.want)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if string(random) != tt.random || string(msg) != tt.msg {
				t.Errorf("Decrypt = %q, %q; want %q, %q", random, msg, tt.random, tt.msg)
			}
		})
	}
	t.Run("RandomNot16Bytes", func(t *testing.T) {
		if _, err := Encrypt(vecKey, vecAppID, []byte("short"), []byte("x")); err == nil {
			t.Error("Encrypt accepted a 5-byte random")
		}
	})
}

func TestDecrypt_Errors(t *testing.T) {
	t.Run("AppIDMismatch", func(t *testing.T) {
		if _, _, err := Decrypt(vecKey, "wx0000000000000000", vecCipher); !errors.Is(err, ErrAppID) {
			t.Errorf("err = %v, want ErrAppID", err)
		}
	})
	t.Run("AnyAppIDWhenEmpty", func(t *testing.T) {
		if _, _, err := Decrypt(vecKey, "", vecCipher); err != nil {
			t.Errorf("err = %v", err)
		}
	})
	for _, key := range []string{"", "short", vecKey + "A", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!"} {
		t.Run("BadKey/"+key, func(t *testing.T) {
			if _, _, err := Decrypt(key, vecAppID, vecCipher); !errors.Is(err, ErrAESKey) {
				t.Errorf("err = %v, want ErrAESKey", err)
			}
		})
	}
	for name, c := range map[string]string{
		"NotBase64":     "!!!!",
		"Empty":         "",
		"NotBlockSized": "AAAAAAAA",
		"WrongKey":      cbEncrypt,
		"Truncated":     vecCipher[:44],
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Decrypt(vecKey, vecAppID, c); !errors.Is(err, ErrDecrypt) {
				t.Errorf("err = %v, want ErrDecrypt", err)
			}
		})
	}
	t.Run("PadAbove16", func(t *testing.T) {
		// 16+4+len(msg)+18 = 38 + len(msg); msg of 20 bytes gives 58, pad 6;
		// msg of 10 gives 48, pad 16; msg of 7 gives 45, pad 19 (> 16: a
		// 16-byte unpad would fail here).
		msg := []byte("1234567")
		enc, err := Encrypt(vecKey, vecAppID, bytes.Repeat([]byte("r"), 16), msg)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := Decrypt(vecKey, vecAppID, enc)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("Decrypt = %q, %v", got, err)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	f.Add(vecCipher)
	f.Add(cbEncrypt)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _ = Decrypt(vecKey, vecAppID, s)
	})
}

func FuzzParseXML(f *testing.F) {
	f.Add([]byte("<xml><A><![CDATA[x]]></A><B><item><C>1</C></item></B></xml>"))
	f.Add([]byte("<!DOCTYPE x [<!ENTITY a 'b'>]><xml>&a;</xml>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := parseXML(b); err == nil {
			_ = n.value()
		}
	})
}
