package callback

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// Message is one callback message or event as the [Server] received it: the
// common header decoded once, the arrival mode, and the plaintext XML body
// for [Message.Decode] and forwarding. Handlers must not modify it.
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
type Message struct {
	ToUserName   string // the Official Account's original id (gh_...)
	FromUserName string // the sender's openid
	CreateTime   int64  // Unix seconds, as sent by WeChat
	MsgType      string // text, image, voice, video, shortvideo, location, link, event, ...
	MsgID        uint64 // MsgId of user messages, unsigned 64-bit (real ones exceed 2^63); 0 for events
	Event        string // for MsgType "event": subscribe, SCAN, CLICK, ... (WeChat's case)
	EventKey     string // CLICK key, VIEW URL, "qrscene_<scene>" (subscribe) or "<scene>" (SCAN)
	Ticket       string // QR ticket of subscribe/SCAN events from a parameterized QR code
	Content      string // Content of text messages, found in the same pass as the header

	Encrypted bool   // the body came encrypted (encrypt_type=aes)
	Mode      string // "plain", "compat" (plain fields beside Encrypt) or "safe" (Encrypt only)

	raw []byte // plaintext XML body
}

// ParseMessage decodes the header of a plaintext callback body (the
// <xml>...</xml> document WeChat posts, or the decrypted Encrypt of safe
// mode) in one pass. The returned Message keeps body (not a copy) for
// [Message.Decode]. Errors wrap [ErrParseXML]: malformed XML, a DOCTYPE or
// other declaration, invalid characters, a non-numeric CreateTime, a MsgId
// that is not an unsigned 64-bit decimal.
func ParseMessage(body []byte) (*Message, error) {
	var h header
	if err := parseHeader(body, &h); err != nil {
		return nil, err
	}
	m := &Message{Mode: "plain"}
	m.setHeader(&h, body)
	return m, nil
}

func (m *Message) setHeader(h *header, body []byte) {
	m.ToUserName = h.ToUserName
	m.FromUserName = h.FromUserName
	m.CreateTime = h.CreateTime
	m.MsgType = h.MsgType
	m.MsgID = h.MsgID
	m.Event = h.Event
	m.EventKey = h.EventKey
	m.Ticket = h.Ticket
	m.Content = h.Content
	m.raw = body
}

// Raw returns the plaintext XML body of the message. The caller must not
// modify it.
func (m *Message) Raw() []byte { return m.raw }

// IsEvent reports whether the message is an event push (MsgType "event").
func (m *Message) IsEvent() bool { return strings.EqualFold(m.MsgType, "event") }

// Decode fills v, a pointer to one of the typed views of this package
// ([Text], [Image], [SubscribeEvent], [ClickEvent], ...) or any struct with
// encoding/xml tags, from the plaintext body. For the package's own types it
// first checks that the message is of that type (MsgType, and Event for
// events, case-insensitively). Errors: [ErrWrongType] wrapped when the type
// does not match; [ErrParseXML] wrapped when the body does not fit v (the
// detail, which could quote message contents, is not included).
func (m *Message) Decode(v any) error {
	if k, ok := v.(interface{ accepts(*Message) bool }); ok && !k.accepts(m) {
		return fmt.Errorf("callback: decode %T from MsgType %q Event %q: %w", v, m.MsgType, m.Event, ErrWrongType)
	}
	if err := xml.Unmarshal(m.raw, v); err != nil {
		return fmt.Errorf("callback: decode %T: %w", v, ErrParseXML)
	}
	return nil
}

// ErrWrongType is returned (wrapped) by [Message.Decode] when asked to fill a
// typed view of another message type.
var ErrWrongType = errors.New("callback: message is of another type")

func isMsg(m *Message, types ...string) bool {
	for _, t := range types {
		if strings.EqualFold(m.MsgType, t) {
			return true
		}
	}
	return false
}

func isEvent(m *Message, events ...string) bool {
	if !m.IsEvent() {
		return false
	}
	for _, e := range events {
		if strings.EqualFold(m.Event, e) {
			return true
		}
	}
	return false
}

// Text is a user's text message (MsgType "text").
type Text struct {
	Content   string `xml:"Content"`   // the text; may contain newlines
	MsgDataID string `xml:"MsgDataId"` // article data id when sent from an article, else ""
	Idx       int    `xml:"Idx"`       // article index (from 1) when sent from an article
}

func (*Text) accepts(m *Message) bool { return isMsg(m, "text") }

// Image is a user's image message (MsgType "image").
type Image struct {
	PicURL  string `xml:"PicUrl"`  // image URL on WeChat's CDN
	MediaID string `xml:"MediaId"` // temporary media id (3 days), for media/get
}

