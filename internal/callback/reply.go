package callback

import (
	"context"
	"log/slog"
	"strconv"
	"unicode/utf8"
)

// Reply is a passive reply to a callback message. The [Server] writes its
// XML by hand (no reflection), filling the header explicitly: ToUserName is
// the message's FromUserName, FromUserName the message's ToUserName,
// CreateTime the Server's clock in Unix seconds. Text goes in CDATA
// sections, split around "]]>", with characters that XML cannot carry
// (invalid UTF-8, control characters) dropped. The implementations are the
// types of this package; a nil Reply means "success".
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
type Reply interface {
	// MsgType is the reply's MsgType element: text, image, voice, video,
	// music, news or transfer_customer_service.
	MsgType() string
	appendBody(dst []byte) []byte
}

// TextReply answers with text: <Content>. Newlines are kept.
type TextReply struct {
	Content string
}

// MsgType returns "text".
func (TextReply) MsgType() string { return "text" }

func (r TextReply) appendBody(b []byte) []byte {
	return appendElem(b, "Content", r.Content)
}

// ImageReply answers with an uploaded image: <Image><MediaId/></Image>.
type ImageReply struct {
	MediaID string // media id from media/upload or material/add_material
}

// MsgType returns "image".
func (ImageReply) MsgType() string { return "image" }

func (r ImageReply) appendBody(b []byte) []byte {
	b = append(b, "<Image>"...)
	b = appendElem(b, "MediaId", r.MediaID)
	return append(b, "</Image>"...)
}

// VoiceReply answers with an uploaded voice: <Voice><MediaId/></Voice>.
type VoiceReply struct {
	MediaID string
}

// MsgType returns "voice".
func (VoiceReply) MsgType() string { return "voice" }

func (r VoiceReply) appendBody(b []byte) []byte {
	b = append(b, "<Voice>"...)
	b = appendElem(b, "MediaId", r.MediaID)
	return append(b, "</Voice>"...)
}

// VideoReply answers with an uploaded video:
// <Video><MediaId/><Title/><Description/></Video>.
type VideoReply struct {
	MediaID     string
	Title       string // optional
	Description string // optional
}

// MsgType returns "video".
func (VideoReply) MsgType() string { return "video" }

func (r VideoReply) appendBody(b []byte) []byte {
	b = append(b, "<Video>"...)
	b = appendElem(b, "MediaId", r.MediaID)
	b = appendElem(b, "Title", r.Title)
	b = appendElem(b, "Description", r.Description)
	return append(b, "</Video>"...)
}

// MusicReply answers with music:
// <Music><Title/><Description/><MusicUrl/><HQMusicUrl/><ThumbMediaId/></Music>.
type MusicReply struct {
	Title        string // optional
	Description  string // optional
	MusicURL     string // optional
	HQMusicURL   string // optional; played on Wi-Fi
	ThumbMediaID string // thumbnail media id
}

// MsgType returns "music".
func (MusicReply) MsgType() string { return "music" }

func (r MusicReply) appendBody(b []byte) []byte {
	b = append(b, "<Music>"...)
	b = appendElem(b, "Title", r.Title)
	b = appendElem(b, "Description", r.Description)
	b = appendElem(b, "MusicUrl", r.MusicURL)
	b = appendElem(b, "HQMusicUrl", r.HQMusicURL)
	b = appendElem(b, "ThumbMediaId", r.ThumbMediaID)
	return append(b, "</Music>"...)
}

// Article is one item of a [NewsReply].
type Article struct {
	Title       string
	Description string
	PicURL      string // image URL; 360x200 for the first article, 200x200 otherwise
	URL         string // opened on tap
}

// NewsReply answers with articles: <ArticleCount/><Articles><item>...</item></Articles>.
// WeChat accepts 1 article after a user's message (text, image, voice,
// video, shortvideo, location, link) and at most 8 otherwise; the Server
// trims longer lists to the limit (and logs it), and answers "success" for
// an empty one.
type NewsReply struct {
	Articles []Article
}

// MsgType returns "news".
func (NewsReply) MsgType() string { return "news" }

func (r NewsReply) appendBody(b []byte) []byte {
	b = append(b, "<ArticleCount>"...)
	b = strconv.AppendInt(b, int64(len(r.Articles)), 10)
	b = append(b, "</ArticleCount><Articles>"...)
	for _, a := range r.Articles {
		b = append(b, "<item>"...)
		b = appendElem(b, "Title", a.Title)
		b = appendElem(b, "Description", a.Description)
		b = appendElem(b, "PicUrl", a.PicURL)
		b = appendElem(b, "Url", a.URL)
		b = append(b, "</item>"...)
	}
	return append(b, "</Articles>"...)
}

// TransferReply hands the conversation to customer service
// (MsgType transfer_customer_service), optionally to one agent.
// https://developers.weixin.qq.com/doc/offiaccount/Customer_Service/Forwarding_of_messages_to_service_center.html
type TransferReply struct {
	KfAccount string // optional agent account (name@gh_id); empty = any agent
}

// MsgType returns "transfer_customer_service".
func (TransferReply) MsgType() string { return "transfer_customer_service" }

