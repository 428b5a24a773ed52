package callback

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

const (
	// MaxBodyBytes is the largest callback body the Server reads, in bytes;
	// a longer one is answered 413.
	MaxBodyBytes = 1 << 20
	// DefaultDedupTTL is how long a message's de-duplication record is kept
	// when Config.DedupTTL is zero; MinDedupTTL is the least accepted (it
	// covers WeChat's three deliveries, 5 s apart).
	DefaultDedupTTL = 30 * time.Second
	MinDedupTTL     = 30 * time.Second
	// DefaultBudget is the time the handler chain may take when
	// Config.Budget is zero; MaxBudget is the most accepted, below WeChat's
	// 5 s wait.
	DefaultBudget = 4 * time.Second
	MaxBudget     = 4500 * time.Millisecond

	// pollInterval is how often a redelivery checks Records for the result
	// of the first delivery still running.
	pollInterval = 20 * time.Millisecond
	// storeTimeout bounds the store write of a result that arrives after
	// the budget.
	storeTimeout = 2 * time.Second
	// pooledBufMax is the largest buffer capacity kept for reuse, in bytes.
	pooledBufMax = 64 << 10
)

// Record values of the de-duplication records ("dedup:<key>").
const (
	recPending = 'P' // the first delivery is being handled
	recDone    = 'D' // followed by the plaintext reply XML, empty for "success"
)

// Config configures a [Server]. Token and Records are required; AESKey and
// AppID are required for the compat and safe modes.
type Config struct {
	Token          string        // WXAUTH_CALLBACK_TOKEN: the 3..32-character token of the server settings
	AESKey         string        // WXAUTH_ENCODING_AES_KEY (43 chars [a-zA-Z0-9]); empty = plaintext only
	PreviousAESKey string        // WXAUTH_ENCODING_AES_KEY_PREVIOUS: still decrypts (rotation)
	AppID          string        // checked against the trailing appid of decrypted bodies
	OriginalID     string        // WXAUTH_ORIGINAL_ID (gh_...): when set, ToUserName must match
	Mode           string        // "plain", "compat" or "safe"; empty = "compat" with an AESKey, else "plain"
	MaxSkew        time.Duration // largest |Now - timestamp| accepted; 0 = check off
	Records        store.Records // de-duplication records (required)
	DedupTTL       time.Duration // lifetime of a de-duplication record; 0 = DefaultDedupTTL (30 s); raised to at least MinDedupTTL (30 s)
	Budget         time.Duration // time the handler chain may take before "success"; 0 = 4 s; at most 4.5 s
	// Inline runs the handler chain on the request's goroutine instead of
	// its own: cheaper per message, but a handler past the budget delays
	// the answer until it returns (its context still ends with the
	// budget). For handlers that answer from memory and honour their
	// context (rules, QR login); leave it off with a Forwarder.
	Inline   bool
	Logger   *slog.Logger // nil = discard
	Now      func() time.Time
	Rand     io.Reader // random prefixes of encrypted replies; nil = crypto/rand; must be safe for concurrent use
	Observer Observer  // told how each request was answered (metrics); nil = none
}

// Server is the Official Account's message callback, an [http.Handler] for
// /wx. GET is URL verification: a valid signature echoes echostr (text/plain,
// in every mode). POST carries a message or event: the Server checks
// signature (plaintext) or msg_signature (encrypt_type=aes), the timestamp
// against MaxSkew, decrypts with the current or previous EncodingAESKey,
// checks the appid and ToUserName, drops redeliveries (MsgId for messages,
// FromUserName+CreateTime+Event+EventKey for events) through Records, calls
// the Handler within the budget and writes its reply: plaintext XML, or
// encrypted and signed when the request was encrypted or the mode is safe;
// "success" (never encrypted) when there is nothing to say.
//
// Rejections: 400 for malformed XML, base64, padding or appid (logged with
// the WXBizMsgCrypt code), 403 for a bad signature, a stale timestamp, a
// wrong ToUserName or a plaintext POST in safe mode, 405 for other methods,
// 413 for a body over [MaxBodyBytes]. One log line names the reason; message
// contents and secrets are never logged. A Server is safe for concurrent use.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
type Server struct {
	token      string
	crypters   []*Crypter // [0] current key, [1] previous
	originalID string
	mode       string
	maxSkew    time.Duration
	records    store.Records
	dedupTTL   time.Duration
	budget     time.Duration
	inline     bool
	logger     *slog.Logger
	now        func() time.Time
	rand       io.Reader
	obs        Observer  // nil: nothing reported
	chain      Handler   // the handler inside the adapters of chain.go
	bufs       sync.Pool // *[]byte
}

