package wxemu

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Judging the service's passive reply the way WeChat would.
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html

// xnode is a parsed XML element.
type xnode struct {
	name string
	text string
	kids []*xnode
}

func (n *xnode) child(name string) *xnode {
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// childText returns the text of a child element and whether it exists.
func (n *xnode) childText(name string) (string, bool) {
	if c := n.child(name); c != nil {
		return c.text, true
	}
	return "", false
}

// value turns an element into JSON-able data: text for a leaf, an array for
// <item> lists, an object otherwise.
func (n *xnode) value() any {
	if len(n.kids) == 0 {
		return n.text
	}
	items := true
	for _, k := range n.kids {
		items = items && k.name == "item"
	}
	if items {
		arr := make([]any, 0, len(n.kids))
		for _, k := range n.kids {
			arr = append(arr, k.value())
		}
		return arr
	}
	m := make(map[string]any, len(n.kids))
	for _, k := range n.kids {
		m[k.name] = k.value()
	}
	return m
}

// parseXML parses one well-formed XML document without DTDs.
func parseXML(b []byte) (*xnode, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	var root *xnode
	var stack []*xnode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("malformed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: t.Name.Local}
			switch {
			case len(stack) > 0:
				top := stack[len(stack)-1]
				top.kids = append(top.kids, n)
			case root != nil:
				return nil, errors.New("malformed XML: more than one root element")
			default:
				root = n
			}
			if len(stack) >= maxXMLDepth {
				return nil, errors.New("malformed XML: nested too deeply")
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("malformed XML: text outside the root element")
			}
		case xml.Directive:
			return nil, errors.New("malformed XML: DOCTYPE not allowed")
		}
	}
	if root == nil {
		return nil, errors.New("malformed XML: no root element")
	}
	return root, nil
}

// checkReply judges a callback answer as WeChat does. It returns the decoded
// reply (nil for no reply), the decrypted XML for an encrypted reply, and
// the reason the reply is invalid.
func checkReply(p *push, body []byte) (map[string]any, string, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || string(trimmed) == "success" {
		return nil, "", nil
	}
	root, err := parseXML(trimmed)
	if err != nil {
		return nil, "", err
	}
	if root.name != "xml" {
		return nil, "", fmt.Errorf("reply root element is <%s>, want <xml>", root.name)
	}
	plain := ""
	if enc, ok := root.childText("Encrypt"); ok {
		if p.cb.mode == "plain" {
			return nil, "", errors.New("encrypted reply in plaintext mode")
		}
		sig, _ := root.childText("MsgSignature")
		ts, _ := root.childText("TimeStamp")
		nonce, _ := root.childText("Nonce")
		if sig == "" || ts == "" || nonce == "" {
			return nil, "", errors.New("encrypted reply lacks MsgSignature, TimeStamp or Nonce")
		}
		if !equalSignature(sig, Signature(p.cb.token, ts, nonce, enc)) {
			return nil, "", errors.New("reply MsgSignature does not match (WXBizMsgCrypt -40001)")
		}
		_, msg, err := Decrypt(p.cb.aesKey, p.appID, enc)
		if err != nil {
			return nil, "", fmt.Errorf("reply Encrypt: %w", err)
		}
		plain = string(msg)
		root, err = parseXML(msg)
		if err != nil {
			return nil, plain, fmt.Errorf("decrypted reply: %w", err)
		}
		if root.name != "xml" {
			return nil, plain, fmt.Errorf("decrypted reply root element is <%s>, want <xml>", root.name)
		}
	} else if p.cb.mode == "safe" {
		return nil, "", errors.New("safe mode needs an encrypted reply (<Encrypt>, <MsgSignature>, <TimeStamp>, <Nonce>)")
	}
	reply, _ := root.value().(map[string]any)
	if reply == nil {
		reply = map[string]any{}
	}
	return reply, plain, checkReplyFields(p, root)
}

// checkReplyFields checks a plaintext passive reply: swapped user names, a
// CreateTime, a known MsgType and its body.
func checkReplyFields(p *push, root *xnode) error {
	to, _ := root.childText("ToUserName")
	from, _ := root.childText("FromUserName")
	if to != p.from {
		return errors.New("reply ToUserName is not the user's openid")
	}
	if from != p.originalID {
		return errors.New("reply FromUserName is not the account's original id")
	}
	ct, _ := root.childText("CreateTime")
	if _, err := strconv.ParseInt(strings.TrimSpace(ct), 10, 64); err != nil {
		return errors.New("reply CreateTime is not an integer")
	}
	msgType, _ := root.childText("MsgType")
	need := func(path ...string) error {
		n := root
		for _, name := range path {
			if n = n.child(name); n == nil {
				return fmt.Errorf("%s reply lacks <%s>", msgType, strings.Join(path, "><"))
			}
		}
		if n.text == "" && len(n.kids) == 0 && len(path) > 1 {
			return fmt.Errorf("%s reply has an empty <%s>", msgType, strings.Join(path, "><"))
		}
		return nil
	}
	switch msgType {
	case "text":
		if err := need("Content"); err != nil {
			return err
		}
		if c, _ := root.childText("Content"); len(c) > maxTextReply {
			return fmt.Errorf("text reply Content is %d bytes; WeChat delivers at most %d", len(c), maxTextReply)
		}
		return nil
	case "image":
		return need("Image", "MediaId")
	case "voice":
		return need("Voice", "MediaId")
	case "video":
		return need("Video", "MediaId")
	case "music":
		return need("Music", "ThumbMediaId")
	case "transfer_customer_service":
		return nil
	case "news":
		if err := need("Articles"); err != nil {
			return err
		}
		count, _ := root.childText("ArticleCount")
		n, err := strconv.Atoi(strings.TrimSpace(count))
		items := 0
		for _, k := range root.child("Articles").kids {
			if k.name == "item" {
				items++
			}
		}
		switch {
		case err != nil:
			return errors.New("news reply ArticleCount is not an integer")
		case n != items:
			return fmt.Errorf("news reply ArticleCount %d but %d articles", n, items)
		case n < 1:
			return errors.New("news reply has no article")
		case p.userMsg && n > maxNewsUser:
			return fmt.Errorf("news reply to a user's message may carry %d article, not %d", maxNewsUser, n)
		case n > maxNews:
			return fmt.Errorf("news reply may carry at most %d articles, not %d", maxNews, n)
		}
		return nil
	case "":
		return errors.New("reply lacks MsgType")
	}
	return fmt.Errorf("unknown reply MsgType %q", msgType)
}
