package wxemu

import (
	"context"
	crand "crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

// Lifetimes and limits WeChat applies (web auth and Get_access_token pages;
// see the package doc).
const (
	codeTTL          = 5 * time.Minute     // web-authorization code
	webTokenTTL      = 7200 * time.Second  // sns access_token
	refreshTTL       = 30 * 24 * time.Hour // sns refresh_token, from the first authorization
	globalTokenTTL   = 7200 * time.Second  // cgi-bin access_token and stable_token
	tokenOverlap     = 5 * time.Minute     // a replaced global token stays valid this long
	stableRenewAhead = 5 * time.Minute     // stable_token returns the same token until this close to expiry
	forceSpacing     = 30 * time.Second    // between two stable_token force_refresh calls
	ticketTTL        = 7200 * time.Second  // jsapi_ticket
	tokenDailyQuota  = 2000                // cgi-bin/token calls per day
	forceDailyQuota  = 20                  // stable_token force_refresh calls per day
	qrDefaultExpire  = 60                  // seconds, temporary QR code without expire_seconds
	maxSceneStr      = 64                  // bytes of a QR scene_str
	maxTextReply     = 2048                // bytes of a passive text reply's Content
	qrMaxExpire      = 2592000             // seconds, 30 days
	qrMaxPermanent   = 100000              // permanent QR codes per account
	deliveryTimeout  = 5 * time.Second     // WeChat waits this long for the callback
	deliveryAttempts = 3                   // deliveries in all for one push
	maxBody          = 1 << 20             // bytes read from any request or callback reply
	defaultOriginal  = "gh_wxemu00000000"  // OriginalID when Config leaves it empty
	sweepMin         = 1024                // map size below which expired records are not swept
	expiredKept      = 24 * time.Hour      // expired tokens answer 42001 (not 40001) this long
	maxRecords       = 1 << 20             // per kind; past it the sweep forgets arbitrary records (load tests)
	beijing          = 8 * 60 * 60         // seconds east of UTC: WeChat's daily quotas reset at Beijing midnight
)

// User is one WeChat user the emulator knows. JSON field names are those of
// the control API (GET/POST /emu/users).
type User struct {
	// OpenID is the user's openid for this account (e.g. "oWXEMU_alice").
	OpenID string `json:"openid"`
	// UnionID is the Open Platform unionid; empty when the account is not bound.
	UnionID string `json:"unionid"`
	// Nickname as sns/userinfo returns it.
	Nickname string `json:"nickname"`
	// HeadImgURL as sns/userinfo returns it; empty means the emulator's
	// generated avatar {PublicURL}/emu/avatar/{openid}/132.
	HeadImgURL string `json:"headimgurl"`
	// Sex is 0 (unknown), 1 (male) or 2 (female); WeChat sends 0 since 2021-10-20.
	Sex int `json:"sex"`
	// Province, City and Country are empty for everyone since 2021-10-20.
	Province string `json:"province"`
	City     string `json:"city"`
	Country  string `json:"country"`
	// Privilege lists privileges (e.g. "chinaunicom"); usually empty.
	Privilege []string `json:"privilege"`
	// Snapshot marks a snapshot-page virtual user: the code exchange returns
	// is_snapshotuser: 1.
	Snapshot bool `json:"snapshot"`
	// Follows says whether the user follows the Official Account; it decides
	// subscribe vs SCAN on a QR scan and user/info's subscribe.
	Follows bool `json:"follows"`
}

// BuiltinUsers returns the users an emulator has when [Config.Users] is nil:
// oWXEMU_alice ("Alice 爱丽丝", unionid uWXEMU_alice, follows), oWXEMU_bob
// ("Bob", no unionid, does not follow) and oWXEMU_snap (a snapshot user,
// "微信用户"). Their HeadImgURL is empty: the emulator serves a generated
// avatar under its PublicURL.
func BuiltinUsers() []User {
	return []User{
		{OpenID: "oWXEMU_alice", UnionID: "uWXEMU_alice", Nickname: "Alice 爱丽丝", Follows: true},
		{OpenID: "oWXEMU_bob", Nickname: "Bob"},
		{OpenID: "oWXEMU_snap", Nickname: "微信用户", Snapshot: true},
	}
}

// Config configures an [Emulator]. Only AppID and AppSecret are required.
type Config struct {
	// AppID and AppSecret are the emulated Official Account's credentials.
	AppID, AppSecret string
	// OAuthDomains are the 网页授权域名: "host" or "host:port" (test accounts
	// may use IP:port). A redirect_uri's host[:port] must equal one exactly
	// (case-insensitive), else the authorize page shows 10003.
	OAuthDomains []string
	// OriginalID is the account's gh_ id, the ToUserName of every pushed
	// message; "" means "gh_wxemu00000000".
	OriginalID string
	// PublicURL is the emulator's own base URL without a trailing slash
	// (e.g. "http://127.0.0.1:8081"), used in QR url contents, showqrcode
	// links and avatars. It may be set later with [Emulator.SetPublicURL].
	PublicURL string
	// CallbackURL, CallbackToken and AESKey are the service's message
	// callback (/wx), its Token (3-32 letters or digits) and its
	// EncodingAESKey (43 characters, required in compat and safe modes).
	// An empty CallbackURL means none yet (see [Emulator.SetCallback]).
	CallbackURL, CallbackToken, AESKey string
	// Mode is the message encryption mode: "plain" (the default when empty),
	// "compat" or "safe".
	Mode string
	// DenyRedirect decides what 拒绝 on the consent page does: true = 302 to
	// redirect_uri?state=STATE (no code); false = no redirect: WeChat leaves
	// the user on a blank page or closes it, and the emulator shows a
	// "declined" page with both ways on (see the package documentation).
	DenyRedirect bool
	// AllowOutsideWeChat lets a browser without "MicroMessenger" in its
	// User-Agent through the authorize page. False (the default) plays
	// WeChat: such a browser gets the page "请在微信客户端打开链接" and no
	// code, scripted requests (X-Wxemu-User) included.
	AllowOutsideWeChat bool
	// InsideWeChatCookie names a cookie that, set to "1", makes a browser
	// count as WeChat's in-app browser whatever its User-Agent: `authsvc
	// dev` sets it so that a desktop browser can take the in-WeChat path
	// (user picker, consent page) on purpose. Empty: none.
	InsideWeChatCookie string
	// Users are the known users; nil means [BuiltinUsers].
	Users []User
	// HTTPClient delivers callback pushes; nil means a client with WeChat's
	// 5 s timeout. Each delivery is also bounded by 5 s through its context.
	HTTPClient *http.Client
	// Logger receives one line per request (method and path, never the
	// query); nil discards.
	Logger *slog.Logger
	// Now is the base clock; nil means time.Now. The virtual clock adds the
	// offsets of POST /emu/clock.
	Now func() time.Time
}

// Emulator is a WeChat look-alike serving, on one handler, the paths of
// open.weixin.qq.com (web authorization pages), api.weixin.qq.com (sns and
// cgi-bin APIs) and mp.weixin.qq.com (showqrcode), plus its own control API
// under /emu/. It is safe for concurrent use; create it with [New].
type Emulator struct {
	appID, appSecret, originalID string
	domains                      []string
	denyRedirect                 bool
	allowOutside                 bool
	insideCookie                 string // Config.InsideWeChatCookie
	client                       *http.Client
	log                          *slog.Logger
	baseNow                      func() time.Time
	tmpl                         *template.Template
	mux                          *http.ServeMux
	random                       func([]byte) // fills with random bytes; tests may fix it

	mu          sync.Mutex
	publicURL   string
	cb          callbackConfig
	offset      time.Duration
	users       map[string]User
	order       []string // openids in the order they were added
	subs        map[string]subscription
	codes       map[string]*authCode
	webTokens   map[string]*webToken
	refreshes   map[string]*refreshGrant
	tokens      map[string]*globalToken
	current     string // latest cgi-bin/token token
	stable      string // current stable_token token
	quotaDay    int64  // Beijing day number of tokenCount
	tokenCount  int
	forceDay    int64
	forceCount  int
	lastForce   time.Time
	tickets     map[string]time.Time // jsapi_ticket -> expiry
	qrs         map[string]*qrCode
	permanent   int
	menu        json.RawMessage // {"button":[...]}; nil = no menu
	calls       map[string]int
	faults      map[string]*fault
	doubles     int               // authorizations left to redirect twice; -1 = all
	userRefresh map[string]string // openid -> its latest refresh_token
	whitelist   []string          // API IP whitelist; empty = no check
	ipRisk      bool              // IP risk control: unknown IPs need confirmation
	ipSeen      map[string]bool   // IPs told 89503 and awaiting confirmation
	sweepAt     int
	media       map[string]*medium // temporary media by media_id (facts only, no bytes)
}

type callbackConfig struct {
	url, token, aesKey, mode string
}

type subscription struct {
	time    int64 // unix seconds
	scene   string
	qrScene int64
	qrStr   string
}

// New returns an emulator for cfg, with its templates parsed and its users
// loaded.
//
// Errors: a missing AppID or AppSecret, a bad OAuthDomain, a user without a
// valid openid (1-64 of [A-Za-z0-9_-]), and the errors of
// [Emulator.SetCallback] for the callback fields.
func New(cfg Config) (*Emulator, error) {
	if cfg.AppID == "" {
		return nil, errors.New("wxemu: AppID is required")
	}
	if cfg.AppSecret == "" {
		return nil, errors.New("wxemu: AppSecret is required")
	}
	tmpl, err := template.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("wxemu: parse templates: %w", err)
	}
	e := &Emulator{
		appID:        cfg.AppID,
		appSecret:    cfg.AppSecret,
		originalID:   cfg.OriginalID,
		denyRedirect: cfg.DenyRedirect,
		allowOutside: cfg.AllowOutsideWeChat,
		insideCookie: cfg.InsideWeChatCookie,
		client:       cfg.HTTPClient,
		log:          cfg.Logger,
		baseNow:      cfg.Now,
		tmpl:         tmpl,
		random:       func(b []byte) { _, _ = crand.Read(b) },
		publicURL:    strings.TrimRight(cfg.PublicURL, "/"),
		users:        map[string]User{},
		subs:         map[string]subscription{},
		codes:        map[string]*authCode{},
		webTokens:    map[string]*webToken{},
		refreshes:    map[string]*refreshGrant{},
		tokens:       map[string]*globalToken{},
		tickets:      map[string]time.Time{},
		qrs:          map[string]*qrCode{},
		calls:        map[string]int{},
		faults:       map[string]*fault{},
		userRefresh:  map[string]string{},
		ipSeen:       map[string]bool{},
		sweepAt:      sweepMin,
	}
	if e.originalID == "" {
		e.originalID = defaultOriginal
	}
	if e.client == nil {
		e.client = &http.Client{Timeout: deliveryTimeout}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.baseNow == nil {
		e.baseNow = time.Now
	}
	for _, d := range cfg.OAuthDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" || strings.ContainsAny(d, "/\\@?#* ") {
			return nil, fmt.Errorf("wxemu: OAuthDomains: %q is not a host or host:port", d)
		}
		e.domains = append(e.domains, d)
	}
	users := cfg.Users
	if users == nil {
		users = BuiltinUsers()
	}
	now := e.now()
	for _, u := range users {
		if err := e.putUser(u, now); err != nil {
			return nil, err
		}
	}
	if cfg.CallbackURL != "" || cfg.Mode != "" {
		if err := e.SetCallback(cfg.CallbackURL, cfg.CallbackToken, cfg.AESKey, cfg.Mode); err != nil {
			return nil, err
		}
	}
	e.mux = e.routes()
	return e, nil
}