// NewServer returns a Server calling h. Errors: a missing Token, Records or
// handler; an unknown Mode; compat or safe mode without AESKey; an AESKey
// without AppID; a malformed AESKey or PreviousAESKey (wrapping [ErrAESKey]);
// a Budget above [MaxBudget]. It never panics and never quotes secrets.
func NewServer(cfg Config, h Handler) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("callback: Token is required")
	}
	if cfg.Records == nil {
		return nil, errors.New("callback: Records is required for de-duplication")
	}
	if h == nil {
		return nil, errors.New("callback: handler is required")
	}
	s := &Server{
		token:      cfg.Token,
		originalID: cfg.OriginalID,
		mode:       cfg.Mode,
		maxSkew:    cfg.MaxSkew,
		records:    cfg.Records,
		dedupTTL:   cfg.DedupTTL,
		budget:     cfg.Budget,
		inline:     cfg.Inline,
		logger:     cfg.Logger,
		now:        cfg.Now,
		rand:       cfg.Rand,
		obs:        cfg.Observer,
	}
	if cfg.AESKey != "" {
		if cfg.AppID == "" {
			return nil, errors.New("callback: AppID is required with an AESKey")
		}
		c, err := NewCrypter(cfg.AESKey, cfg.AppID)
		if err != nil {
			return nil, fmt.Errorf("callback: AESKey: %w", err)
		}
		s.crypters = append(s.crypters, c)
		if cfg.PreviousAESKey != "" {
			p, err := NewCrypter(cfg.PreviousAESKey, cfg.AppID)
			if err != nil {
				return nil, fmt.Errorf("callback: PreviousAESKey: %w", err)
			}
			s.crypters = append(s.crypters, p)
		}
	} else if cfg.PreviousAESKey != "" {
		return nil, errors.New("callback: PreviousAESKey without AESKey")
	}
	switch s.mode {
	case "":
		s.mode = "plain"
		if s.crypters != nil {
			s.mode = "compat"
		}
	case "plain":
	case "compat", "safe":
		if s.crypters == nil {
			return nil, fmt.Errorf("callback: Mode %q needs an AESKey", s.mode)
		}
	default:
		return nil, fmt.Errorf("callback: Mode %q is not plain, compat or safe", s.mode)
	}
	if s.maxSkew < 0 {
		return nil, errors.New("callback: MaxSkew is negative")
	}
	switch {
	case s.dedupTTL == 0:
		s.dedupTTL = DefaultDedupTTL
	case s.dedupTTL < MinDedupTTL:
		s.dedupTTL = MinDedupTTL
	}
	switch {
	case s.budget == 0:
		s.budget = DefaultBudget
	case s.budget < 0 || s.budget > MaxBudget:
		return nil, fmt.Errorf("callback: Budget %v is outside (0, %v]", s.budget, MaxBudget)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	s.chain = s.withBudget(s.withDedup(s.withErrors(h)))
	return s, nil
}

// ServeHTTP serves GET URL verification and POST messages; see [Server].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		s.serveVerify(w, r)
	case http.MethodPost:
		s.servePost(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		q, _ := parseQuery(r.URL.RawQuery)
		s.reject(r.Context(), w, q, http.StatusMethodNotAllowed, errNotAllowed)
	}
}

// serveVerify answers WeChat's URL verification.
func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	q, ok := parseQuery(r.URL.RawQuery)
	if !ok {
		s.reject(r.Context(), w, q, http.StatusBadRequest, ErrSignature)
		return
	}
	if !checkSign(q.signature, s.token, q.timestamp, q.nonce) {
		s.reject(r.Context(), w, q, http.StatusForbidden, ErrSignature)
		return
	}
	if !s.fresh(q.timestamp) {
		s.reject(r.Context(), w, q, http.StatusForbidden, ErrTimestamp)
		return
	}
	if q.echostr == "" {
		s.reject(r.Context(), w, q, http.StatusBadRequest, errNoEcho)
		return
	}
	if s.obs != nil {
		s.obs.Verified(r.Context(), queryMode(q))
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, q.echostr)
}

