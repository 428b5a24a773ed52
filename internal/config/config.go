// Package config loads and validates wxauth's configuration from WXAUTH_*
// environment variables and an optional YAML file (named by --config or
// WXAUTH_CONFIG; the environment wins). Load reports every problem at once,
// one per variable, so an operator fixes them in one pass. Only cmd/authsvc
// imports this package; it hands plain values to every other package.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wxauth/wxauth/internal/clients"
)

// DefaultDatabaseURL is WXAUTH_DATABASE_URL when it is not set: a SQLite
// file in the working directory.
const DefaultDatabaseURL = "sqlite:wxauth.db"

// Config is the validated configuration of `authsvc serve`. Durations are
// time.Duration values parsed from Go duration strings ("15m", "720h") or
// plain integers meaning seconds.
type Config struct {
	Listen    string // WXAUTH_LISTEN, host:port; default 127.0.0.1:8080
	PublicURL string // WXAUTH_PUBLIC_URL: the URL browsers and WeChat reach this service at, no trailing slash

	AppID     string // WXAUTH_APPID: the Official Account's appid (wx + 16 hex)
	AppSecret string // WXAUTH_APPSECRET
	// SecretKey is WXAUTH_SECRET_KEY decoded: 32 bytes (base64 in the
	// environment) sealing tokens and private keys at rest and keying cookies.
	SecretKey []byte
	// SecretKeyPrevious is WXAUTH_SECRET_KEY_PREVIOUS decoded, or nil: still
	// opens values and cookies sealed before a rotation.
	SecretKeyPrevious []byte

	AllowedRedirects []string // WXAUTH_ALLOWED_REDIRECTS, comma-separated scheme://host[:port] or https://*.domain

	// ClientsFile is WXAUTH_CLIENTS: the path of the YAML registry of
	// OAuth/OpenID Connect clients; empty registers none (only the
	// first-party cookie login works).
	ClientsFile string
	// Clients is the registry read from ClientsFile (an empty registry
	// without one). A bad file is a problem of WXAUTH_CLIENTS naming each
	// client and field.
	Clients *clients.Registry
	// CookieDomain is WXAUTH_COOKIE_DOMAIN: the Domain of the
	// wxauth_session and refresh cookies (e.g. "example.com" for pages on
	// its subdomains, behind nginx auth_request); empty keeps them
	// host-only. It must be the public URL's host or a parent of it.
	CookieDomain string

	DatabaseURL string // WXAUTH_DATABASE_URL: sqlite:PATH (default DefaultDatabaseURL) or postgres://...
	RedisURL    string // WXAUTH_REDIS_URL: redis://host:port/db, empty for none
	RedisPrefix string // WXAUTH_REDIS_PREFIX: namespace of every Redis key; default "wxauth:"

	WeChatAPIBase  string // WXAUTH_WECHAT_API_BASE, default https://api.weixin.qq.com
	WeChatOpenBase string // WXAUTH_WECHAT_OPEN_BASE, default https://open.weixin.qq.com
	WeChatMPBase   string // WXAUTH_WECHAT_MP_BASE, default https://mp.weixin.qq.com
	WeChatTimeout  time.Duration
	TokenAPI       string // WXAUTH_TOKEN_API: stable (default) or classic

	AccessTokenTTL  time.Duration // WXAUTH_ACCESS_TOKEN_TTL, default 15m
	RefreshTokenTTL time.Duration // WXAUTH_REFRESH_TOKEN_TTL, default 720h
	RefreshGrace    time.Duration // WXAUTH_REFRESH_GRACE, default 0
	Issuer          string        // WXAUTH_ISSUER, default PublicURL
	Audience        string        // WXAUTH_AUDIENCE, default wxauth
	JWTAlg          string        // WXAUTH_JWT_ALG: ES256 (default), RS256, EdDSA
	KeyRotation     time.Duration // WXAUTH_KEY_ROTATION, default 720h; 0 disables scheduled rotation
	ProfileMaxAge   time.Duration // WXAUTH_PROFILE_MAX_AGE, default 168h

	CallbackToken          string        // WXAUTH_CALLBACK_TOKEN: the Token of 服务器配置; empty disables /wx
	EncodingAESKey         string        // WXAUTH_ENCODING_AES_KEY: 43 characters [A-Za-z0-9]
	EncodingAESKeyPrevious string        // WXAUTH_ENCODING_AES_KEY_PREVIOUS
	CallbackMode           string        // WXAUTH_CALLBACK_MODE: plain, compat or safe (default safe with a key, else plain)
	OriginalID             string        // WXAUTH_ORIGINAL_ID: gh_ id checked against ToUserName when set
	CallbackMaxSkew        time.Duration // WXAUTH_CALLBACK_MAX_SKEW, default 300s; 0 turns the check off
	CallbackRules          string        // WXAUTH_CALLBACK_RULES: path of the YAML rules file
	CallbackForwardURL     string        // WXAUTH_CALLBACK_FORWARD_URL
	CallbackForwardSecret  string        // WXAUTH_CALLBACK_FORWARD_SECRET

	AdminToken string // WXAUTH_ADMIN_TOKEN: bearer token of /internal/*; empty disables those endpoints

	LogFormat   string // WXAUTH_LOG_FORMAT: json (default) or text
	LogLevel    string // WXAUTH_LOG_LEVEL: debug, info (default), warn, error
	PprofListen string // WXAUTH_PPROF_LISTEN: address of net/http/pprof, empty = off

	// MetricsListen is WXAUTH_METRICS_LISTEN: host:port serving GET /metrics
	// alone; empty serves /metrics on the main listener.
	MetricsListen string
	// RateLimit is WXAUTH_RATE_LIMIT: requests per second per client IP on
	// /login, /oauth/callback, /session/refresh and /qr/sessions; default
	// 10; 0 turns the limits off.
	RateLimit float64
	// RateBurst is WXAUTH_RATE_BURST: requests a client IP may make at once
	// before RateLimit applies; default 40.
	RateBurst int
	// TrustedProxies is WXAUTH_TRUSTED_PROXIES, comma-separated CIDRs (or
	// bare IPs): peers whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix

	// RateClients is WXAUTH_RATE_CLIENTS: how many client IPs the rate
	// limits track at once; default 16384. A bucket that has refilled is
	// dropped (it is what a new one would be); when the table is still full,
	// requests from new addresses to the limited endpoints get 503.
	RateClients int
	// QRCreatePerMinute is WXAUTH_QR_CREATE_PER_MINUTE: WeChat QR codes
	// (cgi-bin/qrcode/create) the service may create per minute, all
	// clients together; default 60 (86,400 a day). Past it, QR login
	// answers 503 with Retry-After.
	QRCreatePerMinute int
	// StreamsPerIP is WXAUTH_STREAMS_PER_IP: open QR event streams
	// (/qr/sessions/{id}/events) per client IP; default 4. Past it, 429.
	StreamsPerIP int
	// StreamsMax is WXAUTH_STREAMS_MAX: open QR event streams in total;
	// default 256. Past it, 503; the QR page then polls.
	StreamsMax int
	// RecordsMemoryMiB is WXAUTH_RECORDS_MEMORY_MB: the bound, in MiB, of
	// the short-lived records kept in process memory (callback
	// de-duplication on SQLite; every record in tests); default 16. Past
	// it, the records closest to expiry are evicted.
	RecordsMemoryMiB int
	// VerifyCacheSize is WXAUTH_VERIFY_CACHE: verified access tokens
	// remembered (about 1 KiB each) so /verify and /me skip the signature
	// check; default 10000.
	VerifyCacheSize int

	// InsideWeChatCookie has no variable: `authsvc dev` sets it so that its
	// example page can let a desktop browser take the in-WeChat path
	// against the emulator (login.Config.InsideWeChatCookie).
	InsideWeChatCookie string
}

