package callback

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds element nesting in a callback body; WeChat's deepest is 4.
const maxDepth = 16

// header holds what the Server needs from a callback body (the envelope or
// the plaintext message), found in one pass by parseHeader.
type header struct {
	ToUserName   string
	FromUserName string
	CreateTime   int64
	MsgType      string
	MsgID        uint64
	Event        string
	EventKey     string
	Ticket       string
	Content      string
	Encrypt      string
	hasEncrypt   bool
}

// parseHeader scans a callback XML document of the shape
// <xml><Name>value</Name>...</xml> and fills h with the top-level fields it
// knows; nested elements (ScanCodeInfo, SendPicsInfo...) are checked for
// well-formedness and skipped. It rejects DOCTYPE and any other markup
// declaration, processing instructions after the prolog, attributes,
// invalid UTF-8, characters outside XML 1.0, unknown entities and
// mismatched tags, returning an error wrapping [ErrParseXML]. It does not
// allocate beyond the strings of h (and a scratch buffer for values that mix
// CDATA, text and entities).
func parseHeader(b []byte, h *header) error {
	if !validXMLText(b) {
		return ErrParseXML
	}
	s := scanner{b: b}
	if bytes.HasPrefix(s.b, []byte("\xef\xbb\xbf")) {
		s.i = 3
	}
	if err := s.misc(true); err != nil {
		return err
	}
	if !s.consume("<xml") {
		return ErrParseXML
	}
	s.space()
	if !s.consume(">") {
		return ErrParseXML
	}
	for {
		if err := s.misc(false); err != nil {
			return err
		}
		if s.consume("</xml") {
			s.space()
			if !s.consume(">") {
				return ErrParseXML
			}
			if err := s.misc(false); err != nil {
				return err
			}
			if s.i != len(s.b) {
				return ErrParseXML
			}
			return nil
		}
		if !s.consume("<") {
			return ErrParseXML
		}
		name, empty, err := s.startTag()
		if err != nil {
			return err
		}
		var val []byte
		if !empty {
			if val, err = s.content(name, 1); err != nil {
				return err
			}
		}
		if err := h.set(name, val); err != nil {
			return err
		}
	}
}

// set stores the value of the top-level element name.
func (h *header) set(name, val []byte) error {
	var err error
	switch string(name) {
	case "ToUserName":
		h.ToUserName = string(val)
	case "FromUserName":
		h.FromUserName = string(val)
	case "CreateTime":
		h.CreateTime, err = parseInt(val)
	case "MsgType":
		h.MsgType = intern(val)
	case "MsgId":
		h.MsgID, err = parseUint(val)
	case "Event":
		h.Event = intern(val)
	case "EventKey":
		h.EventKey = string(val)
	case "Ticket":
		h.Ticket = string(val)
	case "Content":
		h.Content = string(val)
	case "Encrypt":
		h.Encrypt = string(val)
		h.hasEncrypt = true
	}
	return err
}

// intern returns the common MsgType and Event values without allocating.
func intern(val []byte) string {
	switch string(val) {
	case "text":
		return "text"
	case "image":
		return "image"
	case "voice":
		return "voice"
	case "event":
		return "event"
	case "subscribe":
		return "subscribe"
	case "unsubscribe":
		return "unsubscribe"
	case "SCAN":
		return "SCAN"
	case "CLICK":
		return "CLICK"
	case "VIEW":
		return "VIEW"
	case "LOCATION":
		return "LOCATION"
	}
	return string(val)
}

// parseUint parses an unsigned 64-bit decimal (MsgId: WeChat's ids use the
// whole range, above 2^63 included) surrounded by optional XML whitespace;
// empty is 0, as encoding/xml does.
func parseUint(b []byte) (uint64, error) {
	b = bytes.Trim(b, " \t\r\n")
	if len(b) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, ErrParseXML
	}
	return n, nil
}

// parseInt parses a decimal integer surrounded by optional XML whitespace;
// empty is 0, as encoding/xml does.
func parseInt(b []byte) (int64, error) {
	b = bytes.Trim(b, " \t\r\n")
	if len(b) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, ErrParseXML
	}
	return n, nil
}

// scanner walks b from i.
type scanner struct {
	b       []byte
	i       int
	scratch []byte
}

