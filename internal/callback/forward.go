package callback

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const (
	// DefaultForwardTimeout bounds one forwarded call when
	// ForwardConfig.Timeout is zero.
	DefaultForwardTimeout = 4 * time.Second
	// maxForwardReply is the largest reply body read from the owner's
	// service, in bytes.
	maxForwardReply = 1 << 20
	// SignatureHeader carries the hex HMAC-SHA256 of a forwarded body.
	SignatureHeader = "X-Wxauth-Signature"
)

// ForwardConfig configures [NewForwarder].
type ForwardConfig struct {
	URL        string        // absolute http(s) URL of the owner's service
	Secret     string        // HMAC-SHA256 key of the X-Wxauth-Signature header; empty = unsigned
	HTTPClient *http.Client  // nil = a client without its own timeout (Timeout applies)
	Timeout    time.Duration // per call; 0 = 4 s; the Server's budget also applies
}

// NewForwarder returns a Handler that POSTs each message as JSON to the
// owner's service and answers with the reply it returns.
//
// Request: Content-Type application/json, body the message's XML fields
// under WeChat's names, as WeChat's own JSON format has them
// ({"ToUserName": "gh_...", "FromUserName": "o...", "CreateTime": 1714112445,
// "MsgType": "text", "Content": "hi", "MsgId": 23...}; CreateTime, MsgId and
// MsgID are numbers (MsgId up to 2^64-1: decode it as an unsigned 64-bit
// integer or a string, not a float64), other leaves strings, nested elements objects, repeated
// ones arrays) plus "Encrypted" (bool) and "Mode". With a Secret, the header
// X-Wxauth-Signature is the lowercase hex HMAC-SHA256 of the body under it.
//
// Response: 200 with a JSON reply {"type": "text", "content": "..."} (any
// type of [Rules]: image/voice media_id, video, music, news articles,
// transfer_customer_service, success), or 204 / an empty body for none.
// Anything else (other statuses, bad JSON, timeouts) is an error, which the
// [Server] logs and answers "success". Errors never quote the URL's query or
// the body.
//
// It returns an error for a URL that is not absolute http(s).
func NewForwarder(cfg ForwardConfig) (Handler, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("callback: forward URL must be an absolute http(s) URL")
	}
	f := &forwarder{url: cfg.URL, secret: []byte(cfg.Secret), client: cfg.HTTPClient, timeout: cfg.Timeout}
	if f.client == nil {
		f.client = &http.Client{}
	}
	if f.timeout <= 0 {
		f.timeout = DefaultForwardTimeout
	}
	return f, nil
}

type forwarder struct {
	url     string
	secret  []byte
	client  *http.Client
	timeout time.Duration
}

// ServeMessage forwards m; see [NewForwarder].
func (f *forwarder) ServeMessage(ctx context.Context, m *Message) (Reply, error) {
	body, err := messageJSON(m)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("callback: forward: cannot build request")
	}
	req.Header.Set("Content-Type", "application/json")
	if len(f.secret) > 0 {
		mac := hmac.New(sha256.New, f.secret)
		mac.Write(body)
		req.Header.Set(SignatureHeader, hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL, whose query may hold a secret
		}
		return nil, fmt.Errorf("callback: forward: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardReply+1))
	if err != nil {
		return nil, fmt.Errorf("callback: forward: read reply: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("callback: forward: status %d", resp.StatusCode)
	case len(data) > maxForwardReply:
		return nil, errors.New("callback: forward: reply over 1 MiB")
	case len(bytes.TrimSpace(data)) == 0:
		return nil, nil
	}
	var spec replySpec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, errors.New("callback: forward: reply is not a JSON reply object")
	}
	reply, err := spec.build()
	if err != nil {
		return nil, fmt.Errorf("callback: forward: %w", err)
	}
	return reply, nil
}

// messageJSON renders the message's XML body as a JSON object under
// WeChat's field names.
func messageJSON(m *Message) ([]byte, error) {
	root, err := xmlTree(m.raw)
	if err != nil {
		return nil, fmt.Errorf("callback: forward: %w", ErrParseXML)
	}
	obj, _ := root.(map[string]any)
	if obj == nil {
		obj = map[string]any{}
	}
	for _, k := range [...]string{"CreateTime", "MsgId", "MsgID"} {
		if s, ok := obj[k].(string); ok {
			if _, err := strconv.ParseUint(s, 10, 64); err == nil {
				obj[k] = json.Number(s) // MsgId may exceed 2^63: kept as written
			} else if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				obj[k] = json.Number(s)
			}
		}
	}
	obj["Encrypted"] = m.Encrypted
	obj["Mode"] = m.Mode
	return json.Marshal(obj)
}

// xmlTree converts an XML document into nested maps: an element with child
// elements is a map (repeated names become arrays), a leaf is its text.
func xmlTree(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	type frame struct {
		obj  map[string]any
		text []byte
		name string
	}
	var stack []*frame
	var root any
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return root, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, ErrParseXML
			}
			stack = append(stack, &frame{name: t.Name.Local})
		case xml.CharData:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.text = append(top.text, t...)
			}
		case xml.EndElement:
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			var v any = string(top.text)
			if top.obj != nil {
				v = top.obj
			}
			if len(stack) == 0 {
				root = v
				continue
			}
			parent := stack[len(stack)-1]
			if parent.obj == nil {
				parent.obj = map[string]any{}
			}
			switch old := parent.obj[top.name].(type) {
			case nil:
				parent.obj[top.name] = v
			case []any:
				parent.obj[top.name] = append(old, v)
			default:
				parent.obj[top.name] = []any{old, v}
			}
		}
	}
}