// servePost handles one message or event.
func (s *Server) servePost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, ok := parseQuery(r.URL.RawQuery)
	if !ok {
		s.reject(ctx, w, q, http.StatusBadRequest, ErrSignature)
		return
	}
	bp := s.getBuf()
	defer s.putBuf(bp)
	body, err := readBody(r, (*bp)[:0])
	*bp = body[:0]
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			s.reject(ctx, w, q, http.StatusRequestEntityTooLarge, ErrTooLarge)
		} else {
			s.reject(ctx, w, q, http.StatusBadRequest, errEmptyBody)
		}
		return
	}
	if len(body) == 0 {
		s.reject(ctx, w, q, http.StatusBadRequest, errEmptyBody)
		return
	}

	m, crypter, status, err := s.message(q, body)
	if err != nil {
		s.reject(ctx, w, q, status, err)
		return
	}
	answer, _ := s.chain.ServeMessage(ctx, m) // the chain answers every error with nil
	outcome := OutcomeReplied
	if d, ok := answer.(redelivered); ok {
		answer, outcome = d.reply, OutcomeDuplicate
	}
	rp := s.getBuf()
	defer s.putBuf(rp)
	reply := s.encode(ctx, (*rp)[:0], m, answer)
	*rp = reply[:0]
	if len(reply) == 0 {
		s.answered(ctx, m, outcome, OutcomeSuccess)
		writeSuccessBody(w)
		return
	}
	if crypter == nil { // plaintext request: plaintext reply
		s.answered(ctx, m, outcome, OutcomeReplied)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write(reply)
		return
	}
	out := (*bp)[:0]
	out, err = s.appendEncrypted(out, crypter, reply, q.nonce)
	*bp = out[:0]
	if err != nil {
		s.logger.LogAttrs(ctx, slog.LevelError, "callback reply not encrypted, answering success",
			slog.String("reason", errRandom.Reason), slog.Int("wxcode", errRandom.Code))
		s.answered(ctx, m, outcome, OutcomeSuccess)
		writeSuccessBody(w)
		return
	}
	s.answered(ctx, m, outcome, OutcomeReplied)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(out)
}

// message checks the request (signatures, timestamp, mode, ToUserName),
// decrypts it when encrypt_type=aes and scans the plaintext header. The
// Crypter that decrypted is nil for plaintext requests. On rejection it
// returns the HTTP status and an [*Error].
func (s *Server) message(q query, body []byte) (*Message, *Crypter, int, error) {
	m := &Message{Mode: "plain"}
	var h header
	var crypter *Crypter
	if strings.EqualFold(q.encryptType, "aes") {
		if s.crypters == nil {
			return nil, nil, http.StatusBadRequest, ErrNoAESKey
		}
		var env header
		if err := parseHeader(body, &env); err != nil || !env.hasEncrypt {
			return nil, nil, http.StatusBadRequest, ErrParseXML
		}
		if !checkSign(q.msgSignature, s.token, q.timestamp, q.nonce, env.Encrypt) ||
			q.signature != "" && !checkSign(q.signature, s.token, q.timestamp, q.nonce) {
			return nil, nil, http.StatusForbidden, ErrSignature
		}
		if !s.fresh(q.timestamp) {
			return nil, nil, http.StatusForbidden, ErrTimestamp
		}
		plain, c, err := s.decrypt(env.Encrypt)
		if err != nil {
			return nil, nil, http.StatusBadRequest, err
		}
		if err := parseHeader(plain, &h); err != nil {
			return nil, nil, http.StatusBadRequest, ErrParseXML
		}
		crypter = c
		m.setHeader(&h, plain) // plain is owned: decrypt allocated it
		m.Encrypted = true
		m.Mode = "safe"
		if env.MsgType != "" {
			m.Mode = "compat"
		}
	} else {
		if s.mode == "safe" {
			return nil, nil, http.StatusForbidden, ErrPlainMode
		}
		if !checkSign(q.signature, s.token, q.timestamp, q.nonce) {
			return nil, nil, http.StatusForbidden, ErrSignature
		}
		if !s.fresh(q.timestamp) {
			return nil, nil, http.StatusForbidden, ErrTimestamp
		}
		if err := parseHeader(body, &h); err != nil {
			return nil, nil, http.StatusBadRequest, ErrParseXML
		}
		// body is a pooled buffer; the handler may outlive the request.
		m.setHeader(&h, append([]byte(nil), body...))
	}
	if s.originalID != "" && m.ToUserName != s.originalID {
		return nil, nil, http.StatusForbidden, ErrToUserName
	}
	return m, crypter, 0, nil
}