var (
	openIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	tokenPattern  = regexp.MustCompile(`^[A-Za-z0-9]{3,32}$`)
)

// putUser adds or replaces u; e.mu must be held or e not yet shared.
func (e *Emulator) putUser(u User, now time.Time) error {
	if !openIDPattern.MatchString(u.OpenID) {
		return fmt.Errorf("wxemu: user openid %q: want 1-64 of [A-Za-z0-9_-]", u.OpenID)
	}
	if _, ok := e.users[u.OpenID]; !ok {
		e.order = append(e.order, u.OpenID)
	}
	if u.Privilege == nil {
		u.Privilege = []string{}
	}
	e.users[u.OpenID] = u
	if u.Follows {
		if _, ok := e.subs[u.OpenID]; !ok {
			e.subs[u.OpenID] = subscription{time: now.Unix(), scene: "ADD_SCENE_OTHERS"}
		}
	} else {
		delete(e.subs, u.OpenID)
	}
	return nil
}

// SetPublicURL sets the emulator's own base URL (e.g. "http://127.0.0.1:8081",
// a trailing slash is dropped), once its listener is known.
func (e *Emulator) SetPublicURL(u string) {
	e.mu.Lock()
	e.publicURL = strings.TrimRight(u, "/")
	e.mu.Unlock()
}

