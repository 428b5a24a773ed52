package session

import (
	"bytes"
	"github.com/wxauth/wxauth/internal/clocktest"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func cookieKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newCookies(tb testing.TB, c *clocktest.Clock, secure bool, keys ...[]byte) *Cookies {
	tb.Helper()
	ck, err := NewCookies(CookieConfig{Keys: keys, Secure: secure, Now: c.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return ck
}

// roundTrip returns the cookies set on w and a request carrying them.
func roundTrip(w *httptest.ResponseRecorder) ([]*http.Cookie, *http.Request) {
	set := w.Result().Cookies()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range set {
		r.AddCookie(c)
	}
	return set, r
}

func TestNewCookies(t *testing.T) {
	for name, keys := range map[string][][]byte{
		"None":        nil,
		"Short":       {make([]byte, 16)},
		"ShortSecond": {cookieKey(1), make([]byte, 31)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewCookies(CookieConfig{Keys: keys})
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "\x00") {
				t.Fatal("error quotes the key")
			}
		})
	}
}

func TestCookies(t *testing.T) {
	c := newClock()
	ck := newCookies(t, c, true, cookieKey(1))
	exp := c.Now().Add(720 * time.Hour)

	type kind struct {
		name, path string
		set        func(w http.ResponseWriter, v string)
		get        func(r *http.Request) (string, bool)
		clear      func(w http.ResponseWriter)
		maxAge     int
	}
	kinds := []kind{
		{RefreshCookie, "/session", func(w http.ResponseWriter, v string) { ck.SetRefresh(w, v, exp) }, ck.Refresh, ck.ClearRefresh, 720 * 3600},
		{StateCookie, "/oauth/callback", func(w http.ResponseWriter, v string) { ck.SetState(w, v, 10*time.Minute) }, ck.State, ck.ClearState, 600},
		{SessionCookie, "/", func(w http.ResponseWriter, v string) { ck.SetSession(w, v, c.Now().Add(15*time.Minute)) }, ck.Session, ck.ClearSession, 900},
	}
	const value = "Zm9vYmFyLXJlZnJlc2gtdG9rZW4tdmFsdWUtNDMtY2hhcg"
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			k.set(w, value)
			set, r := roundTrip(w)
			if len(set) != 1 {
				t.Fatalf("%d cookies set", len(set))
			}
			sc := set[0]
			if sc.Name != k.name || sc.Path != k.path || !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteLaxMode || sc.MaxAge != k.maxAge {
				t.Fatalf("attributes %+v", sc)
			}
			if !sc.Expires.Equal(c.Now().Add(time.Duration(k.maxAge) * time.Second)) {
				t.Fatalf("Expires %v", sc.Expires)
			}
			if strings.Contains(sc.Value, value) || strings.Contains(w.Header().Get("Set-Cookie"), "Zm9vYmFy") {
				t.Fatal("value readable in the cookie")
			}
			if got, ok := k.get(r); !ok || got != value {
				t.Fatalf("read back %q, %v", got, ok)
			}

			// Hostile or stale cookies read as absent.
			absent := map[string]*http.Request{}
			req := func(name, v string) *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.AddCookie(&http.Cookie{Name: name, Value: v})
				return r
			}
			b := []byte(sc.Value)
			b[len(b)/2] ^= 1
			absent["Tampered"] = req(k.name, string(b))
			absent["Truncated"] = req(k.name, sc.Value[:len(sc.Value)-4])
			absent["Empty"] = req(k.name, "")
			absent["Plain"] = req(k.name, value)
			absent["Missing"] = httptest.NewRequest(http.MethodGet, "/", nil)
			other := newCookies(t, c, true, cookieKey(2))
			w2 := httptest.NewRecorder()
			other.SetRefresh(w2, value, exp)
			other.SetState(w2, value, time.Minute)
			other.SetSession(w2, value, exp)
			for _, fc := range w2.Result().Cookies() {
				if fc.Name == k.name {
					absent["ForeignKey"] = req(k.name, fc.Value)
				}
			}
			for _, o := range kinds { // another cookie's value under this name
				if o.name != k.name {
					w3 := httptest.NewRecorder()
					o.set(w3, value)
					absent["NameSwap/"+o.name] = req(k.name, w3.Result().Cookies()[0].Value)
				}
			}
			for name, r := range absent {
				if got, ok := k.get(r); ok || got != "" {
					t.Errorf("%s: read %q, %v; want absent", name, got, ok)
				}
			}

			// Expired by its own clock, whatever the browser does.
			c2 := newClock()
			late := newCookies(t, c2, true, cookieKey(1))
			c2.Advance(time.Duration(k.maxAge)*time.Second + time.Second)
			if _, ok := (map[string]func(*http.Request) (string, bool){
				RefreshCookie: late.Refresh, StateCookie: late.State, SessionCookie: late.Session,
			})[k.name](r); ok {
				t.Error("expired cookie accepted")
			}

			// Clear.
			w4 := httptest.NewRecorder()
			k.clear(w4)
			cl := w4.Result().Cookies()
			if len(cl) != 1 || cl[0].Name != k.name || cl[0].Path != k.path || cl[0].MaxAge != -1 || cl[0].Value != "" {
				t.Fatalf("clear %+v", cl)
			}
		})
	}
}

