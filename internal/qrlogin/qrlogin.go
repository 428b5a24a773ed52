package qrlogin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

// WeChat is the part of [*wechat.API] that QR login calls: qrcode/create
// and user/info. Tests may pass a fake.
type WeChat interface {
	// CreateQRCode is [wechat.API.CreateQRCode].
	CreateQRCode(ctx context.Context, req wechat.QRCodeRequest) (*wechat.QRCode, error)
	// Follower is [wechat.API.Follower].
	Follower(ctx context.Context, openID, lang string) (*wechat.Follower, error)
}

var _ WeChat = (*wechat.API)(nil)

// Status is the state of a login attempt as GET /qr/sessions/{id} reports
// it: "pending" (waiting for a scan), "confirmed" (scanned, the browser may
// complete), "used" (the session was issued) or "expired".
type Status string

// The statuses of an attempt.
const (
	StatusPending   Status = "pending"   // created, not scanned, before ExpiresAt
	StatusConfirmed Status = "confirmed" // scanned; Complete works for CompleteWindow
	StatusUsed      Status = "used"      // completed: the session was issued
	StatusExpired   Status = "expired"   // not scanned in time, or not completed in time
)

// Defaults and limits.
const (
	// DefaultTTL is the life of an attempt and of its QR code when
	// Config.TTL is zero.
	DefaultTTL = 5 * time.Minute
	// MaxTTL is the longest Config.TTL: WeChat's limit for a temporary QR
	// code (2,592,000 s).
	MaxTTL = wechat.MaxQRExpireSeconds * time.Second
	// CompleteWindow is how long after the scan the browser may complete
	// the login (GET /qr/sessions/{id}/complete); past it the attempt is
	// expired.
	CompleteWindow = 2 * time.Minute
	// keep is how long a record outlives its attempt, so that a late
	// status request reads "expired" rather than "not found".
	keep = 10 * time.Minute
	// IDLen is the length of an attempt id and of the random part of its
	// scene: 22 base62 characters (about 131 bits).
	IDLen = 22
	// ScenePrefix starts the scene_str of every login QR code; scenes
	// without it belong to the Official Account's other QR codes.
	ScenePrefix = "login_"
	// DefaultConfirmText is the chat reply to a scan that logged in.
	DefaultConfirmText = "已登录 / Signed in"
	// DefaultRefusedText is the chat reply to a scan of an expired or
	// already used login QR code.
	DefaultRefusedText = "登录二维码已过期或已使用，请在电脑上刷新后重新扫码。\nThis login QR code has expired or was already used: refresh the page on your computer and scan again."
)

// Errors of [Service.Status] and [Service.Complete], compared with
// errors.Is. ErrNotFound wraps store.ErrNotFound.
var (
	ErrNotFound = fmt.Errorf("qrlogin: no such login attempt: %w", store.ErrNotFound) // unknown id, malformed id, or record gone
	ErrPending  = errors.New("qrlogin: login attempt not scanned yet")                // Complete before the scan
	ErrExpired  = errors.New("qrlogin: login attempt expired")                        // Complete after ExpiresAt or CompleteWindow
	ErrUsed     = errors.New("qrlogin: login attempt already used")                   // Complete a second time
	ErrBinding  = errors.New("qrlogin: login attempt belongs to another browser")     // Complete with a key that is not the attempt's
)

// Config configures a [Service]. AppID, WeChat, Users, Records and Broker
// are required.
type Config struct {
	AppID   string        // the Official Account's appid: store.User.AppID of the users it logs in
	WeChat  WeChat        // usually a *wechat.API
	Users   store.Users   // the same store web authorization upserts into
	Records store.Records // attempts, scene index and single-use claims; shared by every instance
	Broker  store.Broker  // "qr:<id>" notifications; shared by every instance
	// TTL is the life of an attempt and of its QR code; 0 means
	// DefaultTTL. At least 1 s and at most MaxTTL.
	TTL time.Duration
	// ConfirmText is the chat reply to the scan that logs in; "" means
	// DefaultConfirmText.
	ConfirmText string
	// RefusedText is the chat reply to a scan of an expired or used login
	// code; "" means DefaultRefusedText.
	RefusedText string
	Logger      *slog.Logger     // nil discards
	Now         func() time.Time // nil means time.Now; every expiry is counted with it
	// Observer hears each attempt this instance creates and completes;
	// nil reports nothing.
	Observer Observer
}