// SetCallback points message pushes at url (the service's /wx) with its
// Token, EncodingAESKey and mode ("plain", "compat", "safe"; "" = "plain").
// An empty url disables pushes. It is safe to call while serving.
//
// Errors: an unknown mode; a url that is not absolute http(s); a token that
// is not 3-32 letters or digits (WeChat's rule); [ErrAESKey] (wrapped) when
// the mode is compat or safe and encodingAESKey is not 43 characters of
// [a-zA-Z0-9] (a non-empty key is checked in plain mode too). No error
// string contains the token or the key.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
func (e *Emulator) SetCallback(url, token, encodingAESKey, mode string) error {
	if mode == "" {
		mode = "plain"
	}
	switch mode {
	case "plain", "compat", "safe":
	default:
		return fmt.Errorf("wxemu: callback mode %q: want plain, compat or safe", mode)
	}
	if url != "" {
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			return errors.New("wxemu: callback URL must be absolute http(s)")
		}
		if !tokenPattern.MatchString(token) {
			return errors.New("wxemu: callback Token must be 3-32 letters or digits")
		}
	}
	if mode != "plain" || encodingAESKey != "" {
		if _, err := aesKey(encodingAESKey); err != nil {
			return fmt.Errorf("wxemu: callback EncodingAESKey: %w", err)
		}
	}
	e.mu.Lock()
	e.cb = callbackConfig{url: url, token: token, aesKey: encodingAESKey, mode: mode}
	e.mu.Unlock()
	return nil
}

