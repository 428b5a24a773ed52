package callback

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Reading a callback request: pooled buffers, the bounded body, the query.

// getBuf returns a pooled buffer of at least 4 KiB capacity.
func (s *Server) getBuf() *[]byte {
	if bp, ok := s.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 4096)
	return &b
}

// putBuf returns bp to the pool unless it grew past pooledBufMax.
func (s *Server) putBuf(bp *[]byte) {
	if cap(*bp) <= pooledBufMax {
		s.bufs.Put(bp)
	}
}

// readBody appends the request body to buf, failing with ErrTooLarge past
// MaxBodyBytes.
func readBody(r *http.Request, buf []byte) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return buf, ErrTooLarge
	}
	if r.Body == nil {
		return buf, nil
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > MaxBodyBytes {
			return buf, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return buf, ErrTooLarge
			}
			return buf, fmt.Errorf("callback: read body: %w", err)
		}
	}
}

// query holds the callback's query parameters.
type query struct {
	signature, timestamp, nonce, echostr, encryptType, msgSignature string
}

// parseQuery reads the callback parameters from a raw query without
// building a url.Values; the first occurrence of a key wins. It reports
// false for a bad percent-encoding.
func parseQuery(raw string) (q query, ok bool) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		var dst *string
		switch k {
		case "signature":
			dst = &q.signature
		case "timestamp":
			dst = &q.timestamp
		case "nonce":
			dst = &q.nonce
		case "echostr":
			dst = &q.echostr
		case "encrypt_type":
			dst = &q.encryptType
		case "msg_signature":
			dst = &q.msgSignature
		default:
			continue
		}
		if *dst != "" {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return q, false
			}
			v = u
		}
		*dst = v
	}
	return q, true
}
