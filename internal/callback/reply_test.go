package callback

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendReply_Golden(t *testing.T) {
	tests := []struct {
		name  string
		reply Reply
	}{
		{"text", TextReply{Content: "Hello!\n你好 ]]> <b>&amp;</b>"}},
		{"image", ImageReply{MediaID: "MEDIA_ID_1"}},
		{"voice", VoiceReply{MediaID: "MEDIA_ID_2"}},
		{"video", VideoReply{MediaID: "MEDIA_ID_3", Title: "A video", Description: "What it shows"}},
		{"music", MusicReply{Title: "Today's song", Description: "A song", MusicURL: "https://example.com/a.mp3",
			HQMusicURL: "https://example.com/a-hq.mp3", ThumbMediaID: "THUMB_1"}},
		{"news", NewsReply{Articles: []Article{
			{Title: "One", Description: "First", PicURL: "https://example.com/1.png", URL: "https://example.com/1?a=1&b=2"},
			{Title: "Two", Description: "Second", PicURL: "https://example.com/2.png", URL: "https://example.com/2"},
		}}},
		{"transfer", TransferReply{}},
		{"transfer_agent", TransferReply{KfAccount: "test1@gh_97417a04a28d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendReply(nil, tt.reply, testOpenID, testGhID, testNow)
			golden(t, "reply_"+tt.name+".golden", got)
			var r struct {
				ToUserName, FromUserName, MsgType string
				CreateTime                        int64
			}
			if err := xml.Unmarshal(got, &r); err != nil {
				t.Fatalf("not XML: %v", err)
			}
			if r.ToUserName != testOpenID || r.FromUserName != testGhID || r.CreateTime != testNow || r.MsgType != tt.reply.MsgType() {
				t.Errorf("header %+v", r)
			}
		})
	}
}

func TestServer_EncryptedEnvelope_Golden(t *testing.T) {
	e := newEnv(t, static(TextReply{Content: "Hello!"}), func(c *Config) { c.Mode = "safe" })
	w := e.serve(safeRequest(t, testKey, textXML(1, "hi"), strconv.FormatInt(testNow, 10), false))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	golden(t, "envelope_text.golden", w.Body.Bytes())
	if got := openReply(t, testKey, w.Body.Bytes()); got != string(AppendReply(nil, TextReply{Content: "Hello!"}, testOpenID, testGhID, testNow)) {
		t.Errorf("plaintext %s", got)
	}
}

func TestAppendCDATA(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"Plain", "abc", "abc"},
		{"SplitsEnd", "a]]>b", "a]]]]><![CDATA[>b"},
		{"SplitsTwice", "]]>]]>", "]]]]><![CDATA[>]]]]><![CDATA[>"},
		{"SplitsEndJoinedByDrop", "]]\x80>", "]]]]><![CDATA[>"},
		{"SplitsLongRun", "]]]>", "]]]]]><![CDATA[>"},
		{"KeepsMarkup", "<a href='x'>&amp;</a>", "<a href='x'>&amp;</a>"},
		{"KeepsNewlines", "a\r\nb\tc", "a\r\nb\tc"},
		{"DropsControl", "a\x00b\x1bc\x7f", "abc\x7f"},
		{"DropsBadUTF8", "a\xffb\xc3", "ab"},
		{"DropsNonChars", "a\uFFFEb\uFFFF", "ab"},
		{"KeepsChinese", "你好😀", "你好😀"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendCDATA(nil, tt.in))
			if got != "<![CDATA["+tt.want+"]]>" {
				t.Errorf("got %q", got)
			}
			var v struct {
				X string `xml:"x"`
			}
			if err := xml.Unmarshal([]byte("<r><x>"+got+"</x></r>"), &v); err != nil {
				t.Fatalf("not XML: %v", err)
			}
		})
	}
}

// FuzzAppendReply checks that any text gives well-formed XML that reads
// back as the cleaned text.
func FuzzAppendReply(f *testing.F) {
	for _, s := range []string{"", "]]>", "a]]]>b", "\x00\xff", "你好", "<![CDATA[x]]>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendReply(nil, TextReply{Content: s}, s, "gh", 1)
		var r struct{ Content, ToUserName string }
		if err := xml.Unmarshal(b, &r); err != nil {
			t.Fatalf("not XML for %q: %v\n%s", s, err, b)
		}
		if !utf8.ValidString(r.Content) || strings.ContainsRune(r.Content, 0) {
			t.Fatalf("bad content %q", r.Content)
		}
		if simpleText(s) && !strings.Contains(s, "\r") && r.Content != s {
			t.Fatalf("content %q, want %q", r.Content, s)
		}
	})
}