// ServeHTTP serves WeChat's paths and the /emu/ control API (listed in the
// package documentation). Errors of WeChat's APIs are HTTP 200 JSON
// {"errcode":N,"errmsg":"..., rid: ..."}; errors of the authorize pages are
// HTML pages with status 200 (#errcode holds the code); errors of the
// control API are JSON {"error":"..."} with a 4xx status. It logs the method
// and path at Debug level, never the query.
//
// https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.log.Debug("wxemu request", "method", r.Method, "path", r.URL.Path)
	e.mux.ServeHTTP(w, r)
}

// now returns the virtual time.
func (e *Emulator) now() time.Time {
	return e.baseNow().Add(e.offset)
}

// virtualNow reads the virtual time, taking e.mu.
func (e *Emulator) virtualNow() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now()
}

// beijingDay is the day number used by WeChat's daily quotas.
func beijingDay(t time.Time) int64 {
	return (t.Unix() + beijing) / 86400
}

// randomString returns n random bytes as unpadded base64url, the alphabet
// of WeChat's codes and tokens.
func (e *Emulator) randomString(n int) string {
	b := make([]byte, n)
	e.random(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomDigits returns a random decimal number of up to 10 digits, the shape
// of WeChat's nonce and echostr.
func (e *Emulator) randomDigits() string {
	var b [8]byte
	e.random(b[:])
	return fmt.Sprint(binary.BigEndian.Uint64(b[:]) % 10000000000)
}

// rid returns a request id like WeChat's "6650a1b2-1c2d3e4f-5a6b7c8d".
func (e *Emulator) rid(now time.Time) string {
	var b [8]byte
	e.random(b[:])
	return fmt.Sprintf("%08x-%08x-%08x", uint32(now.Unix()), binary.BigEndian.Uint32(b[:4]), binary.BigEndian.Uint32(b[4:]))
}

// behaviour logs, at Info, one WeChat behaviour the emulator played, under
// the attribute behaviour=name (the names are listed in the package
// documentation), so that a test's log reads like a WeChat session.
func (e *Emulator) behaviour(ctx context.Context, name, msg string, attrs ...slog.Attr) {
	e.log.LogAttrs(ctx, slog.LevelInfo, "wxemu: "+msg, append([]slog.Attr{slog.String("behaviour", name)}, attrs...)...)
}

// fault logs, at Info, a scripted fault the emulator played, under the
// attribute fault=name.
func (e *Emulator) fault(ctx context.Context, name, msg string, attrs ...slog.Attr) {
	e.log.LogAttrs(ctx, slog.LevelInfo, "wxemu: "+msg, append([]slog.Attr{slog.String("fault", name)}, attrs...)...)
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
