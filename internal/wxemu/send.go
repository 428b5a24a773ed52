package wxemu

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Pushing messages and events to the service's callback the way WeChat does,
// and judging its passive reply the way WeChat would.
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
const (
	maxFieldDepth = 8  // nesting of a pushed message's JSON
	maxXMLDepth   = 16 // nesting of a reply's XML
	maxNewsUser   = 1  // articles in a news reply to a user's message
	maxNews       = 8  // articles in any other news reply
	maxRepeat     = 32 // deliveries of the same bytes in one /emu/send
)

var xmlNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)

// field is one element of a pushed message, in order. value is a string
// (written as CDATA), rawText (written escaped, for numbers), []field (a
// nested element), []any (repeated <item> elements) or nil (empty).
type field struct {
	name  string
	value any
}

// rawText is element text written without CDATA, as WeChat writes numbers.
type rawText string

// decodeOrdered reads one JSON value keeping the order of object keys.
func decodeOrdered(dec *json.Decoder, depth int) (any, error) {
	if depth > maxFieldDepth {
		return nil, errors.New("message nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var fs []field
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				if !xmlNamePattern.MatchString(key) {
					return nil, fmt.Errorf("field name %q is not an XML name", key)
				}
				v, err := decodeOrdered(dec, depth+1)
				if err != nil {
					return nil, err
				}
				fs = append(fs, field{key, v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			if fs == nil {
				fs = []field{}
			}
			return fs, nil
		case '[':
			items := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec, depth+1)
				if err != nil {
					return nil, err
				}
				items = append(items, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return items, nil
		}
		return nil, errors.New("unexpected delimiter")
	case string:
		return t, nil
	case json.Number:
		return rawText(t), nil
	case bool:
		return rawText(strconv.FormatBool(t)), nil
	case nil:
		return nil, nil
	}
	return nil, errors.New("unexpected JSON token")
}

// writeCDATA writes s as CDATA, splitting any "]]>" across two sections.
func writeCDATA(b *bytes.Buffer, s string) {
	b.WriteString("<![CDATA[")
	b.WriteString(strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>"))
	b.WriteString("]]>")
}

func writeElem(b *bytes.Buffer, name string, v any) {
	b.WriteString("<" + name + ">")
	switch x := v.(type) {
	case string:
		writeCDATA(b, x)
	case rawText:
		_ = xml.EscapeText(b, []byte(x))
	case []field:
		for _, f := range x {
			writeElem(b, f.name, f.value)
		}
	case []any:
		for _, it := range x {
			writeElem(b, "item", it)
		}
	}
	b.WriteString("</" + name + ">")
}

// header names the emulator sets itself; the same keys in a message are
// dropped (use the from/create_time/msg_id options instead).
func isHeader(name string) bool {
	switch name {
	case "ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "MsgID":
		return true
	}
	return false
}

// buildMessage writes a pushed message's XML as WeChat does: ToUserName,
// FromUserName, CreateTime, MsgType, the message's own fields in order, and
// MsgId last for anything but an event.
func buildMessage(to, from string, createTime, msgID int64, msgType string, fields []field) []byte {
	var b bytes.Buffer
	b.WriteString("<xml>")
	writeElem(&b, "ToUserName", to)
	writeElem(&b, "FromUserName", from)
	writeElem(&b, "CreateTime", rawText(strconv.FormatInt(createTime, 10)))
	writeElem(&b, "MsgType", msgType)
	for _, f := range fields {
		if !isHeader(f.name) {
			writeElem(&b, f.name, f.value)
		}
	}
	if msgType != "event" {
		writeElem(&b, "MsgId", rawText(strconv.FormatInt(msgID, 10)))
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

// sendOptions are the knobs of POST /emu/send.
type sendOptions struct {
	Repeat     int    `json:"repeat"`
	Concurrent bool   `json:"concurrent"`
	Timestamp  *int64 `json:"timestamp"`
	CreateTime *int64 `json:"create_time"`
	MsgID      *int64 `json:"msg_id"`
}

// push is one prepared callback request: the same bytes for every delivery.
type push struct {
	cb         callbackConfig
	appID      string
	originalID string
	from       string
	userMsg    bool // a user's message (not an event): news replies get 1 article
	plain      []byte
	body       []byte
	target     string // callback URL with the query
	msgID      int64
	timestamp  int64
	nonce      string
}

// prepare builds, signs and (per mode) encrypts a push.
func (e *Emulator) prepare(from string, msgType string, fields []field, opt sendOptions) (*push, error) {
	e.mu.Lock()
	cb := e.cb
	now := e.now()
	e.mu.Unlock()
	if cb.url == "" {
		return nil, errNoCallback
	}
	p := &push{cb: cb, appID: e.appID, originalID: e.originalID, from: from, userMsg: msgType != "event"}
	p.timestamp = now.Unix()
	if opt.Timestamp != nil {
		p.timestamp = *opt.Timestamp
	}
	createTime := now.Unix()
	if opt.CreateTime != nil {
		createTime = *opt.CreateTime
	}
	if p.userMsg {
		if opt.MsgID != nil {
			p.msgID = *opt.MsgID
		} else {
			var b [8]byte
			e.random(b[:])
			// WeChat's MsgIds are 64-bit, typically 17-19 digits.
			p.msgID = int64(binary.BigEndian.Uint64(b[:])>>2) + 1e16
		}
	}
	p.plain = buildMessage(e.originalID, from, createTime, p.msgID, msgType, fields)
	p.nonce = e.randomDigits()
	ts := strconv.FormatInt(p.timestamp, 10)
	q := url.Values{}
	q.Set("signature", Signature(cb.token, ts, p.nonce))
	q.Set("timestamp", ts)
	q.Set("nonce", p.nonce)
	q.Set("openid", from)
	p.body = p.plain
	if cb.mode != "plain" {
		rnd := make([]byte, 16)
		e.random(rnd)
		enc, err := Encrypt(cb.aesKey, e.appID, rnd, p.plain)
		if err != nil {
			return nil, fmt.Errorf("encrypt push: %w", err)
		}
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", Signature(cb.token, ts, p.nonce, enc))
		var b bytes.Buffer
		if cb.mode == "safe" {
			b.WriteString("<xml>")
			writeElem(&b, "ToUserName", e.originalID)
			writeElem(&b, "Encrypt", enc)
			b.WriteString("</xml>")
		} else {
			b.Write(p.plain[:len(p.plain)-len("</xml>")])
			writeElem(&b, "Encrypt", enc)
			b.WriteString("</xml>")
		}
		p.body = b.Bytes()
	}
	sep := "?"
	if strings.Contains(cb.url, "?") {
		sep = "&"
	}
	p.target = cb.url + sep + q.Encode()
	return p, nil
}

var errNoCallback = errors.New("no callback URL configured (Config.CallbackURL, SetCallback or POST /emu/callback)")

// sendResult is the outcome of one push (up to three deliveries).
type sendResult struct {
	Deliveries int            `json:"deliveries"`
	Status     int            `json:"status"`
	Reply      map[string]any `json:"reply"`
	Raw        string         `json:"raw"`
	Plain      string         `json:"plain,omitempty"`
	Valid      bool           `json:"valid"`
	Error      string         `json:"error"`
}

// deliver posts p to the callback, redelivering after a timeout, a transport
// error or a non-200 status (3 deliveries in all), and judges the reply.
func (e *Emulator) deliver(ctx context.Context, p *push) sendResult {
	var res sendResult
	var last string
	for attempt := 0; attempt < deliveryAttempts && ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			e.behaviour(ctx, "redelivery", "no valid answer: WeChat delivers the same push again", slog.Int("delivery", attempt+1), slog.String("after", last))
		}
		res.Deliveries++
		status, body, err := e.post(ctx, p)
		res.Status = status
		if err != nil {
			last = err.Error()
			continue
		}
		if status != http.StatusOK {
			last = fmt.Sprintf("callback answered HTTP %d", status)
			continue
		}
		res.Raw = string(body)
		reply, plain, err := checkReply(p, body)
		res.Reply, res.Plain = reply, plain
		if err != nil {
			res.Error = err.Error()
			return res
		}
		res.Valid = true
		return res
	}
	if last == "" && ctx.Err() != nil {
		last = ctx.Err().Error()
	}
	res.Error = fmt.Sprintf("no valid answer after %d deliveries: %s (the user sees 该公众号暂时无法提供服务，请稍后再试)", res.Deliveries, last)
	return res
}

// post makes one delivery bounded by WeChat's 5 s.
func (e *Emulator) post(ctx context.Context, p *push) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.target, bytes.NewReader(p.body))
	if err != nil {
		return 0, nil, errors.New("bad callback URL")
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "Mozilla/4.0")
	resp, err := e.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return 0, nil, errors.New("timeout: no answer within 5 s")
			}
			return 0, nil, fmt.Errorf("delivery failed: %w", ue.Err)
		}
		return 0, nil, errors.New("delivery failed")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, errors.New("reading the answer failed")
	}
	return resp.StatusCode, body, nil
}