func TestCookies_KeyRotation(t *testing.T) {
	c := newClock()
	old := newCookies(t, c, false, cookieKey(1))
	w := httptest.NewRecorder()
	old.SetRefresh(w, "tok", c.Now().Add(time.Hour))
	set, r := roundTrip(w)
	if set[0].Secure {
		t.Fatal("Secure set when not configured")
	}
	rotated := newCookies(t, c, false, cookieKey(2), cookieKey(1))
	if got, ok := rotated.Refresh(r); !ok || got != "tok" {
		t.Fatalf("previous key not accepted: %q %v", got, ok)
	}
	w = httptest.NewRecorder()
	rotated.SetRefresh(w, "tok2", c.Now().Add(time.Hour))
	_, r = roundTrip(w)
	if _, ok := old.Refresh(r); ok {
		t.Fatal("new cookie written under the previous key")
	}
	if got, ok := newCookies(t, c, false, cookieKey(2)).Refresh(r); !ok || got != "tok2" {
		t.Fatal("new cookie not under the current key")
	}
}

func TestCookies_PlantedDuplicate(t *testing.T) {
	c := newClock()
	ck := newCookies(t, c, true, cookieKey(1))
	w := httptest.NewRecorder()
	ck.SetRefresh(w, "good", c.Now().Add(time.Hour))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: RefreshCookie, Value: "planted-by-a-sibling-subdomain"})
	r.AddCookie(w.Result().Cookies()[0])
	if got, ok := ck.Refresh(r); !ok || got != "good" {
		t.Fatalf("Refresh = %q %v; the authentic cookie behind a planted one is lost", got, ok)
	}
}

func TestCookies_TooLong(t *testing.T) {
	c := newClock()
	ck := newCookies(t, c, true, cookieKey(1))
	w := httptest.NewRecorder()
	ck.SetSession(w, strings.Repeat("a", 5000), c.Now().Add(time.Hour))
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("oversized cookie written")
	}
}

// TestCookies_Domain: the session and refresh cookies carry
// CookieConfig.Domain (WXAUTH_COOKIE_DOMAIN); the state and browser
// cookies stay host-only.
func TestCookies_Domain(t *testing.T) {
	c := newClock()
	ck, err := NewCookies(CookieConfig{Keys: [][]byte{make([]byte, 32)}, Domain: "example.com", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	exp := c.Now().Add(time.Hour)
	ck.SetSession(w, "jwt", exp)
	ck.SetRefresh(w, "refresh", exp)
	ck.SetState(w, "state", time.Minute)
	ck.SetBrowser(w, "{}", exp)
	ck.ClearSession(w)
	want := map[string]string{SessionCookie: "example.com", RefreshCookie: "example.com", StateCookie: "", BrowserCookie: ""}
	for _, got := range w.Result().Cookies() {
		if d, ok := want[got.Name]; !ok || got.Domain != d {
			t.Errorf("%s: domain %q, want %q", got.Name, got.Domain, d)
		}
	}
	r := &http.Request{Header: http.Header{"Cookie": {w.Result().Cookies()[3].Name + "=" + w.Result().Cookies()[3].Value}}}
	if v, ok := ck.Browser(r); !ok || v != "{}" {
		t.Errorf("browser cookie: %q %v", v, ok)
	}
}
