package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad_Clients(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("- client_id: page\n  public: true\n  redirect_uris: [\"https://h5.example.com/\"]\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("- client_id: page\n  public: true\n  redirect_uris: [\"http://evil.example/\"]\n"), 0o600)

	t.Run("None", func(t *testing.T) {
		c, err := Load(base(nil), "")
		if err != nil || c.Clients == nil || len(c.Clients.All()) != 0 {
			t.Fatalf("%v %v", c.Clients, err)
		}
	})
	t.Run("Good", func(t *testing.T) {
		c, err := Load(base(map[string]string{"WXAUTH_CLIENTS": good}), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Clients.Lookup("page"); !ok {
			t.Error("page not registered")
		}
	})
	for name, tc := range map[string]struct{ file, want string }{
		"BadField": {bad, `client "page": redirect_uris[0]`},
		"Missing":  {filepath.Join(dir, "none.yaml"), "none.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(base(map[string]string{"WXAUTH_CLIENTS": tc.file}), "")
			var p Problems
			if !errors.As(err, &p) || !strings.Contains(p["WXAUTH_CLIENTS"], tc.want) {
				t.Fatalf("err %v, want WXAUTH_CLIENTS naming %q", err, tc.want)
			}
		})
	}
}

func TestLoad_CookieDomain(t *testing.T) {
	for d, ok := range map[string]bool{
		"example.com": true, ".example.com": true, "auth.example.com": true, "Example.COM": true,
		"other.com": false, "ample.com": false, "https://example.com": false, "example.com:443": false, "com": false,
	} {
		c, err := Load(base(map[string]string{"WXAUTH_COOKIE_DOMAIN": d}), "")
		var p Problems
		if ok && err != nil || !ok && (!errors.As(err, &p) || p["WXAUTH_COOKIE_DOMAIN"] == "") {
			t.Errorf("%q: %v", d, err)
		}
		if ok && strings.HasPrefix(c.CookieDomain, ".") {
			t.Errorf("%q kept its dot: %q", d, c.CookieDomain)
		}
	}
}