func (s *scanner) consume(p string) bool {
	if len(s.b)-s.i >= len(p) && string(s.b[s.i:s.i+len(p)]) == p {
		s.i += len(p)
		return true
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// misc skips whitespace and comments, and in the prolog one XML
// declaration. DOCTYPE and other declarations are errors.
func (s *scanner) misc(prolog bool) error {
	for {
		s.space()
		switch {
		case s.consume("<!--"):
			end := bytes.Index(s.b[s.i:], []byte("-->"))
			if end < 0 {
				return ErrParseXML
			}
			s.i += end + 3
		case prolog && s.consume("<?xml"):
			end := bytes.Index(s.b[s.i:], []byte("?>"))
			if end < 0 {
				return ErrParseXML
			}
			s.i += end + 2
			prolog = false
		case s.i+1 < len(s.b) && s.b[s.i] == '<' && (s.b[s.i+1] == '!' || s.b[s.i+1] == '?'):
			return ErrParseXML // DOCTYPE, ENTITY, processing instructions
		default:
			return nil
		}
	}
}

// startTag reads a tag name after '<' and the closing '>' or '/>'.
func (s *scanner) startTag() (name []byte, empty bool, err error) {
	start := s.i
	for s.i < len(s.b) && isNameByte(s.b[s.i], s.i == start) {
		s.i++
	}
	if s.i == start {
		return nil, false, ErrParseXML
	}
	name = s.b[start:s.i]
	s.space()
	switch {
	case s.consume("/>"):
		return name, true, nil
	case s.consume(">"):
		return name, false, nil
	}
	return nil, false, ErrParseXML // attributes are not part of WeChat's XML
}

func isNameByte(c byte, first bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		return true
	case '0' <= c && c <= '9', c == '-', c == '.':
		return !first
	}
	return false
}

// content reads an element's content up to and including </name> and
// returns its character data (text with entities decoded and CDATA
// sections, concatenated, line ends normalized). Nested elements are
// checked and skipped. The result aliases s.b or s.scratch.
func (s *scanner) content(name []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, ErrParseXML
	}
	var first []byte
	pieces := 0
	add := func(p []byte, text bool) error {
		if text && bytes.IndexByte(p, '&') < 0 && bytes.IndexByte(p, '\r') < 0 || !text && bytes.IndexByte(p, '\r') < 0 {
			if pieces == 0 {
				first = p
				pieces = 1
				return nil
			}
		}
		if pieces == 1 {
			s.scratch = append(s.scratch[:0], first...)
		} else if pieces == 0 {
			s.scratch = s.scratch[:0]
		}
		pieces = 2
		var err error
		s.scratch, err = appendCharData(s.scratch, p, text)
		return err
	}
	for s.i < len(s.b) {
		if s.b[s.i] != '<' {
			end := bytes.IndexByte(s.b[s.i:], '<')
			if end < 0 {
				return nil, ErrParseXML
			}
			if err := add(s.b[s.i:s.i+end], true); err != nil {
				return nil, err
			}
			s.i += end
			continue
		}
		switch {
		case s.consume("<![CDATA["):
			end := bytes.Index(s.b[s.i:], []byte("]]>"))
			if end < 0 {
				return nil, ErrParseXML
			}
			if err := add(s.b[s.i:s.i+end], false); err != nil {
				return nil, err
			}
			s.i += end + 3
		case s.consume("<!--"):
			end := bytes.Index(s.b[s.i:], []byte("-->"))
			if end < 0 {
				return nil, ErrParseXML
			}
			s.i += end + 3
		case s.consume("</"):
			if !bytes.HasPrefix(s.b[s.i:], name) {
				return nil, ErrParseXML
			}
			s.i += len(name)
			s.space()
			if !s.consume(">") {
				return nil, ErrParseXML
			}
			switch pieces {
			case 0:
				return nil, nil
			case 1:
				return first, nil
			}
			return s.scratch, nil
		case s.i+1 < len(s.b) && (s.b[s.i+1] == '!' || s.b[s.i+1] == '?'):
			return nil, ErrParseXML
		default:
			s.i++
			child, empty, err := s.startTag()
			if err != nil {
				return nil, err
			}
			if !empty {
				saved := s.scratch
				s.scratch = nil
				_, err := s.content(child, depth+1)
				s.scratch = saved
				if err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, ErrParseXML
}

// appendCharData appends p to dst, normalizing "\r\n" and "\r" to "\n" and,
// when text, decoding the five predefined entities and character
// references.
func appendCharData(dst, p []byte, text bool) ([]byte, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\r':
			dst = append(dst, '\n')
			if i+1 < len(p) && p[i+1] == '\n' {
				i++
			}
		case c == '&' && text:
			end := bytes.IndexByte(p[i:], ';')
			if end < 0 {
				return dst, ErrParseXML
			}
			ent := p[i+1 : i+end]
			i += end
			switch string(ent) {
			case "lt":
				dst = append(dst, '<')
			case "gt":
				dst = append(dst, '>')
			case "amp":
				dst = append(dst, '&')
			case "apos":
				dst = append(dst, '\'')
			case "quot":
				dst = append(dst, '"')
			default:
				r, ok := charRef(ent)
				if !ok {
					return dst, ErrParseXML
				}
				dst = utf8.AppendRune(dst, r)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// charRef decodes "#123" or "#x7B" to a character allowed in XML 1.0.
func charRef(ent []byte) (rune, bool) {
	if len(ent) < 2 || ent[0] != '#' {
		return 0, false
	}
	base, digits := 10, ent[1:]
	if digits[0] == 'x' {
		base, digits = 16, digits[1:]
	}
	if len(digits) == 0 || len(digits) > 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(digits), base, 32)
	if err != nil || !isXMLChar(rune(n)) {
		return 0, false
	}
	return rune(n), true
}

// isXMLChar reports whether r is a Char of XML 1.0.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// validXMLText reports whether b is UTF-8 made only of XML 1.0 characters.
func validXMLText(b []byte) bool {
	const lo, hi = 0x2020202020202020, 0x8080808080808080
	for i := 0; i < len(b); {
		// Fast path: 8 bytes of printable ASCII at a time.
		if i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			if x&hi == 0 && (x-lo)&^x&hi == 0 {
				i += 8
				continue
			}
		}
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
			return false
		}
		i += size
	}
	return true
}
