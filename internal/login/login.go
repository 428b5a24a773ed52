package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/wxauth/wxauth/internal/clients"
	"github.com/wxauth/wxauth/internal/redirect"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/session"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wechat"
)

// Endpoint paths, as the discovery document lists them below the issuer.
const (
	PathAuthorize  = "/login"
	PathCallback   = "/oauth/callback" // WeChat's redirect_uri
	PathToken      = "/oauth/token"
	PathUserInfo   = "/userinfo"
	PathRevoke     = "/oauth/revoke"
	PathIntrospect = "/oauth/introspect"
	PathLogout     = "/logout"
	PathJWKS       = "/.well-known/jwks.json"
)

// Record key prefixes in store.Records (declared in store.KeyPrefix).
const (
	keyState    = string(store.KeyState)
	keyClaim    = string(store.KeyClaim)
	keyDone     = string(store.KeyDone)
	keyCode     = string(store.KeyCode)
	keyCodeUsed = string(store.KeyCodeUsed)
	keyFamily   = string(store.KeyFamily)
)

// Defaults and margins.
const (
	// DefaultCodeTTL is the life of an authorization code (60 s).
	DefaultCodeTTL = 60 * time.Second
	// DefaultIDTokenTTL is the life of an ID token (1 h).
	DefaultIDTokenTTL = time.Hour
	// DefaultStateTTL is the life of a WeChat leg's state record (10 min).
	DefaultStateTTL = 10 * time.Minute
	// DefaultBrowserTTL is how long the wxauth_browser cookie lets this
	// browser log in to a client without WeChat (12 h).
	DefaultBrowserTTL = 12 * time.Hour
	// resultTTL keeps a finished callback's outcome so that WeChat's
	// duplicate redirect for the same state lands on the same login.
	resultTTL = 30 * time.Second
	// codeUsedTTL remembers a redeemed code, so that a second redemption
	// revokes what the first one issued (RFC 6749 section 4.1.2).
	codeUsedTTL = 10 * time.Minute
	// callbackBudget bounds the whole /oauth/callback (code exchange,
	// userinfo, store).
	callbackBudget = 8 * time.Second
	// duplicatePoll is how often a duplicate callback looks for the
	// outcome of the first one while it runs.
	duplicatePoll = 25 * time.Millisecond
	// maxRestarts bounds the transparent restarts of one login (a webview
	// that dropped the state cookie, a dead code): past it the user sees a
	// page.
	maxRestarts = 1
)

// Ways in, the ID token's "amr" values.
const (
	AMRWeChatOAuth = "wechat_oauth" // WeChat web authorization (网页授权) inside WeChat
	AMRWeChatQR    = "wechat_qr"    // scanning the Official Account's QR code on a desktop browser
)

// SnapshotDescription is the error_description of the access_denied answer
// a client gets on its redirect_uri for a WeChat snapshot-page user
// (is_snapshotuser=1: a virtual account shown when a snsapi_userinfo page
// is opened from Moments). The page should ask the user to tap
// 「使用完整服务」 ("Use full service") and then start the login again.
const SnapshotDescription = "snapshot_user: WeChat showed a snapshot page; the user must tap 使用完整服务 (Use full service) and log in again"

// Problem is what a browser sees as wxauth's bilingual H5 page (an error,
// or the logout question): Pages renders it. It is also sealed, JSON
// encoded with its Go field names, inside a callback's stored outcome, so
// renaming a field changes that record's format.
type Problem struct {
	Status             int    // HTTP status code of the page
	Code               string // OAuth-style error code, also the JSON "error"
	Title, TitleZh     string // the heading, English and Chinese
	Message, MessageZh string // what happened and what to do, English and Chinese
	RetryURL           string // a "try again" link, when one helps
	// Confirm, when set, makes the page a question the user answers with a
	// button that POSTs a form (the logout confirmation).
	Confirm *Confirm
}

// Confirm is a form a page submits with one button: POST Action with
// Fields as hidden inputs; Label and LabelZh name the button.
type Confirm struct {
	Action         string
	Fields         []Field
	Label, LabelZh string
}