func (r TransferReply) appendBody(b []byte) []byte {
	if r.KfAccount == "" {
		return b
	}
	b = append(b, "<TransInfo>"...)
	b = appendElem(b, "KfAccount", r.KfAccount)
	return append(b, "</TransInfo>"...)
}

// Compile-time checks that every reply type is a Reply.
var (
	_ Reply = TextReply{}
	_ Reply = ImageReply{}
	_ Reply = VoiceReply{}
	_ Reply = VideoReply{}
	_ Reply = MusicReply{}
	_ Reply = NewsReply{}
	_ Reply = TransferReply{}
)

// AppendReply appends the plaintext XML of r to dst with the header
// <ToUserName>to</ToUserName><FromUserName>from</FromUserName>
// <CreateTime>createTime (Unix seconds)</CreateTime><MsgType/> and returns the
// extended buffer. It does not trim news articles (the [Server] does).
func AppendReply(dst []byte, r Reply, to, from string, createTime int64) []byte {
	dst = append(dst, "<xml>"...)
	dst = appendElem(dst, "ToUserName", to)
	dst = appendElem(dst, "FromUserName", from)
	dst = append(dst, "<CreateTime>"...)
	dst = strconv.AppendInt(dst, createTime, 10)
	dst = append(dst, "</CreateTime>"...)
	dst = appendElem(dst, "MsgType", r.MsgType())
	dst = r.appendBody(dst)
	return append(dst, "</xml>"...)
}

// appendEnvelope appends the encrypted reply envelope.
func appendEnvelope(dst []byte, encrypt, signature []byte, timestamp, nonce string) []byte {
	dst = append(dst, "<xml><Encrypt><![CDATA["...)
	dst = append(dst, encrypt...) // base64: no "]]>"
	dst = append(dst, "]]></Encrypt><MsgSignature><![CDATA["...)
	dst = append(dst, signature...) // hex
	dst = append(dst, "]]></MsgSignature><TimeStamp>"...)
	dst = appendCDATAText(dst, timestamp, false)
	dst = append(dst, "</TimeStamp>"...)
	dst = appendElem(dst, "Nonce", nonce)
	return append(dst, "</xml>"...)
}

// appendElem appends <name><![CDATA[value]]></name>.
func appendElem(b []byte, name, value string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendCDATA(b, value)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

// appendCDATA appends value as one or more CDATA sections: "]]>" is split
// across two sections, and bytes that are not XML 1.0 characters in UTF-8
// are dropped.
func appendCDATA(b []byte, value string) []byte {
	b = append(b, "<![CDATA["...)
	b = appendCDATAText(b, value, true)
	return append(b, "]]>"...)
}

// appendCDATAText appends value cleaned of non-XML characters; when cdata,
// each "]]>" of the cleaned text becomes "]]]]><![CDATA[>"; otherwise markup
// characters are escaped.
func appendCDATAText(b []byte, value string, cdata bool) []byte {
	if simpleText(value) {
		return append(b, value...)
	}
	start := len(b)
	for i := 0; i < len(value); {
		c := value[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
				// dropped: not an XML character
			case cdata && c == '>' && len(b)-start >= 2 && b[len(b)-1] == ']' && b[len(b)-2] == ']':
				// "]]>" as written (dropped bytes may have joined it):
				// end the section between "]]" and ">".
				b = append(b, "]]><![CDATA[>"...)
			case !cdata && c == '<':
				b = append(b, "&lt;"...)
			case !cdata && c == '&':
				b = append(b, "&amp;"...)
			case !cdata && c == '>':
				b = append(b, "&gt;"...)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(value[i:])
		if !(r == utf8.RuneError && size == 1) && isXMLChar(r) {
			b = append(b, value[i:i+size]...)
		}
		i += size
	}
	return b
}

// simpleText reports whether s is printable ASCII (plus tab and newlines)
// without markup characters.
func simpleText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == '<' || c == '&' || c == '>' {
			return false
		}
	}
	return true
}

// appendInt appends n in decimal.
func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// maxArticles is the number of news articles WeChat accepts in a reply to m:
// 1 after a user's message, 8 otherwise (events).
func maxArticles(m *Message) int {
	if isMsg(m, "text", "image", "voice", "video", "shortvideo", "location", "link") {
		return 1
	}
	return 8
}

// encode appends the plaintext XML of reply to dst (nothing for nil or an
// empty news reply), trimming news to WeChat's limit for m. An encodedReply
// is appended as is.
func (s *Server) encode(ctx context.Context, dst []byte, m *Message, reply Reply) []byte {
	switch r := reply.(type) {
	case nil:
		return dst
	case encodedReply:
		return append(dst, r...)
	}
	if n, ok := reply.(NewsReply); ok {
		limit := maxArticles(m)
		switch {
		case len(n.Articles) == 0:
			s.logger.LogAttrs(ctx, slog.LevelWarn, "callback news reply without articles, answering success",
				slog.String("msg_type", m.MsgType))
			return dst
		case len(n.Articles) > limit:
			s.logger.LogAttrs(ctx, slog.LevelWarn, "callback news reply trimmed",
				slog.String("msg_type", m.MsgType), slog.Int("articles", len(n.Articles)), slog.Int("limit", limit))
			reply = NewsReply{Articles: n.Articles[:limit]}
		}
	}
	return AppendReply(dst, reply, m.FromUserName, m.ToUserName, s.now().Unix())
}