// decrypt opens Encrypt with the current key, then the previous one. The
// error is the current key's.
func (s *Server) decrypt(b64 string) ([]byte, *Crypter, error) {
	raw, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(b64))), []byte(b64))
	if err != nil {
		return nil, nil, ErrBase64
	}
	var first error
	for i, c := range s.crypters {
		buf := raw
		if i+1 < len(s.crypters) {
			buf = append([]byte(nil), raw...)
		}
		msg, _, err := c.open(buf)
		if err == nil {
			return msg, c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, nil, first
}

// appendEncrypted appends the signed envelope of the plaintext reply.
func (s *Server) appendEncrypted(dst []byte, c *Crypter, reply []byte, nonce string) ([]byte, error) {
	var random [randomLen]byte
	if _, err := io.ReadFull(s.rand, random[:]); err != nil {
		return dst, errRandom
	}
	sp, ep := s.getBuf(), s.getBuf()
	defer s.putBuf(sp)
	defer s.putBuf(ep)
	enc, scratch, err := c.appendEncrypt((*ep)[:0], (*sp)[:0], random[:], reply)
	*ep, *sp = enc[:0], scratch[:0]
	if err != nil {
		return dst, err
	}
	var tsBuf [20]byte
	ts := string(appendInt(tsBuf[:0], s.now().Unix()))
	var sig [40]byte
	sign := appendSign(sig[:0], s.token, ts, nonce, string(enc))
	return appendEnvelope(dst, enc, sign, ts, nonce), nil
}

// fresh reports whether the timestamp (Unix seconds) is within MaxSkew of
// Now; with MaxSkew 0 any timestamp is accepted.
func (s *Server) fresh(timestamp string) bool {
	if s.maxSkew == 0 {
		return true
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	d := s.now().Sub(time.Unix(ts, 0))
	return d <= s.maxSkew && d >= -s.maxSkew
}

// answered reports m to the Observer: outcome is OutcomeDuplicate for a
// redelivery, otherwise written (what WeChat got).
func (s *Server) answered(ctx context.Context, m *Message, outcome, written Outcome) {
	if s.obs == nil {
		return
	}
	if outcome != OutcomeDuplicate {
		outcome = written
	}
	s.obs.Answered(ctx, m, outcome)
}

// reject writes status with an empty body, logs one line naming the reason
// and reports it to the Observer; q is the request's query.
func (s *Server) reject(ctx context.Context, w http.ResponseWriter, q query, status int, err error) {
	attrs := []slog.Attr{slog.Int("status", status)}
	reason := "status_" + strconv.Itoa(status)
	var e *Error
	if errors.As(err, &e) {
		reason = e.Reason
		attrs = append(attrs, slog.String("reason", e.Reason))
		if e.Code != 0 {
			attrs = append(attrs, slog.Int("wxcode", e.Code))
		}
	}
	s.logger.LogAttrs(ctx, slog.LevelWarn, "callback rejected", attrs...)
	if s.obs != nil {
		s.obs.Refused(ctx, status, reason, queryMode(q))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
}

// writeSuccessBody answers WeChat with the literal body "success": the
// message is taken and the user gets no reply. (It is WeChat's protocol,
// not a status recorder like httpapi's statusRecorder.)
func writeSuccessBody(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "success")
}

// hashID is a short, non-reversible tag of an openid for logs.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}
