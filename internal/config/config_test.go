package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoad_Problems: every validation of Load, one case each, through the
// environment. Each case names the variable and a part of its message.
func TestLoad_Problems(t *testing.T) {
	for name, tc := range map[string]struct {
		env      map[string]string
		variable string
		msg      string
	}{
		"AppIDMissing":          {map[string]string{"WXAUTH_APPID": ""}, "WXAUTH_APPID", "required"},
		"AppSecretMissing":      {map[string]string{"WXAUTH_APPSECRET": ""}, "WXAUTH_APPSECRET", "required"},
		"PublicURLMissing":      {map[string]string{"WXAUTH_PUBLIC_URL": ""}, "WXAUTH_PUBLIC_URL", "required"},
		"PublicURLRelative":     {map[string]string{"WXAUTH_PUBLIC_URL": "auth.example.com"}, "WXAUTH_PUBLIC_URL", "absolute http or https"},
		"PublicURLScheme":       {map[string]string{"WXAUTH_PUBLIC_URL": "ftp://auth.example.com"}, "WXAUTH_PUBLIC_URL", "absolute http or https"},
		"SecretKeyMissing":      {map[string]string{"WXAUTH_SECRET_KEY": ""}, "WXAUTH_SECRET_KEY", "required: 32 random bytes"},
		"SecretKeyShort":        {map[string]string{"WXAUTH_SECRET_KEY": "AAECAwQ="}, "WXAUTH_SECRET_KEY", "32 bytes, got 5"},
		"SecretKeyNotBase64":    {map[string]string{"WXAUTH_SECRET_KEY": "not base64 !!"}, "WXAUTH_SECRET_KEY", "base64"},
		"PreviousKeyShort":      {map[string]string{"WXAUTH_SECRET_KEY_PREVIOUS": "AAECAwQ="}, "WXAUTH_SECRET_KEY_PREVIOUS", "32 bytes"},
		"RedirectsMissing":      {map[string]string{"WXAUTH_ALLOWED_REDIRECTS": ""}, "WXAUTH_ALLOWED_REDIRECTS", "required"},
		"RedirectsBad":          {map[string]string{"WXAUTH_ALLOWED_REDIRECTS": "javascript:alert(1)"}, "WXAUTH_ALLOWED_REDIRECTS", ""},
		"Listen":                {map[string]string{"WXAUTH_LISTEN": "8080"}, "WXAUTH_LISTEN", "host:port"},
		"APIBase":               {map[string]string{"WXAUTH_WECHAT_API_BASE": "api.weixin.qq.com"}, "WXAUTH_WECHAT_API_BASE", "absolute"},
		"OpenBase":              {map[string]string{"WXAUTH_WECHAT_OPEN_BASE": "/x"}, "WXAUTH_WECHAT_OPEN_BASE", "absolute"},
		"MPBase":                {map[string]string{"WXAUTH_WECHAT_MP_BASE": "mp"}, "WXAUTH_WECHAT_MP_BASE", "absolute"},
		"Timeout":               {map[string]string{"WXAUTH_WECHAT_TIMEOUT": "0"}, "WXAUTH_WECHAT_TIMEOUT", "positive duration"},
		"TimeoutNegative":       {map[string]string{"WXAUTH_WECHAT_TIMEOUT": "-5s"}, "WXAUTH_WECHAT_TIMEOUT", "positive duration"},
		"TokenAPI":              {map[string]string{"WXAUTH_TOKEN_API": "fast"}, "WXAUTH_TOKEN_API", "stable, classic"},
		"DatabaseURL":           {map[string]string{"WXAUTH_DATABASE_URL": "mysql://x"}, "WXAUTH_DATABASE_URL", "sqlite:PATH or postgres"},
		"RedisURL":              {map[string]string{"WXAUTH_REDIS_URL": "127.0.0.1:6379"}, "WXAUTH_REDIS_URL", "redis://"},
		"AccessTTLShort":        {map[string]string{"WXAUTH_ACCESS_TOKEN_TTL": "30s"}, "WXAUTH_ACCESS_TOKEN_TTL", "at least 1m"},
		"AccessTTLBad":          {map[string]string{"WXAUTH_ACCESS_TOKEN_TTL": "soon"}, "WXAUTH_ACCESS_TOKEN_TTL", "positive duration"},
		"RefreshTTLShort":       {map[string]string{"WXAUTH_ACCESS_TOKEN_TTL": "1h", "WXAUTH_REFRESH_TOKEN_TTL": "30m"}, "WXAUTH_REFRESH_TOKEN_TTL", "not be shorter"},
		"RefreshGraceNegative":  {map[string]string{"WXAUTH_REFRESH_GRACE": "-1s"}, "WXAUTH_REFRESH_GRACE", "positive duration"},
		"JWTAlg":                {map[string]string{"WXAUTH_JWT_ALG": "HS256"}, "WXAUTH_JWT_ALG", "ES256, RS256, EdDSA"},
		"KeyRotation":           {map[string]string{"WXAUTH_KEY_ROTATION": "weekly"}, "WXAUTH_KEY_ROTATION", "positive duration"},
		"ProfileMaxAge":         {map[string]string{"WXAUTH_PROFILE_MAX_AGE": "-1h"}, "WXAUTH_PROFILE_MAX_AGE", "positive duration"},
		"AESKey":                {map[string]string{"WXAUTH_ENCODING_AES_KEY": "short"}, "WXAUTH_ENCODING_AES_KEY", "43 characters"},
		"AESKeyPrevious":        {map[string]string{"WXAUTH_ENCODING_AES_KEY_PREVIOUS": strings.Repeat("a", 42) + "!"}, "WXAUTH_ENCODING_AES_KEY_PREVIOUS", "43 characters"},
		"ModeWithoutKey":        {map[string]string{"WXAUTH_CALLBACK_MODE": "safe"}, "WXAUTH_ENCODING_AES_KEY", "required when WXAUTH_CALLBACK_MODE is safe"},
		"ModeUnknown":           {map[string]string{"WXAUTH_CALLBACK_MODE": "secret"}, "WXAUTH_CALLBACK_MODE", "plain, compat, safe"},
		"MaxSkew":               {map[string]string{"WXAUTH_CALLBACK_MAX_SKEW": "later"}, "WXAUTH_CALLBACK_MAX_SKEW", "positive duration"},
		"ForwardURL":            {map[string]string{"WXAUTH_CALLBACK_FORWARD_URL": "hooks.example.com/wx"}, "WXAUTH_CALLBACK_FORWARD_URL", "absolute"},
		"AdminTokenShort":       {map[string]string{"WXAUTH_ADMIN_TOKEN": "short"}, "WXAUTH_ADMIN_TOKEN", "at least 16"},
		"LogFormat":             {map[string]string{"WXAUTH_LOG_FORMAT": "xml"}, "WXAUTH_LOG_FORMAT", "json, text"},
		"LogLevel":              {map[string]string{"WXAUTH_LOG_LEVEL": "trace"}, "WXAUTH_LOG_LEVEL", "debug, info, warn, error"},
		"MetricsListen":         {map[string]string{"WXAUTH_METRICS_LISTEN": "9090"}, "WXAUTH_METRICS_LISTEN", "host:port"},
		"RateLimitNegative":     {map[string]string{"WXAUTH_RATE_LIMIT": "-1"}, "WXAUTH_RATE_LIMIT", ">= 0"},
		"RateLimitNaN":          {map[string]string{"WXAUTH_RATE_LIMIT": "NaN"}, "WXAUTH_RATE_LIMIT", ">= 0"},
		"RateBurstZero":         {map[string]string{"WXAUTH_RATE_BURST": "0"}, "WXAUTH_RATE_BURST", ">= 1"},
		"TrustedProxiesBad":     {map[string]string{"WXAUTH_TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "WXAUTH_TRUSTED_PROXIES", `bad entry "proxy"`},
		"RateClients":           {map[string]string{"WXAUTH_RATE_CLIENTS": "0"}, "WXAUTH_RATE_CLIENTS", ">= 1"},
		"QRCreatePerMinute":     {map[string]string{"WXAUTH_QR_CREATE_PER_MINUTE": "many"}, "WXAUTH_QR_CREATE_PER_MINUTE", ">= 1"},
		"StreamsPerIP":          {map[string]string{"WXAUTH_STREAMS_PER_IP": "-2"}, "WXAUTH_STREAMS_PER_IP", ">= 1"},
		"StreamsMax":            {map[string]string{"WXAUTH_STREAMS_MAX": "0"}, "WXAUTH_STREAMS_MAX", ">= 1"},
		"RecordsMemory":         {map[string]string{"WXAUTH_RECORDS_MEMORY_MB": "1.5"}, "WXAUTH_RECORDS_MEMORY_MB", ">= 1"},
		"VerifyCache":           {map[string]string{"WXAUTH_VERIFY_CACHE": "0"}, "WXAUTH_VERIFY_CACHE", ">= 1"},
		"TrustedProxiesBadCIDR": {map[string]string{"WXAUTH_TRUSTED_PROXIES": "10.0.0.0/33"}, "WXAUTH_TRUSTED_PROXIES", "CIDRs"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(base(tc.env), "")
			var p Problems
			if !errors.As(err, &p) {
				t.Fatalf("Load = %v, want Problems", err)
			}
			msg, ok := p[tc.variable]
			if !ok {
				t.Fatalf("no problem for %s in %v", tc.variable, p)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: %q, want it to contain %q", tc.variable, msg, tc.msg)
			}
			if len(p) != 1 {
				t.Errorf("want exactly one problem, got %v", p)
			}
		})
	}
}

// TestLoad_EveryProblemAtOnce: an empty environment lists every required
// variable, one line each, sorted.
func TestLoad_EveryProblemAtOnce(t *testing.T) {
	_, err := Load(func(string) string { return "" }, "")
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("Load = %v", err)
	}
	for _, v := range []string{"WXAUTH_APPID", "WXAUTH_APPSECRET", "WXAUTH_PUBLIC_URL", "WXAUTH_SECRET_KEY", "WXAUTH_ALLOWED_REDIRECTS"} {
		if _, ok := p[v]; !ok {
			t.Errorf("missing %s in %v", v, p)
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(p) {
		t.Errorf("Error() has %d lines for %d problems", len(lines), len(p))
	}
	for i := 1; i < len(lines); i++ {
		if lines[i-1] > lines[i] {
			t.Errorf("lines not sorted: %q before %q", lines[i-1], lines[i])
		}
	}
}

func TestLoad_Defaults(t *testing.T) {
	c, err := Load(base(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ got, want any }{
		"Listen":          {c.Listen, "127.0.0.1:8080"},
		"DatabaseURL":     {c.DatabaseURL, "sqlite:wxauth.db"},
		"RedisPrefix":     {c.RedisPrefix, "wxauth:"},
		"WeChatAPIBase":   {c.WeChatAPIBase, "https://api.weixin.qq.com"},
		"WeChatOpenBase":  {c.WeChatOpenBase, "https://open.weixin.qq.com"},
		"WeChatMPBase":    {c.WeChatMPBase, "https://mp.weixin.qq.com"},
		"WeChatTimeout":   {c.WeChatTimeout, 10 * time.Second},
		"TokenAPI":        {c.TokenAPI, "stable"},
		"AccessTokenTTL":  {c.AccessTokenTTL, 15 * time.Minute},
		"RefreshTokenTTL": {c.RefreshTokenTTL, 720 * time.Hour},
		"RefreshGrace":    {c.RefreshGrace, time.Duration(0)},
		"Issuer":          {c.Issuer, "https://auth.example.com"},
		"Audience":        {c.Audience, "wxauth"},
		"JWTAlg":          {c.JWTAlg, "ES256"},
		"KeyRotation":     {c.KeyRotation, 720 * time.Hour},
		"ProfileMaxAge":   {c.ProfileMaxAge, 168 * time.Hour},
		"CallbackMode":    {c.CallbackMode, "plain"},
		"CallbackMaxSkew": {c.CallbackMaxSkew, 300 * time.Second},
		"LogFormat":       {c.LogFormat, "json"},
		"LogLevel":        {c.LogLevel, "info"},
		"SecretKeyLen":    {len(c.SecretKey), 32},
		"RateClients":     {c.RateClients, 16384},
		"QRCreatePerMin":  {c.QRCreatePerMinute, 60},
		"StreamsPerIP":    {c.StreamsPerIP, 4},
		"StreamsMax":      {c.StreamsMax, 256},
		"RecordsMemory":   {c.RecordsMemoryMiB, 16},
		"VerifyCache":     {c.VerifyCacheSize, 10000},
		"ClientsFile":     {c.ClientsFile, ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", name, tc.got, tc.want)
		}
	}
}

func TestLoad_Values(t *testing.T) {
	c, err := Load(base(map[string]string{
		"WXAUTH_PUBLIC_URL":       "https://auth.example.com/",
		"WXAUTH_ACCESS_TOKEN_TTL": "600",
		"WXAUTH_KEY_ROTATION":     "0",
		"WXAUTH_ENCODING_AES_KEY": strings.Repeat("a", 43),
		"WXAUTH_JWT_ALG":          "eddsa",
		"WXAUTH_WECHAT_API_BASE":  "http://127.0.0.1:8081/",
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://auth.example.com" || c.Issuer != "https://auth.example.com" {
		t.Errorf("trailing slash kept: %q %q", c.PublicURL, c.Issuer)
	}
	if c.AccessTokenTTL != 10*time.Minute {
		t.Errorf("600 = %v, want 10m (plain seconds)", c.AccessTokenTTL)
	}
	if c.KeyRotation != 0 {
		t.Errorf("KeyRotation 0 = %v", c.KeyRotation)
	}
	if c.CallbackMode != "safe" {
		t.Errorf("mode with a key = %q, want safe", c.CallbackMode)
	}
	if c.JWTAlg != "EdDSA" {
		t.Errorf("alg is case-insensitive: %q", c.JWTAlg)
	}
	if c.WeChatAPIBase != "http://127.0.0.1:8081" {
		t.Errorf("API base %q", c.WeChatAPIBase)
	}
}

// TestLoad_YAML: the file supplies values, keys with or without the
// prefix and in any case, lists become comma-separated, and the
// environment wins.
func TestLoad_YAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wxauth.yaml")
	if err := os.WriteFile(path, []byte(`
public_url: https://file.example.com
WXAUTH_APPID: wx0123456789abcdef
appsecret: from-file
secret_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
allowed_redirects: [https://a.example.com, "https://*.b.example.com"]
rate_limit: 2.5
access_token_ttl: 20m
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WXAUTH_APPSECRET": "from-env"}
	getenv := func(k string) string { return env[k] }
	for _, viaEnv := range []bool{false, true} {
		file := path
		if viaEnv {
			env["WXAUTH_CONFIG"] = path
			file = ""
		}
		c, err := Load(getenv, file)
		if err != nil {
			t.Fatal(err)
		}
		if c.PublicURL != "https://file.example.com" || c.AppID != "wx0123456789abcdef" {
			t.Errorf("file values: %q %q", c.PublicURL, c.AppID)
		}
		if c.AppSecret != "from-env" {
			t.Errorf("AppSecret = %q, the environment must win", c.AppSecret)
		}
		if strings.Join(c.AllowedRedirects, ",") != "https://a.example.com,https://*.b.example.com" {
			t.Errorf("list = %v", c.AllowedRedirects)
		}
		if c.RateLimit != 2.5 || c.AccessTokenTTL != 20*time.Minute {
			t.Errorf("numbers: %v %v", c.RateLimit, c.AccessTokenTTL)
		}
	}
}

func TestLoad_YAMLErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(base(nil), filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("public_url: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(base(nil), bad)
	var p Problems
	if err == nil || errors.As(err, &p) || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("malformed file: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"300": 300 * time.Second, "15m": 15 * time.Minute, "1h30m": 90 * time.Minute, "0": 0} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDuration("fortnight"); err == nil {
		t.Error("ParseDuration(fortnight) accepted")
	}
}