// sendResponse is the JSON of POST /emu/send and its shortcuts.
type sendResponse struct {
	sendResult
	Replies   []sendResult `json:"replies,omitempty"`
	Sent      string       `json:"sent"`  // the plaintext XML message
	Body      string       `json:"body"`  // the bytes posted
	Query     string       `json:"query"` // the query string posted
	MsgID     int64        `json:"msg_id,omitempty"`
	Timestamp int64        `json:"timestamp"`
	Nonce     string       `json:"nonce"`
}

// run delivers a prepared push opt.Repeat times (at least once), in
// sequence or concurrently.
func (e *Emulator) run(ctx context.Context, p *push, opt sendOptions) sendResponse {
	n := max(opt.Repeat, 1)
	results := make([]sendResult, n)
	if opt.Concurrent && n > 1 {
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() { results[i] = e.deliver(ctx, p) })
		}
		wg.Wait()
	} else {
		for i := range results {
			results[i] = e.deliver(ctx, p)
		}
	}
	resp := sendResponse{
		sendResult: results[0],
		Sent:       string(p.plain),
		Body:       string(p.body),
		Query:      p.target[strings.Index(p.target, "?")+1:],
		MsgID:      p.msgID,
		Timestamp:  p.timestamp,
		Nonce:      p.nonce,
	}
	if n > 1 {
		resp.Replies = results
		resp.Deliveries = 0
		for _, r := range results {
			resp.Deliveries += r.Deliveries
		}
	}
	return resp
}

