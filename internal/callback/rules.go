package callback

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SampleRules is the rules file `authsvc dev` serves (testdata/rules.yaml):
// "hi" and "你好" get a text, "news" a one-article news reply, the menu
// CLICK key V1001_TODAY_MUSIC a music reply, a follow a welcome text.
//
//go:embed testdata/rules.yaml
var SampleRules []byte

// Rules is a [Handler] of automatic replies read from YAML:
//
//	keywords:                    # user text messages, first match in file order
//	  - exact: ["hi", "你好"]      # or one string; case-insensitive unless case_sensitive: true
//	    reply: {type: text, content: "Hello!"}
//	  - prefix: "order "
//	    reply: {type: text, content: "Looking it up"}
//	  - regex: '^\d{6}$'          # Go RE2 syntax, matched against the whole Content
//	    reply: {type: transfer_customer_service}
//	events:
//	  - event: subscribe          # any follow
//	    reply: {type: text, content: "Thanks for following"}
//	  - event: subscribe
//	    scene: promo              # follow through the QR code of scene "promo"; "*" any QR, "" none
//	    reply: {type: text, content: "Welcome, promo visitor"}
//	  - event: CLICK
//	    key: V1001_TODAY_MUSIC    # EventKey of the button
//	    reply: {type: music, title: "Today", music_url: "https://..."}
//	  - event: SCAN               # a follower scans a QR code; scene: matches EventKey
//	    reply: {type: success}
//	default: {type: text, content: "Type hi"}   # user messages nothing matched (never events)
//
// Reply types: text (content), image and voice (media_id), video (media_id,
// title, description), music (title, description, music_url, hq_music_url,
// thumb_media_id), news (articles: title, description, pic_url, url; 1 to
// 8), transfer_customer_service (kf_account optional), success (answer
// nothing, and stop). Event names are case-insensitive; rules naming a key
// or scene are tried before those that do not. Unknown fields are errors.
// When nothing matches, ServeMessage returns [ErrNotHandled], so Rules
// compose with [First]. A Rules is immutable and safe for concurrent use.
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
type Rules struct {
	keywords   []keywordRule
	events     []eventRule // specific (key or scene) first
	def        Reply
	hasDefault bool
	warnings   []string
}

// MaxTextReplyBytes is the longest Content of a passive text reply WeChat
// delivers, in bytes of UTF-8 (683 Chinese characters): a longer reply is
// refused and the user sees "该公众号暂时无法提供服务，请稍后再试". The limit is
// not on the passive-reply page; it is the one developers report
// (developers.weixin.qq.com/community) and the one of the customer-service
// text message.
const MaxTextReplyBytes = 2048

type keywordRule struct {
	exact  []string
	prefix []string
	re     *regexp.Regexp
	fold   bool
	reply  Reply
}

type eventRule struct {
	event string // lower case
	key   *string
	scene *string
	reply Reply
}

// rulesFile is the YAML shape of Rules.
type rulesFile struct {
	Keywords []struct {
		Exact         stringList `yaml:"exact"`
		Prefix        stringList `yaml:"prefix"`
		Regex         *string    `yaml:"regex"`
		CaseSensitive bool       `yaml:"case_sensitive"`
		Reply         *replySpec `yaml:"reply"`
	} `yaml:"keywords"`
	Events []struct {
		Event string     `yaml:"event"`
		Key   *string    `yaml:"key"`
		Scene *string    `yaml:"scene"`
		Reply *replySpec `yaml:"reply"`
	} `yaml:"events"`
	Default *replySpec `yaml:"default"`
}

// stringList is a YAML string or list of strings.
type stringList []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = stringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = s
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// LoadRules reads and parses the rules file at path (see [Rules]). Errors
// name the file and, for content errors, the rule.
func LoadRules(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("callback: rules: %w", err)
	}
	r, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return r, nil
}

