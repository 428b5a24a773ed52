package callback

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

const hdr = "<ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]></FromUserName><CreateTime>1348831860</CreateTime>"

func TestMessage_Decode(t *testing.T) {
	tests := []struct {
		name string
		body string
		into any
		want any
	}{
		{"Text", "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId><MsgDataId>xxxx</MsgDataId><Idx>2</Idx>",
			&Text{}, &Text{Content: "this is a test", MsgDataID: "xxxx", Idx: 2}},
		{"Image", "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://p/1.jpg]]></PicUrl><MediaId><![CDATA[m1]]></MediaId><MsgId>1</MsgId>",
			&Image{}, &Image{PicURL: "http://p/1.jpg", MediaID: "m1"}},
		{"Voice", "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format><MediaId16K><![CDATA[m16]]></MediaId16K><Recognition><![CDATA[腾讯]]></Recognition><MsgId>1</MsgId>",
			&Voice{}, &Voice{MediaID: "m", Format: "amr", MediaID16K: "m16", Recognition: "腾讯"}},
		{"Video", "<MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>1</MsgId>",
			&Video{}, &Video{MediaID: "m", ThumbMediaID: "t"}},
		{"ShortVideo", "<MsgType><![CDATA[shortvideo]]></MsgType><MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>1</MsgId>",
			&ShortVideo{}, &ShortVideo{MediaID: "m", ThumbMediaID: "t"}},
		{"Location", "<MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>1</MsgId>",
			&Location{}, &Location{LocationX: 23.134521, LocationY: 113.358803, Scale: 20, Label: "位置信息"}},
		{"Link", "<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[d]]></Description><Url><![CDATA[url]]></Url><MsgId>1</MsgId>",
			&Link{}, &Link{Title: "公众平台官网链接", Description: "d", URL: "url"}},
		{"SubscribeQR", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
			&SubscribeEvent{}, &SubscribeEvent{EventKey: "qrscene_123123", Ticket: "TICKET"}},
		{"Unsubscribe", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event>",
			&UnsubscribeEvent{}, &UnsubscribeEvent{}},
		{"Scan", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
			&ScanEvent{}, &ScanEvent{EventKey: "SCENE_VALUE", Ticket: "TICKET"}},
		{"LocationEvent", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
			&LocationEvent{}, &LocationEvent{Latitude: 23.137466, Longitude: 113.352425, Precision: 119.38504}},
		{"Click", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[EVENTKEY]]></EventKey>",
			&ClickEvent{}, &ClickEvent{EventKey: "EVENTKEY"}},
		{"View", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[www.qq.com]]></EventKey><MenuId>MENUID</MenuId>",
			&ViewEvent{}, &ViewEvent{EventKey: "www.qq.com", MenuID: "MENUID"}},
		{"ViewMiniprogram", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[view_miniprogram]]></Event><EventKey><![CDATA[pages/index]]></EventKey><MenuId>M</MenuId>",
			&ViewMiniprogramEvent{}, &ViewMiniprogramEvent{EventKey: "pages/index", MenuID: "M"}},
		{"ScanCodePush", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_push]]></Event><EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>",
			&ScanCodeEvent{}, &ScanCodeEvent{EventKey: "6", ScanCodeInfo: ScanCodeInfo{ScanType: "qrcode", ScanResult: "1"}}},
		{"PicSysphoto", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[pic_sysphoto]]></Event><EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList></SendPicsInfo>",
			&PicEvent{}, &PicEvent{EventKey: "6", SendPicsInfo: SendPicsInfo{Count: 1, PicList: []PicItem{{PicMD5Sum: "1b5f7c23b5bf75682a53e7b6d163e185"}}}}},
		{"LocationSelect", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[location_select]]></Event><EventKey><![CDATA[6]]></EventKey><SendLocationInfo><Location_X><![CDATA[23]]></Location_X><Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale><Label><![CDATA[ 广州市海珠区]]></Label><Poiname><![CDATA[]]></Poiname></SendLocationInfo>",
			&LocationSelectEvent{}, &LocationSelectEvent{EventKey: "6", SendLocationInfo: SendLocationInfo{LocationX: 23, LocationY: 113, Scale: 15, Label: " 广州市海珠区"}}},
		{"TemplateSendJobFinish", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>",
			&TemplateSendJobFinish{}, &TemplateSendJobFinish{MsgID: 200163836, Status: "success"}},
		{"MassSendJobFinish", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>1988</MsgID><Status><![CDATA[sendsuccess]]></Status><TotalCount>100</TotalCount><FilterCount>80</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount>",
			&MassSendJobFinish{}, &MassSendJobFinish{MsgID: 1988, Status: "sendsuccess", TotalCount: 100, FilterCount: 80, SentCount: 75, ErrorCount: 5}},
		{"PublishJobFinish", "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo><publish_id>2247503051</publish_id><publish_status>0</publish_status><article_id><![CDATA[b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy]]></article_id><article_detail><count>1</count><item><idx>1</idx><article_url><![CDATA[ARTICLE_URL]]></article_url></item></article_detail></PublishEventInfo>",
			&PublishJobFinish{}, &PublishJobFinish{PublishEventInfo: PublishEventInfo{PublishID: "2247503051", ArticleID: "b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy",
				ArticleDetail: ArticleDetail{Count: 1, Items: []PublishedItem{{Idx: 1, ArticleURL: "ARTICLE_URL"}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMessage([]byte("<xml>" + hdr + tt.body + "</xml>"))
			if err != nil {
				t.Fatal(err)
			}
			if m.ToUserName != "gh_1" || m.FromUserName != "o_1" || m.CreateTime != 1348831860 {
				t.Errorf("header %+v", m)
			}
			if err := m.Decode(tt.into); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tt.into, tt.want) {
				t.Errorf("got %+v, want %+v", tt.into, tt.want)
			}
			// Every other typed view refuses the message.
			for _, other := range tests {
				if other.name == tt.name || reflect.TypeOf(other.into) == reflect.TypeOf(tt.into) {
					continue
				}
				v := reflect.New(reflect.TypeOf(other.into).Elem()).Interface()
				if err := m.Decode(v); !errors.Is(err, ErrWrongType) {
					t.Errorf("Decode(%T) = %v, want ErrWrongType", v, err)
				}
			}
		})
	}
	t.Run("Scene", func(t *testing.T) {
		if s := (&SubscribeEvent{EventKey: "qrscene_login:abc"}).Scene(); s != "login:abc" {
			t.Errorf("Scene = %q", s)
		}
		if s := (&SubscribeEvent{EventKey: ""}).Scene(); s != "" {
			t.Errorf("Scene = %q", s)
		}
		if s := (&ScanEvent{EventKey: "login:abc"}).Scene(); s != "login:abc" {
			t.Errorf("Scene = %q", s)
		}
	})
	t.Run("CaseInsensitiveType", func(t *testing.T) {
		m, _ := ParseMessage([]byte("<xml><MsgType>EVENT</MsgType><Event>scan</Event><EventKey>1</EventKey></xml>"))
		var v ScanEvent
		if err := m.Decode(&v); err != nil || v.EventKey != "1" {
			t.Errorf("Decode = %+v, %v", v, err)
		}
	})
	t.Run("BadFieldNotQuoted", func(t *testing.T) {
		m, _ := ParseMessage([]byte("<xml><MsgType>location</MsgType><Location_X>secret-ish</Location_X></xml>"))
		err := m.Decode(&Location{})
		if !errors.Is(err, ErrParseXML) || strings.Contains(err.Error(), "secret-ish") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestParseHeader(t *testing.T) {
	ok := []struct {
		name string
		in   string
		want header
	}{
		{"CDATA", "<xml><MsgType><![CDATA[text]]></MsgType></xml>", header{MsgType: "text"}},
		{"PlainText", "<xml><MsgType>text</MsgType><CreateTime> 12 </CreateTime></xml>", header{MsgType: "text", CreateTime: 12}},
		{"Entities", "<xml><Content>&lt;a&gt;&amp;&apos;&quot;&#20320;&#x597D;</Content></xml>", header{Content: "<a>&'\"你好"}},
		{"MixedPieces", "<xml><Content>a<![CDATA[b]]>c&amp;<!-- x --><![CDATA[]]]]><![CDATA[>]]></Content></xml>", header{Content: "abc&]]>"}},
		{"CRLF", "<xml><Content>a\r\nb\rc</Content></xml>", header{Content: "a\nb\nc"}},
		{"CRLFInCDATA", "<xml><Content><![CDATA[a\r\nb]]></Content></xml>", header{Content: "a\nb"}},
		{"PrologBOMComments", "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- c --><xml >\n <MsgType>text</MsgType >\n</xml >\n<!-- end -->", header{MsgType: "text"}},
		{"SelfClosing", "<xml><EventKey/><Event>CLICK</Event></xml>", header{Event: "CLICK"}},
		{"NestedSkipped", "<xml><ScanCodeInfo><ScanType>qrcode</ScanType><MsgType>nested</MsgType></ScanCodeInfo><MsgType>event</MsgType></xml>", header{MsgType: "event"}},
		{"Envelope", "<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>", header{ToUserName: "gh", Encrypt: "abc=", hasEncrypt: true}},
		{"EmptyMsgId", "<xml><MsgId></MsgId></xml>", header{}},
		{"MsgIdAbove2p63", "<xml><MsgId>9223372036854775808</MsgId></xml>", header{MsgID: 1 << 63}},
		{"MsgIdMax", "<xml><MsgId> 18446744073709551615 </MsgId></xml>", header{MsgID: 1<<64 - 1}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			var h header
			if err := parseHeader([]byte(tt.in), &h); err != nil {
				t.Fatal(err)
			}
			if h != tt.want {
				t.Errorf("got %+v, want %+v", h, tt.want)
			}
		})
	}
	bad := map[string]string{
		"Empty":           "",
		"NotXMLRoot":      "<root><MsgType>text</MsgType></root>",
		"Doctype":         "<!DOCTYPE xml><xml></xml>",
		"DoctypeInside":   "<xml><!DOCTYPE x></xml>",
		"Entity":          "<xml><!ENTITY x \"y\"><Content>&x;</Content></xml>",
		"PI":              "<xml><?php echo 1 ?></xml>",
		"SecondProlog":    "<?xml version=\"1.0\"?><?xml version=\"1.0\"?><xml></xml>",
		"UnknownEntity":   "<xml><Content>&x;</Content></xml>",
		"BareAmp":         "<xml><Content>a & b</Content></xml>",
		"CharRefNUL":      "<xml><Content>&#0;</Content></xml>",
		"CharRefHuge":     "<xml><Content>&#x110000;</Content></xml>",
		"Mismatch":        "<xml><MsgType>text</MsgTypo></xml>",
		"MismatchPrefix":  "<xml><MsgType>text</MsgTypeX></xml>",
		"Unclosed":        "<xml><MsgType>text",
		"NoRootEnd":       "<xml><MsgType>text</MsgType>",
		"TrailingJunk":    "<xml></xml>junk",
		"TwoRoots":        "<xml></xml><xml></xml>",
		"Attribute":       "<xml><MsgType a=\"1\">text</MsgType></xml>",
		"UnclosedCDATA":   "<xml><Content><![CDATA[abc</Content></xml>",
		"UnclosedComment": "<xml><!-- abc</xml>",
		"BadName":         "<xml><1a>x</1a></xml>",
		"TooDeep":         "<xml>" + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + "</xml>",
		"NulByte":         "<xml><Content>\x00</Content></xml>",
		"BadUTF8":         "<xml><Content>\xc3</Content></xml>",
		"BadCreateTime":   "<xml><CreateTime>soon</CreateTime></xml>",
		"MsgIdOverflow":   "<xml><MsgId>18446744073709551616</MsgId></xml>",
		"MsgIdNegative":   "<xml><MsgId>-1</MsgId></xml>",
	}
	for name, in := range bad {
		t.Run("Bad/"+name, func(t *testing.T) {
			var h header
			if err := parseHeader([]byte(in), &h); !errors.Is(err, ErrParseXML) {
				t.Errorf("err = %v, want ErrParseXML", err)
			}
		})
	}
}

// stdHeader decodes a header with encoding/xml, for differential fuzzing.
type stdHeader struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	MsgType      string   `xml:"MsgType"`
	Event        string   `xml:"Event"`
	EventKey     string   `xml:"EventKey"`
	Content      string   `xml:"Content"`
	Encrypt      string   `xml:"Encrypt"`
}

// FuzzParseHeader checks that the hand scanner never panics and, when it
// accepts a document that encoding/xml also accepts, agrees with it.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(textXML(1, "hello")))
	f.Add([]byte(eventXML("subscribe", "qrscene_1")))
	f.Add([]byte("<xml><Content>a&amp;<![CDATA[b]]></Content><X><Y/></X></xml>"))
	f.Add([]byte("<?xml version=\"1.0\"?><!-- c --><xml><Encrypt>abc</Encrypt></xml>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		naive := utf8.Valid(b)
		for _, r := range string(b) {
			naive = naive && isXMLChar(r)
		}
		if validXMLText(b) != naive {
			t.Fatalf("validXMLText(%q) = %v", b, !naive)
		}
		var h header
		if err := parseHeader(b, &h); err != nil {
			if !errors.Is(err, ErrParseXML) {
				t.Fatalf("error %v does not wrap ErrParseXML", err)
			}
			return
		}
		var std stdHeader
		if err := xml.Unmarshal(b, &std); err != nil {
			return // encoding/xml is stricter on something; we only need agreement when both accept
		}
		got := stdHeader{XMLName: std.XMLName, ToUserName: h.ToUserName, FromUserName: h.FromUserName, MsgType: h.MsgType,
			Event: h.Event, EventKey: h.EventKey, Content: h.Content, Encrypt: h.Encrypt}
		if got != std {
			t.Fatalf("scanner %+v\nencoding/xml %+v", got, std)
		}
	})
}

