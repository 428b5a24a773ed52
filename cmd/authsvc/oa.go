package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/wxauth/wxauth/internal/config"
	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/wechat"
)

// loadCLIConfig loads the configuration for commands that do not serve
// HTTP: WXAUTH_PUBLIC_URL and WXAUTH_ALLOWED_REDIRECTS are not needed there.
func loadCLIConfig(getenv func(string) string, file string) (*config.Config, error) {
	cfg, err := config.Load(getenv, file)
	var p config.Problems
	if errors.As(err, &p) {
		delete(p, "WXAUTH_PUBLIC_URL")
		delete(p, "WXAUTH_ALLOWED_REDIRECTS")
		if len(p) == 0 {
			return cfg, nil
		}
		return nil, fmt.Errorf("configuration:\n%w", p)
	}
	return cfg, err
}

// openOA builds the Official Account API client of the configuration, with
// the global access_token shared with the service through the store's
// credential cache (so the CLI does not void the service's token).
func openOA(ctx context.Context, getenv func(string) string, file string) (*wechat.API, func(), error) {
	cfg, err := loadCLIConfig(getenv, file)
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	stores, err := openStores(ctx, cfg, logger, time.Now)
	if err != nil {
		return nil, nil, err
	}
	var previous [][]byte
	if cfg.SecretKeyPrevious != nil {
		previous = append(previous, cfg.SecretKeyPrevious)
	}
	box, err := secret.NewBox(cfg.SecretKey, previous...)
	if err != nil {
		stores.Close()
		return nil, nil, err
	}
	wx, err := wechat.NewClient(wechat.Config{
		AppID: cfg.AppID, AppSecret: cfg.AppSecret, HTTPClient: &http.Client{Timeout: cfg.WeChatTimeout}, Logger: logger,
		Endpoint: wechat.Endpoint{AuthorizeURL: cfg.WeChatOpenBase + "/connect/oauth2/authorize", APIBase: cfg.WeChatAPIBase, MPBase: cfg.WeChatMPBase},
	})
	if err != nil {
		stores.Close()
		return nil, nil, err
	}
	tokens, err := wechat.NewTokenManager(wx, wechat.TokenConfig{API: cfg.TokenAPI, Cache: stores.TokenCache, Locker: stores.Locker, Box: box})
	if err != nil {
		stores.Close()
		return nil, nil, err
	}
	return wechat.NewAPI(wx, tokens), func() { stores.Close() }, nil
}

// runQRCode is `authsvc qrcode create --scene S [--expire 600 | --permanent]
// [--out qr.png]`: a QR code with parameters (cgi-bin/qrcode/create); it
// prints {"ticket","expire_seconds","url","image_url"} and writes the image
// from showqrcode to --out.
func runQRCode(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("qrcode create", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configFile := flags.String("config", "", "optional YAML configuration file")
	scene := flags.String("scene", "", "the scene: a string (1-64 bytes), or a number for an integer scene")
	expire := flags.Int("expire", 600, "life of a temporary code in seconds (at most 2592000)")
	permanent := flags.Bool("permanent", false, "a permanent code (at most 100000 per account)")
	out := flags.String("out", "", "write the QR image (from showqrcode) to this file")
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: authsvc qrcode create --scene S [--expire 600 | --permanent] [--out qr.png]")
		return errUsage
	}
	if err := parseFlags(flags, args[1:]); err != nil {
		return err
	}
	if *scene == "" {
		fmt.Fprintln(stderr, "authsvc qrcode create: --scene is required")
		return errUsage
	}
	req := wechat.QRCodeRequest{ActionName: wechat.QRStrScene, ExpireSeconds: *expire, SceneStr: *scene}
	if id, err := strconv.ParseUint(*scene, 10, 32); err == nil {
		req = wechat.QRCodeRequest{ActionName: wechat.QRScene, ExpireSeconds: *expire, SceneID: uint32(id)}
	}
	if *permanent {
		req.ExpireSeconds = 0
		if req.ActionName == wechat.QRScene {
			req.ActionName = wechat.QRLimitScene
		} else {
			req.ActionName = wechat.QRLimitStrScene
		}
	}
	api, closeFn, err := openOA(ctx, getenv, *configFile)
	if err != nil {
		return err
	}
	defer closeFn()
	qr, err := api.CreateQRCode(ctx, req)
	if err != nil {
		return fmt.Errorf("qrcode create: %w", err)
	}
	if *out != "" {
		img, err := api.ShowQRCode(ctx, qr.Ticket)
		if err != nil {
			return fmt.Errorf("showqrcode: %w", err)
		}
		if err := os.WriteFile(*out, img, 0o644); err != nil {
			return err
		}
	}
	return printJSON(stdout, map[string]any{"ticket": qr.Ticket, "expire_seconds": qr.ExpireSeconds, "url": qr.URL,
		"image_url": api.ShowQRCodeURL(qr.Ticket)})
}

// runMenu is `authsvc menu create FILE.json | get | delete`: the custom
// menu. create validates the file against WeChat's limits before any call
// and names the offending button.
func runMenu(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	usageLine := "usage: authsvc menu create FILE.json | menu get | menu delete [--config FILE]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usageLine)
		return errUsage
	}
	action, rest := args[0], args[1:]
	var file string
	if action == "create" {
		if len(rest) == 0 {
			fmt.Fprintln(stderr, usageLine)
			return errUsage
		}
		file, rest = rest[0], rest[1:]
	}
	flags := flag.NewFlagSet("menu", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configFile := flags.String("config", "", "optional YAML configuration file")
	if err := parseFlags(flags, rest); err != nil {
		return err
	}
	var menu wechat.Menu
	switch action {
	case "create":
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&menu); err != nil {
			return fmt.Errorf("%s: not a menu JSON file ({\"button\": [...]}): %w", file, err)
		}
		if err := wechat.ValidateMenu(menu); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	case "get", "delete":
	default:
		fmt.Fprintln(stderr, usageLine)
		return errUsage
	}
	api, closeFn, err := openOA(ctx, getenv, *configFile)
	if err != nil {
		return err
	}
	defer closeFn()
	switch action {
	case "create":
		if err := api.CreateMenu(ctx, menu); err != nil {
			return fmt.Errorf("menu create: %w", err)
		}
		fmt.Fprintln(stdout, "menu created")
	case "get":
		m, err := api.GetMenu(ctx)
		if err != nil {
			return fmt.Errorf("menu get: %w", err)
		}
		return printJSON(stdout, m)
	case "delete":
		if err := api.DeleteMenu(ctx); err != nil {
			return fmt.Errorf("menu delete: %w", err)
		}
		fmt.Fprintln(stdout, "menu deleted")
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
