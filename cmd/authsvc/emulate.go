package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/wxauth/wxauth/internal/wxemu"
)

// emulatorFlags are the flags of `authsvc emulate`, also used by `dev`.
type emulatorFlags struct {
	listen, appID, appSecret, oauthDomain, publicURL   string
	callbackURL, callbackToken, aesKey, mode, original string
	denyRedirect                                       bool
}

func (f *emulatorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8081", "listen address")
	fs.StringVar(&f.appID, "appid", "wxd0e0a0e0d0e0a0e0", "the emulated Official Account's appid")
	fs.StringVar(&f.appSecret, "appsecret", "wxemu-dev-appsecret-00000000000", "its AppSecret")
	fs.StringVar(&f.oauthDomain, "oauth-domain", "127.0.0.1:8080", "网页授权域名: comma-separated host[:port] allowed in redirect_uri")
	fs.StringVar(&f.publicURL, "public-url", "", "the emulator's own base URL (default http://LISTEN)")
	fs.StringVar(&f.callbackURL, "callback-url", "", "the service's message callback URL (/wx) that messages are delivered to")
	fs.StringVar(&f.callbackToken, "callback-token", "", "the callback Token")
	fs.StringVar(&f.aesKey, "aes-key", "", "the callback EncodingAESKey (43 characters)")
	fs.StringVar(&f.mode, "mode", "plain", "callback message mode: plain, compat or safe")
	fs.StringVar(&f.original, "original-id", "gh_wxemu00000000", "the account's original id (ToUserName)")
	fs.BoolVar(&f.denyRedirect, "deny-redirect", false, "on deny, redirect with state only (default: no redirect, as WeChat often does)")
}

func (f *emulatorFlags) config(logger *slog.Logger, publicURL string) wxemu.Config {
	var domains []string
	for _, d := range strings.Split(f.oauthDomain, ",") {
		if d = strings.TrimSpace(d); d != "" {
			domains = append(domains, d)
		}
	}
	return wxemu.Config{
		AppID: f.appID, AppSecret: f.appSecret, OAuthDomains: domains, OriginalID: f.original,
		PublicURL: publicURL, CallbackURL: f.callbackURL, CallbackToken: f.callbackToken, AESKey: f.aesKey,
		Mode: f.mode, DenyRedirect: f.denyRedirect, Logger: logger,
	}
}

// runEmulate is `authsvc emulate`: the WeChat emulator alone.
func runEmulate(ctx context.Context, args []string, _ func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f emulatorFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", f.listen, err)
	}
	public := f.publicURL
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	emu, err := wxemu.New(f.config(logger, public))
	if err != nil {
		ln.Close()
		return fmt.Errorf("emulator: %w", err)
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	return serveHTTP(ctx, ln, http.Handler(emu), logger)
}