func (*Image) accepts(m *Message) bool { return isMsg(m, "image") }

// Voice is a user's voice message (MsgType "voice").
type Voice struct {
	MediaID     string `xml:"MediaId"`     // temporary media id
	Format      string `xml:"Format"`      // amr or speex
	MediaID16K  string `xml:"MediaId16K"`  // 16 kHz copy's media id
	Recognition string `xml:"Recognition"` // legacy speech-to-text result, often empty
}

func (*Voice) accepts(m *Message) bool { return isMsg(m, "voice") }

// Video is a user's video message (MsgType "video").
type Video struct {
	MediaID      string `xml:"MediaId"`      // temporary media id
	ThumbMediaID string `xml:"ThumbMediaId"` // thumbnail media id
}

func (*Video) accepts(m *Message) bool { return isMsg(m, "video") }

// ShortVideo is a user's short video message (MsgType "shortvideo").
type ShortVideo struct {
	MediaID      string `xml:"MediaId"`      // temporary media id
	ThumbMediaID string `xml:"ThumbMediaId"` // thumbnail media id
}

func (*ShortVideo) accepts(m *Message) bool { return isMsg(m, "shortvideo") }

// Location is a user's shared location (MsgType "location").
type Location struct {
	LocationX float64 `xml:"Location_X"` // latitude, degrees
	LocationY float64 `xml:"Location_Y"` // longitude, degrees
	Scale     int     `xml:"Scale"`      // map zoom level
	Label     string  `xml:"Label"`      // place description
}

func (*Location) accepts(m *Message) bool { return isMsg(m, "location") }

// Link is a user's shared link (MsgType "link").
type Link struct {
	Title       string `xml:"Title"`
	Description string `xml:"Description"`
	URL         string `xml:"Url"`
}

func (*Link) accepts(m *Message) bool { return isMsg(m, "link") }

// SubscribeEvent is a follow (Event "subscribe"); from a parameterized QR
// code EventKey is "qrscene_<scene>" and Ticket is set.
type SubscribeEvent struct {
	EventKey string `xml:"EventKey"`
	Ticket   string `xml:"Ticket"`
}

func (*SubscribeEvent) accepts(m *Message) bool { return isEvent(m, "subscribe") }

// Scene returns the QR scene of a follow through a parameterized QR code
// (EventKey without its "qrscene_" prefix), or "" for a plain follow.
func (e *SubscribeEvent) Scene() string {
	scene, ok := strings.CutPrefix(e.EventKey, "qrscene_")
	if !ok {
		return ""
	}
	return scene
}

// UnsubscribeEvent is an unfollow (Event "unsubscribe"); it has no fields.
type UnsubscribeEvent struct{}

func (*UnsubscribeEvent) accepts(m *Message) bool { return isEvent(m, "unsubscribe") }

// ScanEvent is a follower's scan of a parameterized QR code (Event "SCAN");
// EventKey is the scene without prefix.
type ScanEvent struct {
	EventKey string `xml:"EventKey"` // scene_id or scene_str
	Ticket   string `xml:"Ticket"`
}

func (*ScanEvent) accepts(m *Message) bool { return isEvent(m, "SCAN") }

// Scene returns the QR scene (EventKey).
func (e *ScanEvent) Scene() string { return e.EventKey }

// LocationEvent is a periodic location report (Event "LOCATION").
type LocationEvent struct {
	Latitude  float64 `xml:"Latitude"`  // degrees
	Longitude float64 `xml:"Longitude"` // degrees
	Precision float64 `xml:"Precision"` // metres
}

func (*LocationEvent) accepts(m *Message) bool { return isEvent(m, "LOCATION") }

// ClickEvent is a click on a menu button of type click (Event "CLICK").
type ClickEvent struct {
	EventKey string `xml:"EventKey"` // the button's key
}

func (*ClickEvent) accepts(m *Message) bool { return isEvent(m, "CLICK") }

// ViewEvent is a click on a menu button of type view (Event "VIEW").
type ViewEvent struct {
	EventKey string `xml:"EventKey"` // the URL opened
	MenuID   string `xml:"MenuId"`   // personalized menu id, when any
}

func (*ViewEvent) accepts(m *Message) bool { return isEvent(m, "VIEW") }

// ViewMiniprogramEvent is a click on a menu button opening a mini program
// (Event "view_miniprogram").
type ViewMiniprogramEvent struct {
	EventKey string `xml:"EventKey"` // the mini program page path
	MenuID   string `xml:"MenuId"`
}

func (*ViewMiniprogramEvent) accepts(m *Message) bool { return isEvent(m, "view_miniprogram") }

