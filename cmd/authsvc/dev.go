package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wxauth/wxauth/examples/h5"
	"github.com/wxauth/wxauth/internal/callback"
	"github.com/wxauth/wxauth/internal/config"
	"github.com/wxauth/wxauth/internal/store"
	"github.com/wxauth/wxauth/internal/wxemu"
)

// devSecrets are generated once per development directory and kept in
// DIR/secrets.json, so sessions survive a restart of `authsvc dev`.
type devSecrets struct {
	SecretKey     string `json:"secret_key"`     // base64 of 32 bytes
	CallbackToken string `json:"callback_token"` // [A-Za-z0-9]{32}
	AESKey        string `json:"aes_key"`        // EncodingAESKey, 43 characters
	AdminToken    string `json:"admin_token"`    // [A-Za-z0-9]{32}
	// DemoBackendSecret is the client_secret of the confidential dev
	// client demo-backend: [A-Za-z0-9]{32}.
	DemoBackendSecret string `json:"demo_backend_secret"`
}

// devRandom returns n uniformly random characters of [A-Za-z0-9].
func devRandom(n int) string { return store.RandomBase62(n) }

func loadDevSecrets(dir string) (devSecrets, error) {
	var s devSecrets
	path := filepath.Join(dir, "secrets.json")
	b, err := os.ReadFile(path)
	if err == nil && json.Unmarshal(b, &s) == nil && s.SecretKey != "" && len(s.AESKey) == 43 {
		if s.DemoBackendSecret != "" {
			return s, nil
		}
		// Written before the dev clients existed: add their secret.
		s.DemoBackendSecret = devRandom(32)
		b, _ = json.MarshalIndent(s, "", "  ")
		return s, os.WriteFile(path, b, 0o600)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	s = devSecrets{
		SecretKey:     base64.StdEncoding.EncodeToString(key),
		CallbackToken: devRandom(32),
		AESKey:        devRandom(43),
		AdminToken:    devRandom(32),

		DemoBackendSecret: devRandom(32),
	}
	b, _ = json.MarshalIndent(s, "", "  ")
	return s, os.WriteFile(path, b, 0o600)
}

// runDev is `authsvc dev`: the service, the WeChat emulator and the example
// H5 app on loopback, wired together with generated development secrets and
// a SQLite file under --dir. It needs no configuration and no network.
func runDev(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("dev", flag.ContinueOnError)
	flags.SetOutput(stderr)
	listen := flags.String("listen", "127.0.0.1:8080", "the service's listen address")
	emuListen := flags.String("emulator-listen", "127.0.0.1:8081", "the WeChat emulator's listen address")
	h5Listen := flags.String("h5-listen", "127.0.0.1:8082", "the example H5 app's listen address")
	dir := flags.String("dir", ".wxauth-dev", "directory for the development database, secrets and rules")
	logLevel := flags.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	secrets, err := loadDevSecrets(*dir)
	if err != nil {
		return fmt.Errorf("dev secrets: %w", err)
	}
	rules := filepath.Join(*dir, "rules.yaml")
	if _, err := os.Stat(rules); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(rules, callback.SampleRules, 0o644); err != nil {
			return err
		}
	}
	logger, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return err
	}

	// Bind all three first: with port 0 (tests) the URLs are known only then.
	var lns [3]net.Listener
	for i, a := range []string{*listen, *emuListen, *h5Listen} {
		if lns[i], err = net.Listen("tcp", a); err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return listenError(a, err, "--"+[]string{"listen", "emulator-listen", "h5-listen"}[i]+" (see authsvc dev --help)")
		}
	}
	svcURL, emuURL, h5URL := "http://"+lns[0].Addr().String(), "http://"+lns[1].Addr().String(), "http://"+lns[2].Addr().String()
	const appID, appSecret = "wxd0e0a0e0d0e0a0e0", "wxemu-dev-appsecret-00000000000"

	env := map[string]string{
		"WXAUTH_LISTEN":            lns[0].Addr().String(),
		"WXAUTH_PUBLIC_URL":        svcURL,
		"WXAUTH_APPID":             appID,
		"WXAUTH_APPSECRET":         appSecret,
		"WXAUTH_SECRET_KEY":        secrets.SecretKey,
		"WXAUTH_ALLOWED_REDIRECTS": h5URL + ",http://localhost:" + portOf(lns[2]),
		"WXAUTH_DATABASE_URL":      "sqlite:" + filepath.Join(*dir, "wxauth.db"),
		"WXAUTH_WECHAT_API_BASE":   emuURL,
		"WXAUTH_WECHAT_OPEN_BASE":  emuURL,
		"WXAUTH_WECHAT_MP_BASE":    emuURL,
		"WXAUTH_CALLBACK_TOKEN":    secrets.CallbackToken,
		"WXAUTH_ENCODING_AES_KEY":  secrets.AESKey,
		"WXAUTH_CALLBACK_MODE":     "safe",
		"WXAUTH_ORIGINAL_ID":       "gh_wxemu00000000",
		"WXAUTH_CALLBACK_RULES":    rules,
		"WXAUTH_ADMIN_TOKEN":       secrets.AdminToken,
		"WXAUTH_LOG_LEVEL":         *logLevel,
	}
	clientsFile := filepath.Join(*dir, "clients.yaml")
	if err := os.WriteFile(clientsFile, devClients(h5URL, secrets.DemoBackendSecret), 0o600); err != nil {
		return err
	}
	env["WXAUTH_CLIENTS"] = clientsFile
	cfg, err := config.Load(func(k string) string { return env[k] }, "")
	if err != nil {
		return fmt.Errorf("dev configuration:\n%w", err)
	}
	cfg.InsideWeChatCookie = h5.InsideWeChatCookie
	// The same configuration for every other command (keys, qrcode, menu,
	// check, serve): --config DIR/config.yaml.
	cliConfig := filepath.Join(*dir, "config.yaml")
	if err := writeDevConfig(cliConfig, env); err != nil {
		return fmt.Errorf("dev configuration: %w", err)
	}
	emu, err := wxemu.New(wxemu.Config{
		AppID: appID, AppSecret: appSecret, OAuthDomains: []string{lns[0].Addr().String(), "localhost:" + portOf(lns[0])},
		OriginalID: "gh_wxemu00000000", PublicURL: emuURL,
		CallbackURL: svcURL + "/wx", CallbackToken: secrets.CallbackToken, AESKey: secrets.AESKey, Mode: "safe",
		Logger: logger.With("component", "emulator"), InsideWeChatCookie: h5.InsideWeChatCookie,
	})
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	svc, err := newService(ctx, cfg, logger, time.Now)
	if err != nil {
		return err
	}
	defer svc.close()

	fmt.Fprintf(stdout, "wxauth dev: everything on loopback, no WeChat account needed\n")
	fmt.Fprintf(stdout, "  service   listening on %s\n", svcURL)
	fmt.Fprintf(stdout, "  emulator  listening on %s  (WeChat: test users, chat as a follower at %s/emu/chat)\n", emuURL, emuURL)
	fmt.Fprintf(stdout, "  h5        listening on %s\n", h5URL)
	fmt.Fprintf(stdout, "\nOpen %s/ in a browser: the example H5 page, logging in through wxauth.\n", h5URL)
	fmt.Fprintf(stdout, "  desktop browser:  QR login, as in production (the emulator's QR page has \"scan as ...\" buttons);\n")
	fmt.Fprintf(stdout, "                    the page's link \"as inside WeChat (emulated)\" switches to the in-WeChat path\n")
	fmt.Fprintf(stdout, "  WeChat user agent (a phone in the browser's device toolbar with MicroMessenger in its UA):\n")
	fmt.Fprintf(stdout, "                    the in-WeChat path: the emulator's user picker, then the consent page for snsapi_userinfo\n")
	fmt.Fprintf(stdout, "Desktop login (QR code): %s/qr/login?redirect=%s (the QR login page alone)\n", svcURL, url.QueryEscape(h5URL+"/"))
	fmt.Fprintf(stdout, "\nOpenID Provider: issuer %s (discovery: %s/.well-known/openid-configuration); clients in %s:\n", svcURL, svcURL, clientsFile)
	fmt.Fprintf(stdout, "  h5-demo       public (PKCE S256), redirect_uris %s/ and %s/index.html\n", h5URL, h5URL)
	fmt.Fprintf(stdout, "  demo-backend  confidential, client_secret %s, redirect_uri %s; also a caller of the WeChat API proxy (%s/cgi-bin/...)\n", secrets.DemoBackendSecret, devBackendRedirect, svcURL)
	fmt.Fprintf(stdout, "Data and generated secrets: %s (admin token for /internal/*: see secrets.json)\n", *dir)
	fmt.Fprintf(stdout, "Other commands against this setup (while it runs): authsvc keys list --config %s (also check, qrcode, menu)\n", cliConfig)

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, h := range []http.Handler{svc.handler, emu, h5.Handler(svcURL, emuURL)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = serveHTTP(ctx, lns[i], h, logger)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeDevConfig writes env as a YAML configuration file (mode 0600: it
// holds the development secrets) that --config of every command reads.
func writeDevConfig(path string, env map[string]string) error {
	b, err := yaml.Marshal(env)
	if err != nil {
		return err
	}
	header := "# Written by `authsvc dev` at every start: the configuration of this development setup.\n" +
		"# Use it with any command: authsvc keys list --config " + path + "\n"
	return os.WriteFile(path, append([]byte(header), b...), 0o600)
}

// devBackendRedirect is demo-backend's redirect_uri: oauth2-proxy's default
// callback on its default port.
const devBackendRedirect = "http://127.0.0.1:4180/oauth2/callback"

// devClients is the clients file `authsvc dev` writes (WXAUTH_CLIENTS):
// the example H5 page as a public client and a confidential back end.
func devClients(h5URL, backendSecret string) []byte {
	return []byte(`# Written by authsvc dev at every start: the format of WXAUTH_CLIENTS.
- client_id: h5-demo
  client_name: wxauth example H5 page
  public: true                      # a page: PKCE S256, no secret
  redirect_uris:
    - ` + h5URL + `/
    - ` + h5URL + `/index.html
  post_logout_redirect_uris:
    - ` + h5URL + `/
  grant_types: [authorization_code, refresh_token]
  scopes: [openid, profile, offline_access, snsapi_base, snsapi_userinfo]
- client_id: demo-backend
  client_name: example back end (oauth2-proxy)
  client_secret: ` + backendSecret + `   # or client_secret_hash: sha256:<hex> / a bcrypt hash
  redirect_uris:
    - ` + devBackendRedirect + `
  post_logout_redirect_uris:
    - http://127.0.0.1:4180/
  grant_types: [authorization_code, refresh_token, client_credentials]
  apis: ["*"]                       # may call WeChat's cgi-bin API through wxauth's proxy
`)
}

func portOf(ln net.Listener) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
