package config

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid configuration; edit overrides variables.
func base(edit map[string]string) func(string) string {
	env := map[string]string{
		"WXAUTH_PUBLIC_URL": "https://auth.example.com", "WXAUTH_APPID": "wx0123456789abcdef", "WXAUTH_APPSECRET": "s",
		"WXAUTH_SECRET_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "WXAUTH_ALLOWED_REDIRECTS": "https://h5.example.com",
	}
	for k, v := range edit {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

func TestLoad_LimitsAndMetrics(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		c, err := Load(base(nil), "")
		if err != nil {
			t.Fatal(err)
		}
		if c.RateLimit != 10 || c.RateBurst != 40 || c.TrustedProxies != nil || c.MetricsListen != "" {
			t.Errorf("defaults: %v %v %v %q", c.RateLimit, c.RateBurst, c.TrustedProxies, c.MetricsListen)
		}
	})
	t.Run("Set", func(t *testing.T) {
		c, err := Load(base(map[string]string{"WXAUTH_RATE_LIMIT": "2.5", "WXAUTH_RATE_BURST": "5",
			"WXAUTH_TRUSTED_PROXIES": " 10.0.0.0/8, 127.0.0.1 ,::1, 192.168.1.7/16", "WXAUTH_METRICS_LISTEN": "127.0.0.1:9090"}), "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range c.TrustedProxies {
			got = append(got, p.String())
		}
		if c.RateLimit != 2.5 || c.RateBurst != 5 || strings.Join(got, ",") != "10.0.0.0/8,127.0.0.1/32,::1/128,192.168.0.0/16" ||
			c.MetricsListen != "127.0.0.1:9090" {
			t.Errorf("got %v %v %v %q", c.RateLimit, c.RateBurst, got, c.MetricsListen)
		}
	})
	t.Run("Off", func(t *testing.T) {
		c, err := Load(base(map[string]string{"WXAUTH_RATE_LIMIT": "0"}), "")
		if err != nil || c.RateLimit != 0 {
			t.Errorf("WXAUTH_RATE_LIMIT=0: %v %v", c.RateLimit, err)
		}
	})
	for name, tc := range map[string]struct{ name, value string }{
		"NegativeRate":  {"WXAUTH_RATE_LIMIT", "-1"},
		"NaNRate":       {"WXAUTH_RATE_LIMIT", "NaN"},
		"InfRate":       {"WXAUTH_RATE_LIMIT", "+Inf"},
		"WordRate":      {"WXAUTH_RATE_LIMIT", "fast"},
		"ZeroBurst":     {"WXAUTH_RATE_BURST", "0"},
		"FloatBurst":    {"WXAUTH_RATE_BURST", "1.5"},
		"BadCIDR":       {"WXAUTH_TRUSTED_PROXIES", "10.0.0.0/33"},
		"Hostname":      {"WXAUTH_TRUSTED_PROXIES", "proxy.internal"},
		"MetricsNoPort": {"WXAUTH_METRICS_LISTEN", "localhost"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(base(map[string]string{tc.name: tc.value}), "")
			var p Problems
			if !errors.As(err, &p) || p[tc.name] == "" || len(p) != 1 {
				t.Errorf("%s=%q: %v, want exactly one problem naming the variable", tc.name, tc.value, err)
			}
		})
	}
}
