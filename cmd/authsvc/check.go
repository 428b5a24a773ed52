package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/wxauth/wxauth/internal/config"
	"github.com/wxauth/wxauth/internal/redirect"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/wechat"
)

// checkTimeout bounds the whole online part of `authsvc check` (the store
// ping and one stable_token call with its retries).
const checkTimeout = 20 * time.Second

// errCheckFailed is returned by runCheck when at least one check failed;
// the checklist has already been printed.
var errCheckFailed = errors.New("check: some checks failed (see [FAIL] lines above)")

// checklist prints one "[ok]", "[FAIL]" or "[skip]" line per check.
type checklist struct {
	w      io.Writer
	failed int
}

func (c *checklist) ok(format string, a ...any) { fmt.Fprintf(c.w, "[ok]   "+format+"\n", a...) }
func (c *checklist) skip(format string, a ...any) {
	fmt.Fprintf(c.w, "[skip] "+format+"\n", a...)
}
func (c *checklist) fail(format string, a ...any) {
	c.failed++
	fmt.Fprintf(c.w, "[FAIL] "+format+"\n", a...)
}

// runCheck is `authsvc check [--config FILE] [--offline]`: it validates the
// configuration, opens and pings the stores and, unless --offline, calls
// cgi-bin/stable_token once to prove the appid, the AppSecret and the API
// IP whitelist. It prints a checklist on stdout, one line per check, each
// failure saying what to do, and returns errCheckFailed (exit status 1)
// when any check failed.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
func runCheck(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "optional YAML configuration file (the environment wins); also WXAUTH_CONFIG")
	offline := fs.Bool("offline", false, "do not call WeChat's API")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c := &checklist{w: stdout}
	cfg, err := config.Load(getenv, *configFile)
	var problems config.Problems
	switch {
	case errors.As(err, &problems):
		names := make([]string, 0, len(problems))
		for name := range problems {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			c.fail("configuration: %s: %s", name, problems[name])
		}
	case err != nil:
		c.fail("configuration: %v", err)
		return errCheckFailed
	default:
		c.ok("configuration: every WXAUTH_* variable is valid")
	}
	if err == nil {
		checkDerived(c, cfg)
	}

	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	if cfg.DatabaseURL != "" && (err == nil || problems["WXAUTH_DATABASE_URL"] == "") {
		checkStores(ctx, c, cfg, logger)
	} else {
		c.skip("stores: fix WXAUTH_DATABASE_URL first")
	}

	switch {
	case *offline:
		c.skip("WeChat API: --offline")
	case problems["WXAUTH_APPID"] != "" || problems["WXAUTH_APPSECRET"] != "" || problems["WXAUTH_WECHAT_API_BASE"] != "":
		c.skip("WeChat API: fix WXAUTH_APPID, WXAUTH_APPSECRET and WXAUTH_WECHAT_API_BASE first")
	default:
		checkWeChat(ctx, c, cfg, logger)
	}
	if c.failed > 0 {
		return errCheckFailed
	}
	fmt.Fprintln(stdout, "all checks passed")
	return nil
}

// checkDerived checks what the configuration builds: the secret box, the
// redirect allowlist and the public URL's scheme.
func checkDerived(c *checklist, cfg *config.Config) {
	var previous [][]byte
	if cfg.SecretKeyPrevious != nil {
		previous = append(previous, cfg.SecretKeyPrevious)
	}
	if _, err := secret.NewBox(cfg.SecretKey, previous...); err != nil {
		c.fail("WXAUTH_SECRET_KEY: %v", err)
	} else {
		c.ok("secret key: 32 bytes, seals tokens and keys at rest")
	}
	if _, err := redirect.Parse(cfg.AllowedRedirects); err != nil {
		c.fail("WXAUTH_ALLOWED_REDIRECTS: %v", err)
	} else {
		c.ok("redirect allowlist: %d entries", len(cfg.AllowedRedirects))
	}
	if cfg.Clients != nil {
		var ids []string
		for _, cl := range cfg.Clients.All() {
			ids = append(ids, cl.ID)
		}
		if len(ids) == 0 {
			c.ok("OpenID Connect clients: none registered (WXAUTH_CLIENTS); only the cookie login works")
		} else {
			c.ok("OpenID Connect clients: %s (issuer %s)", strings.Join(ids, ", "), cfg.Issuer)
		}
	}
	if strings.HasPrefix(cfg.PublicURL, "https://") {
		c.ok("public URL %s is https", cfg.PublicURL)
	} else {
		c.ok("public URL %s is not https: cookies are not Secure (fine for development only)", cfg.PublicURL)
	}
	if cfg.CallbackToken == "" {
		c.skip("message callback: WXAUTH_CALLBACK_TOKEN is empty, /wx is off")
	} else {
		c.ok("message callback: /wx in %s mode; set the URL %s/wx in 设置与开发 → 基本配置 → 服务器配置", cfg.CallbackMode, cfg.PublicURL)
	}
}