// FuzzDecryptDecode runs arbitrary ciphertexts and plaintexts through
// decryption, header scanning and every typed decode: errors are allowed,
// panics are not, and an accepted plaintext round-trips through Encrypt.
func FuzzDecryptDecode(f *testing.F) {
	c := mustCrypter(f, testKey, testAppID)
	enc, _ := c.Encrypt([]byte("0123456789abcdef"), []byte(textXML(1, "x")))
	f.Add(enc, []byte(textXML(1, "x")))
	f.Add(vecSafeEncrypt, []byte(eventXML("scancode_push", "k")))
	f.Add("", []byte("<xml><SendPicsInfo><PicList><item><PicMd5Sum>x</PicMd5Sum></item></PicList></SendPicsInfo></xml>"))
	views := func() []any {
		return []any{&Text{}, &Image{}, &Voice{}, &Video{}, &ShortVideo{}, &Location{}, &Link{}, &SubscribeEvent{},
			&ScanEvent{}, &LocationEvent{}, &ClickEvent{}, &ViewEvent{}, &ScanCodeEvent{}, &PicEvent{},
			&LocationSelectEvent{}, &TemplateSendJobFinish{}, &MassSendJobFinish{}, &PublishJobFinish{}}
	}
	f.Fuzz(func(t *testing.T, b64 string, plain []byte) {
		if msg, appID, err := c.Decrypt(b64); err == nil {
			if appID != testAppID {
				t.Fatalf("accepted appid %q", appID)
			}
			decodeAll(t, msg, views())
		}
		again, err := c.Encrypt([]byte("0123456789abcdef"), plain)
		if err != nil {
			t.Fatal(err)
		}
		msg, _, err := c.Decrypt(again)
		if err != nil || string(msg) != string(plain) {
			t.Fatalf("round trip: %v", err)
		}
		decodeAll(t, plain, views())
	})
}

func decodeAll(t *testing.T, b []byte, views []any) {
	m, err := ParseMessage(b)
	if err != nil {
		return
	}
	for _, v := range views {
		_ = m.Decode(v)
	}
	_, _ = messageJSON(m)
}