// Field is one hidden input of a [Confirm] form: its name and value.
type Field struct{ Name, Value string }

// Pages renders the H5 pages of the browser endpoints; httpapi provides it.
type Pages interface {
	// Problem writes p as the H5 page (or JSON for an API client).
	Problem(w http.ResponseWriter, r *http.Request, p Problem)
	// FromError maps an internal error of step to what the user sees,
	// logging the detail (never a secret) with the request id.
	FromError(ctx context.Context, step string, err error) Problem
	// RedirectRefused is the problem of a redirect (raw, as the client sent
	// it) that WXAUTH_ALLOWED_REDIRECTS refuses with err: plain words for
	// the user; the reason and the setting go to the operator's log.
	RedirectRefused(ctx context.Context, raw string, err error) Problem
}

// Config are the dependencies and settings of [New]. Fields without a
// default are required unless their comment says otherwise.
type Config struct {
	Logger    *slog.Logger // default discards
	PublicURL string       // this service's base URL, no trailing slash
	Issuer    string       // "iss" of ID tokens: WXAUTH_ISSUER
	// Audience is the access tokens' "aud" (WXAUTH_AUDIENCE): no client_id
	// may equal it, or that client's ID tokens would pass as access tokens.
	// Empty skips the check.
	Audience string
	AppID    string // the Official Account's appid
	// IDTokenAlg is the default ID-token algorithm (WXAUTH_JWT_ALG); a
	// client's id_token_signed_response_alg overrides it.
	IDTokenAlg string

	Clients  *clients.Registry   // WXAUTH_CLIENTS; an empty registry serves the cookie mode only
	WeChat   *wechat.Client      // web authorization
	Sessions *session.Manager    // every token
	Cookies  *session.Cookies    // state binding, session and browser cookies
	Box      *secret.Box         // seals duplicate-callback outcomes and web tokens
	Users    store.Users         // upsert by WeChat identity
	Records  store.Records       // flows, codes, families
	Allow    *redirect.Allowlist // cookie mode: where /login?redirect=R may return
	Pages    Pages               // renders the H5 pages and maps internal errors (httpapi's); required
	// QR turns on the desktop way in: a browser without MicroMessenger in
	// its User-Agent is sent to GET /login/qr?flow=HANDLE (the QR login
	// page, served by httpapi), whose completion calls
	// [Service.CompleteQR]; false sends it to web authorization.
	QR bool
	// InsideWeChatCookie names a cookie that, set to "1", makes a browser
	// count as WeChat's in-app browser whatever its User-Agent. Only
	// `authsvc dev` sets it (the example page's "as inside WeChat" switch,
	// against the emulator); empty in production.
	InsideWeChatCookie string
	// Observer is told how each login's WeChat leg ended (package metrics
	// counts them); nil tells nobody.
	Observer Observer

	StateTTL      time.Duration    // default DefaultStateTTL
	CodeTTL       time.Duration    // default DefaultCodeTTL; at most 60 s
	IDTokenTTL    time.Duration    // default DefaultIDTokenTTL
	BrowserTTL    time.Duration    // default DefaultBrowserTTL
	ProfileMaxAge time.Duration    // cookie mode without scope: snsapi_base while the profile is younger; default 7 days
	Now           func() time.Time // the clock; default time.Now
}

// Service is the OpenID Provider: it implements [op.Server] and serves the
// WeChat callback and the first-party cookie login. It is safe for
// concurrent use.
type Service struct {
	op.UnimplementedServer
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler // op.RegisterServer over s
	disco   map[string]any
	origin  string // PublicURL's scheme://host[:port], the Origin of its own pages
}

var _ op.Server = (*Service)(nil)