// Problems maps a variable name to what is wrong with it. It is the error
// Load returns; its Error lists one "NAME: problem" per line, sorted.
type Problems map[string]string

// Error lists the problems as "NAME: problem" lines sorted by name.
func (p Problems) Error() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k + ": " + p[k])
	}
	return b.String()
}

var aesKeyRE = regexp.MustCompile(`^[A-Za-z0-9]{43}$`)

// Load reads the configuration through getenv (os.Getenv in production, a
// map in tests). When WXAUTH_CONFIG (or configFile, if non-empty) names a
// YAML file, its keys (variable names with or without the WXAUTH_ prefix, any
// case) supply values the environment does not set. Errors: [Problems] for
// missing or malformed variables; a wrapped error when the file cannot be
// read or parsed.
func Load(getenv func(string) string, configFile string) (*Config, error) {
	file := map[string]string{}
	if configFile == "" {
		configFile = getenv("WXAUTH_CONFIG")
	}
	if configFile != "" {
		b, err := os.ReadFile(configFile)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		raw := map[string]any{}
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("config: %s: %w", configFile, err)
		}
		for k, v := range raw {
			name := strings.ToUpper(k)
			if !strings.HasPrefix(name, "WXAUTH_") {
				name = "WXAUTH_" + name
			}
			switch v := v.(type) {
			case []any:
				parts := make([]string, len(v))
				for i, e := range v {
					parts[i] = fmt.Sprint(e)
				}
				file[name] = strings.Join(parts, ",")
			default:
				file[name] = fmt.Sprint(v)
			}
		}
	}
	l := &loader{getenv: getenv, file: file, problems: Problems{}}
	c := &Config{
		Listen:                 l.str("WXAUTH_LISTEN", "127.0.0.1:8080"),
		PublicURL:              strings.TrimRight(l.str("WXAUTH_PUBLIC_URL", ""), "/"),
		AppID:                  l.str("WXAUTH_APPID", ""),
		AppSecret:              l.str("WXAUTH_APPSECRET", ""),
		SecretKey:              l.key("WXAUTH_SECRET_KEY", true),
		SecretKeyPrevious:      l.key("WXAUTH_SECRET_KEY_PREVIOUS", false),
		AllowedRedirects:       l.list("WXAUTH_ALLOWED_REDIRECTS"),
		DatabaseURL:            l.str("WXAUTH_DATABASE_URL", DefaultDatabaseURL),
		RedisURL:               l.str("WXAUTH_REDIS_URL", ""),
		RedisPrefix:            l.str("WXAUTH_REDIS_PREFIX", "wxauth:"),
		WeChatAPIBase:          strings.TrimRight(l.str("WXAUTH_WECHAT_API_BASE", "https://api.weixin.qq.com"), "/"),
		WeChatOpenBase:         strings.TrimRight(l.str("WXAUTH_WECHAT_OPEN_BASE", "https://open.weixin.qq.com"), "/"),
		WeChatMPBase:           strings.TrimRight(l.str("WXAUTH_WECHAT_MP_BASE", "https://mp.weixin.qq.com"), "/"),
		WeChatTimeout:          l.duration("WXAUTH_WECHAT_TIMEOUT", 10*time.Second, false),
		TokenAPI:               l.oneOf("WXAUTH_TOKEN_API", "stable", "stable", "classic"),
		AccessTokenTTL:         l.duration("WXAUTH_ACCESS_TOKEN_TTL", 15*time.Minute, false),
		RefreshTokenTTL:        l.duration("WXAUTH_REFRESH_TOKEN_TTL", 720*time.Hour, false),
		RefreshGrace:           l.duration("WXAUTH_REFRESH_GRACE", 0, true),
		Audience:               l.str("WXAUTH_AUDIENCE", "wxauth"),
		JWTAlg:                 l.oneOf("WXAUTH_JWT_ALG", "ES256", "ES256", "RS256", "EdDSA"),
		KeyRotation:            l.duration("WXAUTH_KEY_ROTATION", 720*time.Hour, true),
		ProfileMaxAge:          l.duration("WXAUTH_PROFILE_MAX_AGE", 7*24*time.Hour, true),
		CallbackToken:          l.str("WXAUTH_CALLBACK_TOKEN", ""),
		EncodingAESKey:         l.str("WXAUTH_ENCODING_AES_KEY", ""),
		EncodingAESKeyPrevious: l.str("WXAUTH_ENCODING_AES_KEY_PREVIOUS", ""),
		OriginalID:             l.str("WXAUTH_ORIGINAL_ID", ""),
		CallbackMaxSkew:        l.duration("WXAUTH_CALLBACK_MAX_SKEW", 300*time.Second, true),
		CallbackRules:          l.str("WXAUTH_CALLBACK_RULES", ""),
		CallbackForwardURL:     l.str("WXAUTH_CALLBACK_FORWARD_URL", ""),
		CallbackForwardSecret:  l.str("WXAUTH_CALLBACK_FORWARD_SECRET", ""),
		AdminToken:             l.str("WXAUTH_ADMIN_TOKEN", ""),
		LogFormat:              l.oneOf("WXAUTH_LOG_FORMAT", "json", "json", "text"),
		LogLevel:               l.oneOf("WXAUTH_LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		PprofListen:            l.str("WXAUTH_PPROF_LISTEN", ""),
	}
	c.Issuer = l.str("WXAUTH_ISSUER", c.PublicURL)
	c.ClientsFile = l.str("WXAUTH_CLIENTS", "")
	c.CookieDomain = strings.TrimPrefix(strings.ToLower(l.str("WXAUTH_COOKIE_DOMAIN", "")), ".")
	c.MetricsListen = l.str("WXAUTH_METRICS_LISTEN", "")
	c.RateLimit = l.float("WXAUTH_RATE_LIMIT", 10)
	c.RateBurst = l.positiveInt("WXAUTH_RATE_BURST", 40)
	c.TrustedProxies = l.prefixes("WXAUTH_TRUSTED_PROXIES")
	c.RateClients = l.positiveInt("WXAUTH_RATE_CLIENTS", 16384)
	c.QRCreatePerMinute = l.positiveInt("WXAUTH_QR_CREATE_PER_MINUTE", 60)
	c.StreamsPerIP = l.positiveInt("WXAUTH_STREAMS_PER_IP", 4)
	c.StreamsMax = l.positiveInt("WXAUTH_STREAMS_MAX", 256)
	c.RecordsMemoryMiB = l.positiveInt("WXAUTH_RECORDS_MEMORY_MB", 16)
	c.VerifyCacheSize = l.positiveInt("WXAUTH_VERIFY_CACHE", 10000)
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			l.problems["WXAUTH_METRICS_LISTEN"] = "must be host:port"
		}
	}
	defMode := "plain"
	if c.EncodingAESKey != "" {
		defMode = "safe"
	}
	c.CallbackMode = l.oneOf("WXAUTH_CALLBACK_MODE", defMode, "plain", "compat", "safe")

	p := l.problems
	if c.AppID == "" {
		p["WXAUTH_APPID"] = "required: the Official Account's appid"
	}
	if c.AppSecret == "" {
		p["WXAUTH_APPSECRET"] = "required: the Official Account's AppSecret"
	}
	if c.PublicURL == "" {
		p["WXAUTH_PUBLIC_URL"] = "required: the http(s) URL this service is reached at, e.g. https://auth.example.com"
	} else if !isHTTPURL(c.PublicURL) {
		p["WXAUTH_PUBLIC_URL"] = "must be an absolute http or https URL"
	}
	if len(c.AllowedRedirects) == 0 {
		p["WXAUTH_ALLOWED_REDIRECTS"] = "required: comma-separated scheme://host[:port] or https://*.domain entries"
	} else if _, err := ParseAllowlist(c.AllowedRedirects); err != nil {
		p["WXAUTH_ALLOWED_REDIRECTS"] = err.Error()
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p["WXAUTH_LISTEN"] = "must be host:port"
	}
	for name, v := range map[string]string{"WXAUTH_WECHAT_API_BASE": c.WeChatAPIBase, "WXAUTH_WECHAT_OPEN_BASE": c.WeChatOpenBase, "WXAUTH_WECHAT_MP_BASE": c.WeChatMPBase} {
		if !isHTTPURL(v) {
			p[name] = "must be an absolute http or https URL"
		}
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		p["WXAUTH_DATABASE_URL"] = "must be sqlite:PATH or postgres://..."
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		p["WXAUTH_REDIS_URL"] = "must be redis://host:port/db or rediss://..."
	}
	for _, v := range []string{"WXAUTH_ENCODING_AES_KEY", "WXAUTH_ENCODING_AES_KEY_PREVIOUS"} {
		if s := l.str(v, ""); s != "" && !aesKeyRE.MatchString(s) {
			p[v] = "must be 43 characters [A-Za-z0-9] (the EncodingAESKey of 服务器配置)"
		}
	}
	if c.CallbackMode != "plain" && c.EncodingAESKey == "" && p["WXAUTH_CALLBACK_MODE"] == "" {
		p["WXAUTH_ENCODING_AES_KEY"] = "required when WXAUTH_CALLBACK_MODE is " + c.CallbackMode
	}
	if c.CallbackForwardURL != "" && !isHTTPURL(c.CallbackForwardURL) {
		p["WXAUTH_CALLBACK_FORWARD_URL"] = "must be an absolute http or https URL"
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		p["WXAUTH_ADMIN_TOKEN"] = "must be at least 16 characters"
	}
	if c.AccessTokenTTL < time.Minute && p["WXAUTH_ACCESS_TOKEN_TTL"] == "" {
		p["WXAUTH_ACCESS_TOKEN_TTL"] = "must be at least 1m"
	}
	if c.RefreshTokenTTL < c.AccessTokenTTL && p["WXAUTH_REFRESH_TOKEN_TTL"] == "" {
		p["WXAUTH_REFRESH_TOKEN_TTL"] = "must not be shorter than WXAUTH_ACCESS_TOKEN_TTL"
	}
	if c.ClientsFile != "" {
		reg, err := clients.Load(c.ClientsFile)
		if err != nil {
			p["WXAUTH_CLIENTS"] = c.ClientsFile + ":\n  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
		}
		c.Clients = reg
	}
	if c.Clients == nil {
		c.Clients, _ = clients.New()
	}
	if c.CookieDomain != "" {
		if msg := checkCookieDomain(c.CookieDomain, c.PublicURL); msg != "" {
			p["WXAUTH_COOKIE_DOMAIN"] = msg
		}
	}
	if len(p) > 0 {
		return c, p
	}
	return c, nil
}

// checkCookieDomain returns why d cannot be the cookie domain of a service
// at publicURL, or "".
func checkCookieDomain(d, publicURL string) string {
	if strings.ContainsAny(d, ":/ ") || !strings.Contains(d, ".") && d != "localhost" {
		return "must be a domain name such as example.com (no scheme, port or path)"
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	if host != d && !strings.HasSuffix(host, "."+d) {
		return "must be the host of WXAUTH_PUBLIC_URL (" + host + ") or a parent domain of it, or browsers drop the cookie"
	}
	return ""
}