// Service creates login attempts, handles their scan events (it is a
// [callback.Handler]) and completes them. It is safe for concurrent use;
// every instance of a cluster builds its own over the same stores.
type Service struct {
	cfg Config
}

var _ callback.Handler = (*Service)(nil)

// New checks cfg and returns a Service. Errors name the missing or invalid
// field.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.AppID == "":
		return nil, errors.New("qrlogin: AppID is required")
	case cfg.WeChat == nil:
		return nil, errors.New("qrlogin: WeChat is required")
	case cfg.Users == nil || cfg.Records == nil || cfg.Broker == nil:
		return nil, errors.New("qrlogin: Users, Records and Broker are required")
	case cfg.TTL < 0 || (cfg.TTL > 0 && cfg.TTL < time.Second) || cfg.TTL > MaxTTL:
		return nil, fmt.Errorf("qrlogin: TTL %v: want 1s to %v", cfg.TTL, MaxTTL)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ConfirmText == "" {
		cfg.ConfirmText = DefaultConfirmText
	}
	if cfg.RefusedText == "" {
		cfg.RefusedText = DefaultRefusedText
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}, nil
}

// TTL returns the life of new attempts.
func (s *Service) TTL() time.Duration { return s.cfg.TTL }

// Attempt is one desktop login attempt. The record kept under "qr:<id>" is
// its JSON without Key.
type Attempt struct {
	ID       string `json:"id"`       // 22 base62 characters; names the attempt in /qr/sessions/{id}
	Scene    string `json:"scene"`    // QR_STR_SCENE scene_str: "login_" + 22 base62 characters
	Ticket   string `json:"ticket"`   // WeChat's ticket of the QR code (showqrcode, and the Ticket of scan events)
	QRURL    string `json:"qr_url"`   // the QR code's content, to render it oneself
	Redirect string `json:"redirect"` // the page to return to, already checked against the allowlist
	Status   Status `json:"status"`   // as of the last read; see [Status]
	// KeyHash is the hex SHA-256 of Key; Complete must be shown Key.
	KeyHash string `json:"key_hash"`
	// Key binds the attempt to the browser that created it (a cookie);
	// set only in the Attempt that Create returns, never stored.
	Key         string    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`            // end of scanning: CreatedAt + TTL
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"` // the scan; completion is allowed for CompleteWindow after it
	UserID      string    `json:"user_id,omitempty"`     // store.User.ID of who scanned (JWT sub)
	OpenID      string    `json:"openid,omitempty"`      // who scanned
	UnionID     string    `json:"unionid,omitempty"`     // from cgi-bin/user/info, empty when unknown
}

// ExpiresIn returns the seconds left to scan at now (0 when over).
func (a Attempt) ExpiresIn(now time.Time) int {
	d := a.ExpiresAt.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// statusAt is the status of a stored attempt at now.
func (a Attempt) statusAt(now time.Time) Status {
	switch a.Status {
	case StatusUsed:
		return StatusUsed
	case StatusConfirmed:
		if now.Before(a.ConfirmedAt.Add(CompleteWindow)) {
			return StatusConfirmed
		}
		return StatusExpired
	case StatusPending:
		if now.Before(a.ExpiresAt) {
			return StatusPending
		}
	}
	return StatusExpired
}

// Create starts a login attempt that returns to redirect (which the caller
// has checked against the allowlist): a QR_STR_SCENE code living TTL from
// WeChat (POST cgi-bin/qrcode/create), and its records. The returned
// Attempt carries Key, to be kept by the browser only.
//
// Errors: as [wechat.API.CreateQRCode] (e.g. [*wechat.Error], a timeout);
// store errors (store.ErrUnavailable wrapped).
//
// https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
func (s *Service) Create(ctx context.Context, redirect string) (Attempt, error) {
	now := s.cfg.Now()
	a := Attempt{
		ID:        store.RandomBase62(IDLen),
		Scene:     ScenePrefix + store.RandomBase62(IDLen),
		Key:       store.RandomBase62(IDLen),
		Redirect:  redirect,
		Status:    StatusPending,
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.TTL),
	}
	a.KeyHash = hashKey(a.Key)
	seconds := int((s.cfg.TTL + time.Second - 1) / time.Second)
	q, err := s.cfg.WeChat.CreateQRCode(ctx, wechat.QRCodeRequest{ActionName: wechat.QRStrScene, ExpireSeconds: seconds, SceneStr: a.Scene})
	if err != nil {
		return Attempt{}, fmt.Errorf("qrlogin: create QR code: %w", err)
	}
	a.Ticket, a.QRURL = q.Ticket, q.URL
	life := s.cfg.TTL + CompleteWindow + keep
	if err := s.cfg.Records.Put(ctx, store.KeyQRScene.Key(a.Scene), []byte(a.ID), life); err != nil {
		return Attempt{}, fmt.Errorf("qrlogin: save scene: %w", err)
	}
	if err := s.save(ctx, a, life); err != nil {
		return Attempt{}, err
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.AttemptStarted(a.ID, s.cfg.TTL+CompleteWindow)
	}
	return a, nil
}

