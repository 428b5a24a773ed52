package callback

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestServer_Corpus parses and answers every body of testdata/corpus (see
// its README for each file's source), in plaintext and in safe mode: the
// header is decoded, the typed view fills, and WeChat gets a valid answer.
func TestServer_Corpus(t *testing.T) {
	for _, tc := range []struct {
		file, msgType, event string
		msgID                uint64
		view                 any // typed view to decode; nil: none (or placeholders)
	}{
		// doc_text.xml: the page's <Idx>xxxx</Idx> is not a number, so
		// the Text view (Idx int) does not decode it; the header does.
		{"doc_text.xml", "text", "", 1234567890123456, nil},
		{"doc_text_kf.xml", "text", "", 1234567890123456, &Text{}},
		{"doc_image.xml", "image", "", 1234567890123456, &Image{}},
		{"doc_voice.xml", "voice", "", 1234567890123456, &Voice{}},
		{"doc_voice_recognition.xml", "voice", "", 1234567890123456, &Voice{}},
		{"doc_video.xml", "video", "", 1234567890123456, &Video{}},
		{"doc_shortvideo.xml", "shortvideo", "", 1234567890123456, &ShortVideo{}},
		{"doc_location.xml", "location", "", 1234567890123456, &Location{}},
		{"doc_link.xml", "link", "", 1234567890123456, &Link{}},
		{"doc_event_subscribe.xml", "event", "subscribe", 0, &SubscribeEvent{}},
		{"doc_event_unsubscribe.xml", "event", "unsubscribe", 0, &UnsubscribeEvent{}},
		{"doc_event_subscribe_qrscene.xml", "event", "subscribe", 0, &SubscribeEvent{}},
		{"doc_event_scan.xml", "event", "SCAN", 0, &ScanEvent{}},
		{"doc_event_location.xml", "event", "LOCATION", 0, &LocationEvent{}},
		{"doc_event_click.xml", "event", "CLICK", 0, &ClickEvent{}},
		{"doc_event_view.xml", "event", "VIEW", 0, &ViewEvent{}},
		{"doc_event_scancode_push.xml", "event", "scancode_push", 0, &ScanCodeEvent{}},
		{"doc_event_scancode_waitmsg.xml", "event", "scancode_waitmsg", 0, &ScanCodeEvent{}},
		{"doc_event_pic_sysphoto.xml", "event", "pic_sysphoto", 0, &PicEvent{}},
		{"doc_event_pic_photo_or_album.xml", "event", "pic_photo_or_album", 0, &PicEvent{}},
		{"doc_event_pic_weixin.xml", "event", "pic_weixin", 0, &PicEvent{}},
		{"doc_event_location_select.xml", "event", "location_select", 0, &LocationSelectEvent{}},
		{"doc_event_view_miniprogram.xml", "event", "view_miniprogram", 0, &ViewMiniprogramEvent{}},
		{"doc_event_templatesendjobfinish.xml", "event", "TEMPLATESENDJOBFINISH", 0, &TemplateSendJobFinish{}},
		{"doc_event_masssendjobfinish.xml", "event", "MASSSENDJOBFINISH", 0, &MassSendJobFinish{}},
		{"doc_event_publishjobfinish.xml", "event", "PUBLISHJOBFINISH", 0, nil},
		{"range_msgid_above_2p63.xml", "text", "", 1 << 63, &Text{}},
		{"range_msgid_max.xml", "image", "", 1<<64 - 1, &Image{}},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".xml"), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "corpus", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseMessage(body)
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if m.MsgType != tc.msgType || m.Event != tc.event || m.MsgID != tc.msgID || m.FromUserName == "" || m.CreateTime == 0 {
				t.Fatalf("header %+v", m)
			}
			if tc.view != nil {
				if err := m.Decode(tc.view); err != nil {
					t.Fatalf("Decode(%T): %v", tc.view, err)
				}
			}
			// Answer: messages get a text naming what was understood,
			// events nothing (success).
			h := HandlerFunc(func(_ context.Context, m *Message) (Reply, error) {
				if m.IsEvent() {
					return nil, nil
				}
				return TextReply{Content: m.MsgType + " " + strconv.FormatUint(m.MsgID, 10)}, nil
			})
			for _, mode := range []string{"plain", "safe"} {
				e := newEnv(t, h, func(c *Config) { c.Mode, c.OriginalID = mode, "" })
				r := plainRequest(string(body), strconv.FormatInt(testNow, 10))
				if mode == "safe" {
					r = safeRequest(t, testKey, string(body), strconv.FormatInt(testNow, 10), false)
				}
				w := e.serve(r)
				if w.Code != 200 {
					t.Fatalf("%s: HTTP %d %s", mode, w.Code, w.Body.String())
				}
				out := w.Body.String()
				if tc.msgType == "event" {
					if out != "success" && out != "" {
						t.Errorf("%s: event answered %q, want success", mode, out)
					}
					continue
				}
				if mode == "safe" {
					out = openReply(t, testKey, w.Body.Bytes())
				}
				rep := parseReply(t, out)
				if rep.ToUserName != m.FromUserName || rep.MsgType != "text" || rep.Content != tc.msgType+" "+strconv.FormatUint(tc.msgID, 10) {
					t.Errorf("%s: reply %+v", mode, rep)
				}
			}
		})
	}
}
