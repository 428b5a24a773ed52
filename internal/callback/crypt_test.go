package callback

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestSign(t *testing.T) {
	tests := []struct {
		name                    string
		token, timestamp, nonce string
		extra                   []string
		want                    string
	}{
		{"official/GETVerification", "AAAAA", "1714036504", "1514711492", nil, "f464b24fc39322e44b38aa78f5edd27bd1441696"},
		{"official/PlainPOST", "AAAAA", "1714037059", "486452656", nil, "899cf89e464efb63f54ddac96b0a0a235f53aa78"},
		{"official/PlainSignatureTest", "test", "1410685589", "test", nil, "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"},
		{"official/SafeSignature", "AAAAA", "1714112445", "415670741", nil, "6c5c811b55cc85e0e1b54100749188c20beb3f5d"},
		{"official/SafeMsgSignature", "AAAAA", "1714112445", "415670741", []string{vecSafeEncrypt}, "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"},
		{"official/ReplyMsgSignature", "AAAAA", "1713424427", "415670741", []string{vecReplyEncrypt}, "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sign(tt.token, tt.timestamp, tt.nonce, tt.extra...); got != tt.want {
				t.Errorf("Sign = %s, want %s", got, tt.want)
			}
			if !checkSign(tt.want, tt.token, tt.timestamp, tt.nonce, tt.extra...) {
				t.Error("checkSign rejects the official signature")
			}
			bad := []byte(tt.want)
			bad[0] ^= 1
			if checkSign(string(bad), tt.token, tt.timestamp, tt.nonce, tt.extra...) {
				t.Error("checkSign accepts a modified signature")
			}
		})
	}
	t.Run("OrderIndependent", func(t *testing.T) {
		if Sign("b", "a", "c") != Sign("c", "b", "a") {
			t.Error("signature depends on argument order")
		}
	})
	t.Run("ManyExtras", func(t *testing.T) {
		long := strings.Repeat("x", 5000)
		if Sign("t", "1", "n", long, "y") != Sign("t", "1", "n", "y", long) {
			t.Error("signature depends on extra order")
		}
	})
}

const (
	vecSafeKey      = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	vecSafeAppID    = "wxba5fad812f8e6fb9"
	vecSafeEncrypt  = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="
	vecSafeMsg      = `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`
	vecReplyEncrypt = "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
)

func TestCrypter_Decrypt(t *testing.T) {
	t.Run("official/SafeModeA43", func(t *testing.T) {
		c, err := NewCrypter(vecSafeKey, vecSafeAppID)
		if err != nil {
			t.Fatal(err)
		}
		msg, appID, err := c.Decrypt(vecSafeEncrypt)
		if err != nil {
			t.Fatal(err)
		}
		if string(msg) != vecSafeMsg || appID != vecSafeAppID {
			t.Errorf("Decrypt = %q, %q", msg, appID)
		}
		// The random prefix of the vector.
		raw, _ := base64.StdEncoding.DecodeString(vecSafeEncrypt)
		if _, _, err := c.open(raw); err != nil {
			t.Fatal(err)
		}
		if string(raw[:16]) != "a8eedb185eb2fecf" {
			t.Errorf("random prefix = %q", raw[:16])
		}
	})
	t.Run("official/ReplyA43", func(t *testing.T) {
		c, _ := NewCrypter(vecSafeKey, vecSafeAppID)
		msg, _, err := c.Decrypt(vecReplyEncrypt)
		if err != nil || string(msg) != `{"demo_resp":"good luck"}` {
			t.Errorf("Decrypt = %q, %v", msg, err)
		}
	})
	c, _ := NewCrypter(vecSafeKey, vecSafeAppID)
	other, _ := NewCrypter(vecSafeKey, "wx0000000000000000")
	good, _ := c.Encrypt([]byte("0123456789abcdef"), []byte("<xml/>"))
	raw, _ := base64.StdEncoding.DecodeString(good)
	tests := []struct {
		name string
		c    *Crypter
		in   string
		want error
	}{
		{"Base64Garbage", c, "!!!not base64!!!", ErrBase64},
		{"Base64Truncated", c, good[:len(good)-3], ErrBase64},
		{"Empty", c, "", ErrDecrypt},
		{"NotWholeBlocks", c, base64.StdEncoding.EncodeToString(raw[:len(raw)-5]), ErrDecrypt},
		{"WrongKeyPadding", mustCrypter(t, strings.Repeat("B", 43), vecSafeAppID), good, ErrDecrypt},
		{"AppIDMismatch", other, good, ErrAppID},
		{"ShortBuffer", c, encryptRaw(t, c, []byte("0123456789"), 32-10), ErrBuffer},
		{"LengthPastEnd", c, encryptRaw(t, c, append([]byte("0123456789abcdef\xff\xff\xff\xff"), make([]byte, 11)...), 1), ErrBuffer},
		{"Pad33", c, encryptRaw(t, c, make([]byte, 31), 33), ErrDecrypt},
		{"PadZero", c, encryptRaw(t, c, make([]byte, 32), 0), ErrDecrypt},
		{"PadInconsistent", c, encryptPadBytes(t, c, make([]byte, 28), []byte{3, 4, 4, 4}), ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, appID, err := tt.c.Decrypt(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if msg != nil || appID != "" {
				t.Errorf("returned %q, %q with an error", msg, appID)
			}
			if strings.Contains(err.Error(), vecSafeKey) {
				t.Error("error quotes the key")
			}
		})
	}
}