// HasKey reports whether key is the one that binds a to its browser (the
// Key that Create returned), compared in constant time; false when a has no
// key hash.
func (a Attempt) HasKey(key string) bool {
	return a.KeyHash != "" && key != "" && subtle.ConstantTimeCompare([]byte(hashKey(key)), []byte(a.KeyHash)) == 1
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (s *Service) save(ctx context.Context, a Attempt, ttl time.Duration) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("qrlogin: encode attempt: %w", err)
	}
	if err := s.cfg.Records.Put(ctx, store.KeyQR.Key(a.ID), b, ttl); err != nil {
		return fmt.Errorf("qrlogin: save attempt: %w", err)
	}
	return nil
}

// ValidID reports whether id has the shape of an attempt id (22 base62
// characters); other ids are never looked up.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Status returns the attempt id with its Status as of now.
//
// Errors: [ErrNotFound] for an id of the wrong shape, unknown, or whose
// record is gone (some time after expiry); store errors wrapped.
func (s *Service) Status(ctx context.Context, id string) (Attempt, error) {
	if !ValidID(id) {
		return Attempt{}, ErrNotFound
	}
	return s.load(ctx, id)
}

func (s *Service) load(ctx context.Context, id string) (Attempt, error) {
	b, err := s.cfg.Records.Get(ctx, store.KeyQR.Key(id))
	if errors.Is(err, store.ErrNotFound) {
		return Attempt{}, ErrNotFound
	} else if err != nil {
		return Attempt{}, fmt.Errorf("qrlogin: load attempt: %w", err)
	}
	var a Attempt
	if err := json.Unmarshal(b, &a); err != nil || a.ID != id {
		return Attempt{}, ErrNotFound
	}
	a.Status = a.statusAt(s.cfg.Now())
	return a, nil
}

// Complete consumes a confirmed attempt, once: the caller then issues the
// session of a.UserID, a.OpenID, a.UnionID and returns to a.Redirect. key
// is the Key that Create returned (the browser's cookie).
//
// Errors, with the Attempt still filled (for a retry link) unless
// ErrNotFound: [ErrNotFound]; [ErrBinding] when key does not match;
// [ErrPending] before the scan; [ErrExpired]; [ErrUsed] when it was
// completed already (of concurrent calls exactly one succeeds); store
// errors wrapped.
func (s *Service) Complete(ctx context.Context, id, key string) (Attempt, error) {
	a, err := s.Status(ctx, id)
	if err != nil {
		return Attempt{}, err
	}
	if !a.HasKey(key) {
		return a, ErrBinding
	}
	switch a.Status {
	case StatusPending:
		return a, ErrPending
	case StatusExpired:
		return a, ErrExpired
	case StatusUsed:
		return a, ErrUsed
	}
	first, err := s.cfg.Records.PutIfAbsent(ctx, store.KeyQRUsed.Key(id), []byte{1}, CompleteWindow+keep)
	if err != nil {
		return a, fmt.Errorf("qrlogin: claim completion: %w", err)
	}
	if !first {
		a.Status = StatusUsed
		return a, ErrUsed
	}
	a.Status = StatusUsed
	if err := s.save(ctx, a, keep); err != nil {
		// The claim already makes the attempt single use.
		s.cfg.Logger.WarnContext(ctx, "qr login: mark attempt used", "err", err)
	}
	s.publish(ctx, id, StatusUsed)
	if s.cfg.Observer != nil {
		s.cfg.Observer.AttemptEnded(id)
	}
	return a, nil
}

// event is the payload published on "qr:<id>".
type event struct {
	Status Status `json:"status"`
}

func (s *Service) publish(ctx context.Context, id string, st Status) {
	b, _ := json.Marshal(event{st})
	if err := s.cfg.Broker.Publish(context.WithoutCancel(ctx), store.KeyQR.Key(id), b); err != nil {
		// Browsers still learn it by polling GET /qr/sessions/{id}.
		s.cfg.Logger.WarnContext(ctx, "qr login: publish", "err", err)
	}
}

