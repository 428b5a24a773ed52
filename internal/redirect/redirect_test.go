package redirect

import (
	"bufio"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

func testAllowlist(t testing.TB) *Allowlist {
	t.Helper()
	a, err := Parse([]string{
		"https://www.whitelisteddomain.tld",
		"http://www.whitelisteddomain.tld",
		"https://*.whitelisteddomain.tld",
		"http://127.0.0.1:8082",
		"https://h5.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAllowlist_Check_OpenRedirects runs oauth2-proxy's corpus: every line,
// once url.QueryUnescape'd, must be refused whatever the allowlist.
func TestAllowlist_Check_OpenRedirects(t *testing.T) {
	f, err := os.Open("testdata/openredirects.txt")
	if err != nil {
		t.Fatalf("open-redirect corpus: %v", err)
	}
	defer f.Close()
	a := testAllowlist(t)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		n++
		raw, err := url.QueryUnescape(line)
		if err != nil {
			raw = line
		}
		if u, err := a.Check(raw, true); err == nil {
			t.Errorf("line %d %q (decoded %q) accepted as %s", n, line, raw, u)
		} else if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("line %d: error %v does not wrap ErrNotAllowed", n, err)
		}
	}
	if n < 500 {
		t.Fatalf("read %d lines, want the whole corpus", n)
	}
}

func TestAllowlist_Check(t *testing.T) {
	a := testAllowlist(t)
	ok := map[string]string{
		"https://www.whitelisteddomain.tld/app?x=1#frag": "https://www.whitelisteddomain.tld/app?x=1",
		"HTTPS://WWW.whitelisteddomain.tld/":             "https://www.whitelisteddomain.tld/",
		"https://a.b.whitelisteddomain.tld/p":            "https://a.b.whitelisteddomain.tld/p",
		"http://127.0.0.1:8082/":                         "http://127.0.0.1:8082/",
		"https://h5.example.com":                         "https://h5.example.com",
	}
	for in, want := range ok {
		u, err := a.Check(in, true)
		if err != nil {
			t.Errorf("Check(%q): %v", in, err)
			continue
		}
		if u.String() != want {
			t.Errorf("Check(%q) = %q, want %q", in, u, want)
		}
	}
	bad := []string{
		"", "/relative", "//h5.example.com/", "https:/h5.example.com", "https:h5.example.com",
		"https://user@h5.example.com/", "https://h5.example.com@evil.com/", "https://evil.com/?https://h5.example.com",
		"https://h5.example.com.evil.com/", "https://h5.example.com:443/", "http://h5.example.com/",
		"https://whitelisteddomain.tld/", "http://a.whitelisteddomain.tld/", "https://h5.example.com\\@evil.com",
		"https://h5.example.com/\t", "javascript:alert(1)", "https://h5.example.com%2f.evil.com/",
		"https://h5.exa\u00e9mple.com/", "https://[::1]/", "https://h5.example.com:0/", "https://h5.example.com:99999/",
		"https://" + strings.Repeat("a", 2100) + ".com/", "https://h5.example.com./", "ftp://h5.example.com/",
	}
	for _, in := range bad {
		if u, err := a.Check(in, true); err == nil {
			t.Errorf("Check(%q) accepted: %s", in, u)
		}
	}
}

func TestParse(t *testing.T) {
	for _, bad := range [][]string{{}, {"h5.example.com"}, {"https://h5.example.com/path"}, {"https://u@h5.example.com"},
		{"ftp://x.com"}, {"https://*.bad_domain"}, {"https://x.com?q=1"}} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestAllowlist_AllowedOrigin(t *testing.T) {
	a := testAllowlist(t)
	for origin, want := range map[string]bool{
		"https://h5.example.com": true, "https://x.whitelisteddomain.tld": true, "http://127.0.0.1:8082": true,
		"https://evil.com": false, "null": false, "http://h5.example.com": false, "": false,
	} {
		if got := a.AllowedOrigin(origin); got != want {
			t.Errorf("AllowedOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
}

func BenchmarkAllowlist_Check(b *testing.B) {
	a := testAllowlist(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Check("https://h5.example.com/app/index.html?from=menu#top", true); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAllowlist_Check_EncodedControls: a redirect on an allowed origin
// whose decoded path, query or fragment carries a control, whitespace or
// format character is refused; ordinary escapes stay accepted.
func TestAllowlist_Check_EncodedControls(t *testing.T) {
	a := testAllowlist(t)
	refuse := []string{
		"https://h5.example.com/a%0d%0aSet-Cookie:x=1",
		"https://h5.example.com/%00",
		"https://h5.example.com/a%09b",
		"https://h5.example.com/a%20b",
		"https://h5.example.com/%7f",
		"https://h5.example.com/%C2%85",     // NEL
		"https://h5.example.com/%C2%A0",     // no-break space
		"https://h5.example.com/%E2%80%A8",  // line separator
		"https://h5.example.com/%E2%80%AEx", // right-to-left override
		"https://h5.example.com/%E2%80%8B",  // zero-width space
		"https://h5.example.com/%ff",        // not UTF-8
		"https://h5.example.com/?q=%0a",
		"https://h5.example.com/?q=a%20b",
		"https://h5.example.com/#%0d",
		"https://h5.example.com/#a%09",
		"https://h5.example.com/%zz",
	}
	refused := 0
	for _, raw := range refuse {
		if u, err := a.Check(raw, false); err == nil {
			t.Errorf("%q accepted as %s", raw, u)
		} else if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%q: %v does not wrap ErrNotAllowed", raw, err)
		} else {
			refused++
		}
	}
	t.Logf("%d redirects with encoded control or whitespace characters on an allowed origin -> %d refused", len(refuse), refused)
	for _, raw := range []string{
		"https://h5.example.com/a%2Fb?q=a+b&r=%E4%BD%A0%E5%A5%BD#top",
		"https://h5.example.com/%E7%99%BB%E5%BD%95",
		"https://h5.example.com/p?next=%2Fhome%3Fa%3D1",
		"https://h5.example.com/p#100%25", // a percent sign in the fragment, encoded once
	} {
		if _, err := a.Check(raw, false); err != nil {
			t.Errorf("%q refused: %v", raw, err)
		}
	}
}