func TestCrypter_Encrypt(t *testing.T) {
	tests := []struct {
		name, key, appID, random, msg, want string
	}{
		{"official/WXBizMsgCrypt", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxb11529c136998cb6", "aaaabbbbccccdddd", "我是中文abcd123",
			"jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="},
		{"official/ReplyA43", vecSafeKey, vecSafeAppID, "707722b803182950", `{"demo_resp":"good luck"}`, vecReplyEncrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCrypter(tt.key, tt.appID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Encrypt([]byte(tt.random), []byte(tt.msg))
			if err != nil || got != tt.want {
				t.Fatalf("Encrypt = %q, %v, want %q", got, err, tt.want)
			}
			msg, appID, err := c.Decrypt(got)
			if err != nil || string(msg) != tt.msg || appID != tt.appID {
				t.Errorf("round trip = %q, %q, %v", msg, appID, err)
			}
		})
	}
	t.Run("PadsTo32", func(t *testing.T) {
		c := mustCrypter(t, vecSafeKey, vecSafeAppID)
		for n := 0; n < 70; n++ {
			enc, err := c.Encrypt(make([]byte, 16), make([]byte, n))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := base64.StdEncoding.DecodeString(enc)
			if len(raw)%32 != 0 {
				t.Fatalf("msg of %d bytes: ciphertext of %d bytes", n, len(raw))
			}
			if msg, _, err := c.Decrypt(enc); err != nil || len(msg) != n {
				t.Fatalf("msg of %d bytes: round trip %d, %v", n, len(msg), err)
			}
		}
	})
	t.Run("RandomLength", func(t *testing.T) {
		c := mustCrypter(t, vecSafeKey, vecSafeAppID)
		if _, err := c.Encrypt([]byte("short"), nil); err == nil {
			t.Error("accepted a 5-byte random prefix")
		}
	})
}

func TestNewCrypter(t *testing.T) {
	for name, key := range map[string]string{
		"Empty":      "",
		"Short":      strings.Repeat("A", 42),
		"Long":       strings.Repeat("A", 44),
		"Plus":       strings.Repeat("A", 42) + "+",
		"Slash":      "/" + strings.Repeat("A", 42),
		"NonASCII":   strings.Repeat("A", 40) + "中",
		"Whitespace": strings.Repeat("A", 42) + " ",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewCrypter(key, "wx")
			if !errors.Is(err, ErrAESKey) {
				t.Fatalf("err = %v, want ErrAESKey", err)
			}
			if key != "" && strings.Contains(err.Error(), key) {
				t.Error("error quotes the key")
			}
		})
	}
}

func mustCrypter(tb testing.TB, key, appID string) *Crypter {
	tb.Helper()
	c, err := NewCrypter(key, appID)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// encryptRaw encrypts plain followed by pad bytes of value pad (none when
// pad is 0: plain must then be whole blocks), bypassing the framing.
func encryptRaw(tb testing.TB, c *Crypter, plain []byte, pad int) string {
	tb.Helper()
	b := append([]byte(nil), plain...)
	for i := 0; i < pad; i++ {
		b = append(b, byte(pad))
	}
	return encryptBlocks(tb, c, b)
}

func encryptPadBytes(tb testing.TB, c *Crypter, plain, pad []byte) string {
	tb.Helper()
	return encryptBlocks(tb, c, append(append([]byte(nil), plain...), pad...))
}

func encryptBlocks(tb testing.TB, c *Crypter, b []byte) string {
	tb.Helper()
	if len(b)%16 != 0 {
		tb.Fatalf("test input of %d bytes is not whole blocks", len(b))
	}
	out := make([]byte, len(b))
	cbcEncrypt(c, out, b)
	return base64.StdEncoding.EncodeToString(out)
}