// ParseRules parses rules YAML (see [Rules]); an empty document gives Rules
// that handle nothing. Errors name the rule (keywords[2], events[0]) and the
// problem: unknown field, several or no matcher, bad regex, unknown reply
// type, missing reply field.
func ParseRules(b []byte) (*Rules, error) {
	var f rulesFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("callback: rules: %w", err)
	}
	r := &Rules{}
	for i, k := range f.Keywords {
		where := fmt.Sprintf("callback: rules: keywords[%d]", i)
		kr := keywordRule{exact: k.Exact, prefix: k.Prefix, fold: !k.CaseSensitive}
		n := 0
		if len(k.Exact) > 0 {
			n++
		}
		if len(k.Prefix) > 0 {
			n++
		}
		if k.Regex != nil {
			n++
			expr := *k.Regex
			if !k.CaseSensitive {
				expr = "(?i)" + expr
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, fmt.Errorf("%s: regex: %w", where, err)
			}
			kr.re = re
		}
		if n != 1 {
			return nil, fmt.Errorf("%s: needs exactly one of exact, prefix, regex", where)
		}
		for _, s := range append(append([]string(nil), k.Exact...), k.Prefix...) {
			if strings.TrimSpace(s) == "" {
				return nil, fmt.Errorf("%s: empty keyword", where)
			}
		}
		reply, err := buildSpec(k.Reply)
		if err != nil {
			return nil, fmt.Errorf("%s: reply: %w", where, err)
		}
		kr.reply = reply
		r.keywords = append(r.keywords, kr)
		r.warn(where, reply, true)
	}
	var generic []eventRule
	for i, e := range f.Events {
		where := fmt.Sprintf("callback: rules: events[%d]", i)
		ev := strings.ToLower(strings.TrimSpace(e.Event))
		if ev == "" {
			return nil, fmt.Errorf("%s: event is missing", where)
		}
		if e.Scene != nil && ev != "subscribe" && ev != "scan" {
			return nil, fmt.Errorf("%s: scene applies to subscribe and SCAN only", where)
		}
		if e.Scene != nil && e.Key != nil {
			return nil, fmt.Errorf("%s: give key or scene, not both", where)
		}
		reply, err := buildSpec(e.Reply)
		if err != nil {
			return nil, fmt.Errorf("%s: reply: %w", where, err)
		}
		r.warn(where, reply, false)
		er := eventRule{event: ev, key: e.Key, scene: e.Scene, reply: reply}
		if e.Key != nil || e.Scene != nil {
			r.events = append(r.events, er)
		} else {
			generic = append(generic, er)
		}
	}
	r.events = append(r.events, generic...)
	if f.Default != nil {
		reply, err := f.Default.build()
		if err != nil {
			return nil, fmt.Errorf("callback: rules: default: %w", err)
		}
		r.def, r.hasDefault = reply, true
		r.warn("callback: rules: default", reply, true)
	}
	return r, nil
}

// Warnings returns one line per reply of the rules that WeChat cannot
// deliver as written, naming the rule (as ParseRules errors do): a text
// reply over [MaxTextReplyBytes], which WeChat refuses; a news reply with
// more than 1 article answering user messages (keywords, default), of
// which only the first is sent. Nil when every reply can be delivered.
// [Reloader] logs them at Warn level each time it loads the file.
func (r *Rules) Warnings() []string { return r.warnings }

// warn records what WeChat would refuse or cut in reply of rule where;
// toUser says the rule answers users' messages.
func (r *Rules) warn(where string, reply Reply, toUser bool) {
	switch v := reply.(type) {
	case TextReply:
		if n := len(v.Content); n > MaxTextReplyBytes {
			r.warnings = append(r.warnings, fmt.Sprintf("%s: reply: text content is %d bytes; WeChat refuses a passive text reply over %d bytes and the user sees 该公众号暂时无法提供服务", where, n, MaxTextReplyBytes))
		}
	case NewsReply:
		if toUser && len(v.Articles) > 1 {
			r.warnings = append(r.warnings, fmt.Sprintf("%s: reply: news with %d articles answers user messages, which WeChat allows 1: only the first is sent", where, len(v.Articles)))
		}
	}
}

func buildSpec(s *replySpec) (Reply, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: reply is missing", errSpec)
	}
	return s.build()
}

// ServeMessage answers m with the first matching rule: keywords for text
// messages, then events, then the default for user messages. Without a
// match it returns nil, [ErrNotHandled].
func (r *Rules) ServeMessage(_ context.Context, m *Message) (Reply, error) {
	if m.IsEvent() {
		for i := range r.events {
			if r.events[i].match(m) {
				return r.events[i].reply, nil
			}
		}
		return nil, ErrNotHandled
	}
	if isMsg(m, "text") {
		content := strings.TrimSpace(m.Content)
		for i := range r.keywords {
			if r.keywords[i].match(content) {
				return r.keywords[i].reply, nil
			}
		}
	}
	if r.hasDefault {
		return r.def, nil
	}
	return nil, ErrNotHandled
}

func (k *keywordRule) match(content string) bool {
	for _, e := range k.exact {
		if content == e || k.fold && strings.EqualFold(content, e) {
			return true
		}
	}
	for _, p := range k.prefix {
		if len(content) >= len(p) && (content[:len(p)] == p || k.fold && strings.EqualFold(content[:len(p)], p)) {
			return true
		}
	}
	return k.re != nil && k.re.MatchString(content)
}

func (e *eventRule) match(m *Message) bool {
	if !strings.EqualFold(m.Event, e.event) {
		return false
	}
	if e.key != nil {
		return m.EventKey == *e.key
	}
	if e.scene != nil {
		scene, fromQR := m.EventKey, true
		if e.event == "subscribe" {
			scene, fromQR = strings.CutPrefix(m.EventKey, "qrscene_")
			if !fromQR {
				scene = ""
			}
		}
		switch *e.scene {
		case "":
			return !fromQR || scene == ""
		case "*":
			return fromQR && scene != ""
		}
		return scene == *e.scene
	}
	return true
}