// handleSend serves POST /emu/send {"from": openid, "message": {...},
// "repeat", "concurrent", "timestamp", "create_time", "msg_id"}.
func (e *Emulator) handleSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From    string          `json:"from"`
		Message json.RawMessage `json:"message"`
		sendOptions
	}
	if !readControl(w, r, &req) {
		return
	}
	if !openIDPattern.MatchString(req.From) {
		ctlError(w, http.StatusBadRequest, "from: want an openid")
		return
	}
	if req.Repeat < 0 || req.Repeat > maxRepeat {
		ctlError(w, http.StatusBadRequest, "repeat: want 0-%d", maxRepeat)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(req.Message))
	dec.UseNumber()
	v, err := decodeOrdered(dec, 0)
	fields, ok := v.([]field)
	if err != nil || !ok {
		ctlError(w, http.StatusBadRequest, "message: want a JSON object of XML fields")
		return
	}
	msgType := ""
	for _, f := range fields {
		if f.name == "MsgType" {
			msgType, _ = f.value.(string)
		}
	}
	if msgType == "" {
		ctlError(w, http.StatusBadRequest, "message: MsgType (a string) is required")
		return
	}
	e.pushFields(w, r, req.From, msgType, fields, req.sendOptions)
}

// pushEvent pushes an event (MsgType=event) with the given fields.
func (e *Emulator) pushEvent(w http.ResponseWriter, r *http.Request, from string, fields []field) {
	e.pushFields(w, r, from, "event", fields, sendOptions{})
}

func (e *Emulator) pushFields(w http.ResponseWriter, r *http.Request, from, msgType string, fields []field, opt sendOptions) {
	p, err := e.prepare(from, msgType, fields, opt)
	if errors.Is(err, errNoCallback) {
		ctlError(w, http.StatusConflict, "%v", err)
		return
	}
	if err != nil {
		ctlError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	ctx := r.Context()
	res := e.run(ctx, p, opt)
	attrs := []slog.Attr{slog.String("msgtype", msgType), slog.String("from", from), slog.String("mode", p.cb.mode), slog.Int("deliveries", res.Deliveries)}
	switch {
	case res.Valid:
		e.behaviour(ctx, "push", "pushed to the callback; the reply is valid", attrs...)
	default:
		e.behaviour(ctx, "reply_refused", "pushed to the callback; WeChat refuses the answer: "+res.Error, attrs...)
	}
	writeJSON(w, http.StatusOK, res)
}
