package session

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

// Cookie names and paths.
const (
	RefreshCookie = "wxauth_refresh" // refresh token, Path /session
	StateCookie   = "wxauth_state"   // login state binding, Path /oauth/callback
	SessionCookie = "wxauth_session" // access JWT, Path /
	// BrowserCookie remembers who logged in through the authorization
	// endpoint in this browser (Path /login), so that prompt=none and a
	// second client's login need no WeChat round trip.
	BrowserCookie = "wxauth_browser"

	refreshPath = "/session"
	statePath   = "/oauth/callback"
	browserPath = "/login"
	sessionPath = "/"
)

// cookieKeySize is the length of each WXAUTH_SECRET_KEY, in bytes.
const cookieKeySize = 32

// HKDF labels that make the cookie keys independent of the sealing key and
// of each other.
const (
	hashLabel  = "wxauth cookie hmac-sha256"
	blockLabel = "wxauth cookie aes-256"
)

// CookieConfig configures [Cookies].
type CookieConfig struct {
	// Keys are 32-byte secrets: the current WXAUTH_SECRET_KEY first, then
	// WXAUTH_SECRET_KEY_PREVIOUS. Cookies are written under the first and
	// read under any. HMAC-SHA256 and AES-256 keys are derived from each by
	// HKDF-SHA256 with distinct labels. At least one is required.
	Keys [][]byte
	// Secure sets the Secure attribute (true behind HTTPS).
	Secure bool
	// Domain is the Domain attribute of the session and refresh cookies
	// (WXAUTH_COOKIE_DOMAIN, e.g. "example.com" for pages on its
	// subdomains); empty keeps them host-only. The state and browser
	// cookies are always host-only.
	Domain string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Cookies writes and reads wxauth's cookies, authenticated (HMAC-SHA256,
// bound to the cookie name) and encrypted (AES-256-CTR) by
// gorilla/securecookie, each carrying its own expiry. A cookie that is
// absent, tampered, truncated, expired, written under an unknown key or
// under another cookie's name reads as absent. Values are limited to about
// 2 KiB (4096 bytes once encoded); a longer value is not written. It is safe
// for concurrent use.
type Cookies struct {
	codecs []securecookie.Codec // [0] writes
	secure bool
	domain string
	now    func() time.Time
}

// NewCookies derives the cookie keys from cfg.Keys.
//
// Errors: no key, or a key that is not 32 bytes (naming its position, never
// its value).
func NewCookies(cfg CookieConfig) (*Cookies, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("session: cookies: no key")
	}
	c := &Cookies{secure: cfg.Secure, domain: cfg.Domain, now: cfg.Now}
	if c.now == nil {
		c.now = time.Now
	}
	for i, k := range cfg.Keys {
		if len(k) != cookieKeySize {
			return nil, fmt.Errorf("session: cookies: key %d is %d bytes, want %d", i, len(k), cookieKeySize)
		}
		hk, err := hkdf.Key(sha256.New, k, nil, hashLabel, 32)
		if err != nil {
			return nil, fmt.Errorf("session: cookies: derive key %d: %w", i, err)
		}
		bk, err := hkdf.Key(sha256.New, k, nil, blockLabel, 32)
		if err != nil {
			return nil, fmt.Errorf("session: cookies: derive key %d: %w", i, err)
		}
		sc := securecookie.New(hk, bk)
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(0) // the expiry inside the value rules
		c.codecs = append(c.codecs, sc)
	}
	return c, nil
}

// set writes cookie name carrying value until expires (at least 1 s from
// now). An unencodable (too long) value writes nothing.
func (c *Cookies) set(w http.ResponseWriter, name, path, value string, expires time.Time) {
	c.setDomain(w, name, path, "", value, expires)
}

