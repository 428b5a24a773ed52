package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/wxauth/wxauth/internal/secret"
	"github.com/wxauth/wxauth/internal/session"
)

// runKeys is `authsvc keys list` and `authsvc keys rotate`, against the
// store of the serve configuration (WXAUTH_DATABASE_URL, WXAUTH_SECRET_KEY).
func runKeys(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "optional YAML configuration file")
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: authsvc keys list|rotate [--config FILE]") }
	if len(args) == 0 {
		fs.Usage()
		return errUsage
	}
	action := args[0]
	if action == "-h" || action == "-help" || action == "--help" {
		fs.Usage()
		return flag.ErrHelp
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err // Parse printed the usage
	}
	if action != "list" && action != "rotate" {
		fs.Usage()
		return errUsage
	}
	cfg, err := loadCLIConfig(getenv, *configFile)
	if err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	stores, err := openStores(ctx, cfg, logger, time.Now)
	if err != nil {
		return err
	}
	defer stores.Close()
	var previous [][]byte
	if cfg.SecretKeyPrevious != nil {
		previous = append(previous, cfg.SecretKeyPrevious)
	}
	box, err := secret.NewBox(cfg.SecretKey, previous...)
	if err != nil {
		return err
	}
	m, err := session.NewManager(ctx, session.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Alg: cfg.JWTAlg, ExtraAlgs: idTokenAlgs(cfg), AccessTTL: cfg.AccessTokenTTL,
		RefreshTTL: cfg.RefreshTokenTTL, KeyRotation: cfg.KeyRotation, Box: box, Logger: logger,
	}, session.Stores{Keys: stores.Keys, RefreshTokens: stores.RefreshTokens, Records: stores.Records, Users: stores.Users})
	if err != nil {
		return err
	}
	if action == "rotate" {
		kid, err := m.RotateKeys(ctx)
		if err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
		fmt.Fprintf(stdout, "new signing key %s published; it signs once published long enough for JWKS caches\n", kid)
	}
	keys, err := m.Keys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED\tSIGNS FROM\tRETIRED\tLEAVES JWKS\tACTIVE")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", k.ID, k.Alg, ts(k.CreatedAt), ts(k.SignFrom), ts(k.RetiredAt), ts(k.RemoveAt), k.Active)
	}
	return tw.Flush()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
