package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"
)

// serviceEnv is the environment of one `authsvc serve`: its own SQLite file,
// the emulator as WeChat, the callback in mode with the rules file, an admin
// token, warn-level logs and rate limits out of the way.
func serviceEnv(dir, name, addr, emu, mode, pprof string) []string {
	env := []string{
		"WXAUTH_LISTEN=" + addr,
		"WXAUTH_PUBLIC_URL=http://" + addr,
		"WXAUTH_APPID=" + benchAppID,
		"WXAUTH_APPSECRET=" + benchAppSecret,
		"WXAUTH_SECRET_KEY=" + benchSecretKey,
		"WXAUTH_ALLOWED_REDIRECTS=https://h5.example.com",
		"WXAUTH_DATABASE_URL=sqlite:" + filepath.Join(dir, name+".db"),
		"WXAUTH_WECHAT_API_BASE=" + emu,
		"WXAUTH_WECHAT_OPEN_BASE=" + emu,
		"WXAUTH_WECHAT_MP_BASE=" + emu,
		"WXAUTH_CALLBACK_TOKEN=" + benchToken,
		"WXAUTH_CALLBACK_MODE=" + mode,
		"WXAUTH_ORIGINAL_ID=" + benchOriginalID,
		"WXAUTH_CALLBACK_RULES=" + filepath.Join(dir, "rules.yaml"),
		"WXAUTH_CLIENTS=" + filepath.Join(dir, "clients.yaml"),
		"WXAUTH_ADMIN_TOKEN=" + benchAdminToken,
		"WXAUTH_LOG_LEVEL=warn",
		// Every request comes from 127.0.0.1: per-IP limits would measure
		// the limiter instead of the path.
		"WXAUTH_RATE_LIMIT=1000000000",
		"WXAUTH_RATE_BURST=1000000000",
	}
	if mode != "plain" {
		env = append(env, "WXAUTH_ENCODING_AES_KEY="+benchAESKey)
	}
	if pprof != "" {
		env = append(env, "WXAUTH_PPROF_LISTEN="+pprof)
	}
	return env
}

// waitReady polls base/readyz until it answers 200.
func waitReady(ctx context.Context, client *http.Client, base string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			drain(resp)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/readyz never answered 200: %w", base, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