// checkStores opens the stores of cfg (applying migrations) and pings them.
// explicit tells whether WXAUTH_DATABASE_URL was given (environment or
// file) rather than defaulted.
func checkStores(ctx context.Context, c *checklist, cfg *config.Config, logger *slog.Logger) {
	if cfg.DatabaseURL == config.DefaultDatabaseURL {
		// check does not create the default database in whatever
		// directory it runs in.
		path := strings.TrimPrefix(cfg.DatabaseURL, "sqlite:")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			c.skip("stores: the default %s does not exist here (authsvc serve would create it); nothing opened", cfg.DatabaseURL)
			return
		}
	}
	stores, err := openStores(ctx, cfg, logger, time.Now)
	if err != nil {
		c.fail("stores: cannot open %s: %v", redactDSN(cfg.DatabaseURL), err)
		return
	}
	defer stores.Close()
	if stores.Ping != nil {
		if err := stores.Ping(ctx); err != nil {
			c.fail("stores: %s does not answer: %v", redactDSN(cfg.DatabaseURL), err)
			return
		}
	}
	c.ok("stores: %s opened and answers", redactDSN(cfg.DatabaseURL))
}

// redactDSN drops the password of a database URL.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}

// checkWeChat calls cgi-bin/stable_token once (without force_refresh, so
// the current token stays valid) and explains a failure.
func checkWeChat(ctx context.Context, c *checklist, cfg *config.Config, logger *slog.Logger) {
	wx, err := wechat.NewClient(wechat.Config{
		AppID: cfg.AppID, AppSecret: cfg.AppSecret, HTTPClient: &http.Client{Timeout: cfg.WeChatTimeout}, Logger: logger,
		Endpoint: wechat.Endpoint{
			AuthorizeURL: cfg.WeChatOpenBase + "/connect/oauth2/authorize",
			APIBase:      cfg.WeChatAPIBase,
			MPBase:       cfg.WeChatMPBase,
		},
	})
	if err != nil {
		c.fail("WeChat API: %v", err)
		return
	}
	cred, err := wx.StableToken(ctx, false)
	if err == nil {
		c.ok("WeChat API: cgi-bin/stable_token answered for appid %s (AppSecret and IP whitelist are right; token valid %d s)", cfg.AppID, cred.ExpiresIn)
		return
	}
	c.fail("WeChat API: %s", explainWeChat(err, cfg))
}

// whitelistIP finds the caller's address in WeChat's 40164 errmsg, such as
// "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: ...".
var whitelistIP = regexp.MustCompile(`invalid ip ([0-9A-Fa-f.:]+)`)

// explainWeChat turns a stable_token failure into an action for a person.
func explainWeChat(err error, cfg *config.Config) string {
	var we *wechat.Error
	if errors.As(err, &we) {
		switch we.Code {
		case wechat.CodeIPWhitelist:
			if m := whitelistIP.FindStringSubmatch(we.Msg); m != nil {
				if ip, perr := netip.ParseAddr(strings.TrimRight(m[1], ".,")); perr == nil {
					return fmt.Sprintf("40164: add %s to the IP whitelist in the Official Account console (设置与开发 → 基本配置 → IP白名单)", ip.Unmap())
				}
			}
			return "40164: add this server's outbound IP to the IP whitelist in the Official Account console (设置与开发 → 基本配置 → IP白名单); WeChat did not name the address"
		case wechat.CodeAppSecret:
			return "40125: the AppSecret is wrong: copy it again from 设置与开发 → 基本配置 into WXAUTH_APPSECRET (resetting it there voids the old one)"
		case wechat.CodeInvalidAppID:
			return fmt.Sprintf("40013: the AppID %q is not valid: copy it from 设置与开发 → 基本配置 into WXAUTH_APPID", cfg.AppID)
		case wechat.CodeAppSecretFrozen:
			return "40243: the AppSecret is frozen: unfreeze or reset it in the Official Account console"
		case wechat.CodeQuota:
			return "45009: the daily quota of stable_token is spent: wait until tomorrow or reset the quota in the console"
		case wechat.CodeBusy, wechat.CodeTooFrequent:
			return fmt.Sprintf("%d: WeChat is busy: run the check again in a minute", we.Code)
		}
		return fmt.Sprintf("%d: WeChat refused the call (%s)", we.Code, we.Msg)
	}
	var se *wechat.StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d from %s: is WXAUTH_WECHAT_API_BASE right, and does a proxy stand in between?", se.StatusCode, cfg.WeChatAPIBase)
	}
	if wechat.Temporary(err) {
		return fmt.Sprintf("no answer from %s in time: check outbound HTTPS (firewall, proxy, DNS) and run the check again", cfg.WeChatAPIBase)
	}
	return fmt.Sprintf("cannot reach %s: %v: check outbound HTTPS (firewall, proxy, DNS)", cfg.WeChatAPIBase, err)
}