// New checks cfg and builds the provider.
//
// Errors: a missing dependency, a CodeTTL above 60 s, a client_id equal to
// Config.Audience, or an ID-token algorithm (Config.IDTokenAlg, a client's id_token_signed_response_alg)
// the key manager keeps no key of.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.PublicURL == "" || cfg.Issuer == "" || cfg.AppID == "":
		return nil, errors.New("login: Config.PublicURL, Issuer and AppID are required")
	case cfg.WeChat == nil || cfg.Sessions == nil || cfg.Cookies == nil || cfg.Box == nil || cfg.Users == nil || cfg.Records == nil || cfg.Pages == nil:
		return nil, errors.New("login: Config.WeChat, Sessions, Cookies, Box, Users, Records and Pages are required")
	case cfg.CodeTTL > 60*time.Second:
		return nil, errors.New("login: Config.CodeTTL must be at most 60s")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clients == nil {
		cfg.Clients, _ = clients.New()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StateTTL == 0 {
		cfg.StateTTL = DefaultStateTTL
	}
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = DefaultCodeTTL
	}
	if cfg.IDTokenTTL == 0 {
		cfg.IDTokenTTL = DefaultIDTokenTTL
	}
	if cfg.BrowserTTL == 0 {
		cfg.BrowserTTL = DefaultBrowserTTL
	}
	if cfg.ProfileMaxAge == 0 {
		cfg.ProfileMaxAge = 7 * 24 * time.Hour
	}
	if cfg.IDTokenAlg == "" {
		cfg.IDTokenAlg = cfg.Sessions.Alg()
	}
	algs := cfg.Sessions.Algs()
	if !slices.Contains(algs, cfg.IDTokenAlg) {
		return nil, fmt.Errorf("login: the key manager keeps no %s key for ID tokens (session.Config.ExtraAlgs)", cfg.IDTokenAlg)
	}
	for _, c := range cfg.Clients.All() {
		if cfg.Audience != "" && c.ID == cfg.Audience {
			return nil, fmt.Errorf("login: client %q: client_id must differ from the access tokens' audience (WXAUTH_AUDIENCE)", c.ID)
		}
		if c.IDTokenAlg != "" && !slices.Contains(algs, c.IDTokenAlg) {
			return nil, fmt.Errorf("login: client %q: id_token_signed_response_alg %s: the key manager keeps no such key (session.Config.ExtraAlgs)", c.ID, c.IDTokenAlg)
		}
	}
	pu, err := url.Parse(cfg.PublicURL)
	if err != nil || pu.Scheme == "" || pu.Host == "" {
		return nil, fmt.Errorf("login: Config.PublicURL %q is not an absolute URL", cfg.PublicURL)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now, origin: pu.Scheme + "://" + pu.Host}
	s.disco = s.discovery()
	origins := cfg.Clients.Origins()
	s.handler = op.RegisterServer(s, op.Endpoints{
		Authorization: op.NewEndpoint(PathAuthorize),
		Token:         op.NewEndpoint(PathToken),
		Introspection: op.NewEndpoint(PathIntrospect),
		Userinfo:      op.NewEndpoint(PathUserInfo),
		Revocation:    op.NewEndpoint(PathRevoke),
		JwksURI:       op.NewEndpoint(PathJWKS),
	}, op.WithServerCORSOptions(&cors.Options{
		// Pages of the registered clients' origins may call the token,
		// userinfo and revocation endpoints (no cookies needed).
		AllowOriginFunc: func(o string) bool { return slices.Contains(origins, o) },
		AllowedHeaders:  []string{"Authorization", "Content-Type", "Accept"},
		AllowedMethods:  []string{http.MethodGet, http.MethodPost, http.MethodHead},
		MaxAge:          600,
	}))
	return s, nil
}

// Handler serves the endpoints the op package routes: the authorization
// endpoint for client requests (GET and POST /login with client_id), POST
// /oauth/token, GET|POST /userinfo, POST /oauth/revoke and POST
// /oauth/introspect, with CORS for the registered clients' origins.
func (s *Service) Handler() http.Handler { return s.handler }

// client returns the registered client id as an [op.Client].
func (s *Service) client(id string) (*opClient, bool) {
	c, ok := s.cfg.Clients.Lookup(id)
	if !ok {
		return nil, false
	}
	return &opClient{c: c}, true
}

// randomToken returns 32 random bytes as base64url (43 characters).
func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashOf is the hex SHA-256 of a secret value, the only form kept in store
// keys.
func hashOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// count records a login outcome in wxauth_logins_total.
func (s *Service) count(scope string, outcome Outcome) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.LoginEnded(scope, outcome)
	}
}