// Watch returns the statuses published for attempt id from now on, by any
// instance (store.Broker topic "qr:<id>"); the channel is closed when ctx
// ends. Subscribe before reading the current status so that nothing is
// missed in between.
//
// Errors: [ErrNotFound] for an id of the wrong shape; the Broker's errors
// wrapped.
func (s *Service) Watch(ctx context.Context, id string) (<-chan Status, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	in, err := s.cfg.Broker.Subscribe(ctx, store.KeyQR.Key(id))
	if err != nil {
		return nil, fmt.Errorf("qrlogin: subscribe: %w", err)
	}
	out := make(chan Status, 4)
	go func() {
		defer close(out)
		for b := range in {
			var e event
			if json.Unmarshal(b, &e) != nil || e.Status == "" {
				continue
			}
			select {
			case out <- e.Status:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// ServeMessage handles the scan of a login QR code: Event subscribe with
// EventKey "qrscene_login_..." (a user who did not follow yet) or SCAN with
// EventKey "login_..." (a follower). It looks the user up (GET
// cgi-bin/user/info, for the unionid), upserts store.User{AppID, OpenID,
// UnionID} as web authorization would, marks the attempt confirmed (once),
// publishes it on "qr:<id>" and answers ConfirmText. A scan of an expired,
// used or unknown login code is answered RefusedText.
//
// Errors: [callback.ErrNotHandled] for every other message, event and
// scene (so the ordinary rules answer them); WeChat and store errors
// wrapped, which leave the attempt pending (the user may scan again).
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
func (s *Service) ServeMessage(ctx context.Context, m *callback.Message) (callback.Reply, error) {
	scene, ok := loginScene(m)
	if !ok {
		return nil, callback.ErrNotHandled
	}
	refused := callback.TextReply{Content: s.cfg.RefusedText}
	idb, err := s.cfg.Records.Get(ctx, store.KeyQRScene.Key(scene))
	if errors.Is(err, store.ErrNotFound) {
		return refused, nil
	} else if err != nil {
		return nil, fmt.Errorf("qrlogin: load scene: %w", err)
	}
	a, err := s.load(ctx, string(idb))
	if errors.Is(err, ErrNotFound) {
		return refused, nil
	} else if err != nil {
		return nil, err
	}
	if a.Scene != scene || (m.Ticket != "" && m.Ticket != a.Ticket) || a.Status != StatusPending || m.FromUserName == "" {
		return refused, nil
	}
	f, err := s.cfg.WeChat.Follower(ctx, m.FromUserName, "zh_CN")
	if err != nil {
		return nil, fmt.Errorf("qrlogin: user info: %w", err)
	}
	now := s.cfg.Now()
	u, err := s.cfg.Users.UpsertUser(ctx, store.User{AppID: s.cfg.AppID, OpenID: m.FromUserName, UnionID: f.UnionID}, now)
	if err != nil {
		return nil, fmt.Errorf("qrlogin: upsert user: %w", err)
	}
	claimed, err := s.cfg.Records.PutIfAbsent(ctx, store.KeyQRClaim.Key(a.ID), []byte(m.FromUserName), s.cfg.TTL+CompleteWindow+keep)
	if err != nil {
		return nil, fmt.Errorf("qrlogin: claim attempt: %w", err)
	}
	if !claimed {
		return refused, nil
	}
	a.Status, a.ConfirmedAt = StatusConfirmed, now
	a.UserID, a.OpenID, a.UnionID = u.ID, m.FromUserName, u.UnionID
	if err := s.save(ctx, a, CompleteWindow+keep); err != nil {
		return nil, err
	}
	s.publish(ctx, a.ID, StatusConfirmed)
	return callback.TextReply{Content: s.cfg.ConfirmText}, nil
}

// loginScene returns the scene of a scan event of a login QR code.
func loginScene(m *callback.Message) (string, bool) {
	if !m.IsEvent() {
		return "", false
	}
	var scene string
	switch strings.ToLower(m.Event) {
	case "subscribe":
		var ok bool
		if scene, ok = strings.CutPrefix(m.EventKey, "qrscene_"); !ok {
			return "", false
		}
	case "scan":
		scene = m.EventKey
	default:
		return "", false
	}
	rest, ok := strings.CutPrefix(scene, ScenePrefix)
	if !ok || !ValidID(rest) {
		return "", false
	}
	return scene, true
}