// setDomain is set with a Domain attribute (empty: host-only).
func (c *Cookies) setDomain(w http.ResponseWriter, name, path, domain, value string, expires time.Time) {
	now := c.now()
	if !expires.After(now) {
		expires = now.Add(time.Second)
	}
	b := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(b, uint64(expires.Unix()))
	b = append(b, value...)
	enc, err := securecookie.EncodeMulti(name, b, c.codecs[0])
	if err != nil {
		return
	}
	maxAge := int(expires.Sub(now) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    enc,
		Path:     path,
		Domain:   domain,
		Expires:  expires,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// get returns the first cookie called name that decodes under any key and
// has not expired. Several cookies of one name (one planted by a sibling
// subdomain) are each tried.
func (c *Cookies) get(r *http.Request, name string) (string, bool) {
	now := c.now().Unix()
	for _, ck := range r.CookiesNamed(name) {
		var b []byte
		if err := securecookie.DecodeMulti(name, ck.Value, &b, c.codecs...); err != nil || len(b) < 8 {
			continue
		}
		if int64(binary.BigEndian.Uint64(b)) <= now {
			continue
		}
		return string(b[8:]), true
	}
	return "", false
}

// clear deletes cookie name at path.
func (c *Cookies) clear(w http.ResponseWriter, name, path string) {
	c.clearDomain(w, name, path, "")
}

// clearDomain is clear for a cookie written with a Domain attribute.
func (c *Cookies) clearDomain(w http.ResponseWriter, name, path, domain string) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     path,
		Domain:   domain,
		Expires:  time.Unix(1, 0),
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// SetRefresh writes the refresh token into cookie "wxauth_refresh" (Path
// /session, HttpOnly, SameSite=Lax, Secure per config) until expires
// (Tokens.RefreshExpires), with matching Expires and Max-Age (seconds).
func (c *Cookies) SetRefresh(w http.ResponseWriter, token string, expires time.Time) {
	c.setDomain(w, RefreshCookie, refreshPath, c.domain, token, expires)
}

// Refresh returns the refresh token of cookie "wxauth_refresh"; false when
// the cookie is absent, expired, tampered, truncated or under a foreign key.
func (c *Cookies) Refresh(r *http.Request) (string, bool) {
	return c.get(r, RefreshCookie)
}

// ClearRefresh deletes cookie "wxauth_refresh" (Max-Age -1).
func (c *Cookies) ClearRefresh(w http.ResponseWriter) {
	c.clearDomain(w, RefreshCookie, refreshPath, c.domain)
}

// SetState binds a login state to the browser: cookie "wxauth_state" (Path
// /oauth/callback, HttpOnly, SameSite=Lax so that it returns on WeChat's
// top-level redirect) for maxAge (the state record's life, 10 min).
func (c *Cookies) SetState(w http.ResponseWriter, state string, maxAge time.Duration) {
	c.set(w, StateCookie, statePath, state, c.now().Add(maxAge))
}

// State returns the login state of cookie "wxauth_state"; false when absent,
// expired or not authentic.
func (c *Cookies) State(r *http.Request) (string, bool) {
	return c.get(r, StateCookie)
}

// ClearState deletes cookie "wxauth_state".
func (c *Cookies) ClearState(w http.ResponseWriter) {
	c.clear(w, StateCookie, statePath)
}

// SetSession writes the access JWT into cookie "wxauth_session" (Path /,
// HttpOnly, SameSite=Lax) until expires (the JWT's exp), so that /verify
// (nginx auth_request) accepts browsers that send no Authorization header.
func (c *Cookies) SetSession(w http.ResponseWriter, jwt string, expires time.Time) {
	c.setDomain(w, SessionCookie, sessionPath, c.domain, jwt, expires)
}

// Session returns the access JWT of cookie "wxauth_session"; false when
// absent, expired or not authentic. The JWT itself still needs
// [Manager.Verify].
func (c *Cookies) Session(r *http.Request) (string, bool) {
	return c.get(r, SessionCookie)
}

// ClearSession deletes cookie "wxauth_session".
func (c *Cookies) ClearSession(w http.ResponseWriter) {
	c.clearDomain(w, SessionCookie, sessionPath, c.domain)
}

// SetBrowser writes cookie "wxauth_browser" (Path /login, host-only,
// HttpOnly, SameSite=Lax) carrying value (the login package's encoding of
// who logged in) until expires.
func (c *Cookies) SetBrowser(w http.ResponseWriter, value string, expires time.Time) {
	c.set(w, BrowserCookie, browserPath, value, expires)
}

// Browser returns the value of cookie "wxauth_browser"; false when absent,
// expired or not authentic.
func (c *Cookies) Browser(r *http.Request) (string, bool) {
	return c.get(r, BrowserCookie)
}

// ClearBrowser deletes cookie "wxauth_browser".
func (c *Cookies) ClearBrowser(w http.ResponseWriter) {
	c.clear(w, BrowserCookie, browserPath)
}