// ScanCodeEvent is a menu scan (Event "scancode_push" or "scancode_waitmsg").
type ScanCodeEvent struct {
	EventKey     string       `xml:"EventKey"`
	ScanCodeInfo ScanCodeInfo `xml:"ScanCodeInfo"`
}

// ScanCodeInfo is the result of a menu scan.
type ScanCodeInfo struct {
	ScanType   string `xml:"ScanType"`   // qrcode or barcode
	ScanResult string `xml:"ScanResult"` // the decoded content
}

func (*ScanCodeEvent) accepts(m *Message) bool {
	return isEvent(m, "scancode_push", "scancode_waitmsg")
}

// PicEvent is a menu photo (Event "pic_sysphoto", "pic_photo_or_album" or
// "pic_weixin").
type PicEvent struct {
	EventKey     string       `xml:"EventKey"`
	SendPicsInfo SendPicsInfo `xml:"SendPicsInfo"`
}

// SendPicsInfo lists the pictures sent through a menu button.
type SendPicsInfo struct {
	Count   int       `xml:"Count"`
	PicList []PicItem `xml:"PicList>item"`
}

// PicItem is one picture of [SendPicsInfo].
type PicItem struct {
	PicMD5Sum string `xml:"PicMd5Sum"` // hex MD5 of the picture
}

func (*PicEvent) accepts(m *Message) bool {
	return isEvent(m, "pic_sysphoto", "pic_photo_or_album", "pic_weixin")
}

// LocationSelectEvent is a location chosen through a menu button (Event
// "location_select").
type LocationSelectEvent struct {
	EventKey         string           `xml:"EventKey"`
	SendLocationInfo SendLocationInfo `xml:"SendLocationInfo"`
}

// SendLocationInfo is the location of a [LocationSelectEvent].
type SendLocationInfo struct {
	LocationX float64 `xml:"Location_X"` // latitude, degrees
	LocationY float64 `xml:"Location_Y"` // longitude, degrees
	Scale     int     `xml:"Scale"`
	Label     string  `xml:"Label"`
	Poiname   string  `xml:"Poiname"`
}

func (*LocationSelectEvent) accepts(m *Message) bool { return isEvent(m, "location_select") }

// TemplateSendJobFinish reports a template message delivery (Event
// "TEMPLATESENDJOBFINISH"). https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
type TemplateSendJobFinish struct {
	MsgID  uint64 `xml:"MsgID"`  // the template message id (unsigned 64-bit)
	Status string `xml:"Status"` // success, "failed:user block", "failed: system failed"
}

func (*TemplateSendJobFinish) accepts(m *Message) bool {
	return isEvent(m, "TEMPLATESENDJOBFINISH")
}

// MassSendJobFinish reports a mass send (Event "MASSSENDJOBFINISH").
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Batch_Sends_and_Originality_Checks.html
type MassSendJobFinish struct {
	MsgID       uint64 `xml:"MsgID"`  // the mass send's msg_id (unsigned 64-bit)
	Status      string `xml:"Status"` // "send success", "send fail", "err(num)"
	TotalCount  int    `xml:"TotalCount"`
	FilterCount int    `xml:"FilterCount"`
	SentCount   int    `xml:"SentCount"`
	ErrorCount  int    `xml:"ErrorCount"`
}

func (*MassSendJobFinish) accepts(m *Message) bool { return isEvent(m, "MASSSENDJOBFINISH") }

// PublishJobFinish reports a publish job (Event "PUBLISHJOBFINISH").
// https://developers.weixin.qq.com/doc/offiaccount/Publish/Callback_on_finish.html
type PublishJobFinish struct {
	PublishEventInfo PublishEventInfo `xml:"PublishEventInfo"`
}

// PublishEventInfo is the outcome of a publish job.
type PublishEventInfo struct {
	PublishID     string        `xml:"publish_id"`
	PublishStatus int           `xml:"publish_status"` // 0 success, 1 publishing, 2+ failure
	ArticleID     string        `xml:"article_id"`
	ArticleDetail ArticleDetail `xml:"article_detail"`
	FailIdx       []int         `xml:"fail_idx"` // indexes of failed articles
}

// ArticleDetail lists the published articles.
type ArticleDetail struct {
	Count int             `xml:"count"`
	Items []PublishedItem `xml:"item"`
}

// PublishedItem is one published article.
type PublishedItem struct {
	Idx        int    `xml:"idx"`
	ArticleURL string `xml:"article_url"`
}

func (*PublishJobFinish) accepts(m *Message) bool { return isEvent(m, "PUBLISHJOBFINISH") }
