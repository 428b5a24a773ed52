package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs `authsvc args...` in-process with getenv and returns stdout,
// stderr and the error.
func runCLI(ctx context.Context, getenv func(string) string, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(ctx, append([]string{"authsvc"}, args...), getenv, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func noEnv(string) string { return "" }

// TestRun_Help: every command's --help (and -h) prints its flags once and
// succeeds, instead of "invalid arguments" and exit status 1.
func TestRun_Help(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"serve", "--help"}, {"dev", "--help"}, {"check", "--help"}, {"check", "-h"},
		{"emulate", "--help"}, {"keys", "--help"}, {"keys", "list", "--help"}, {"keys", "rotate", "-h"},
		{"qrcode", "create", "--help"}, {"menu", "get", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, err := runCLI(t.Context(), noEnv, args...)
			if err != nil {
				t.Fatalf("err = %v\n%s%s", err, out, errOut)
			}
			text := out + errOut
			if !strings.Contains(strings.ToLower(text), "usage") && !strings.Contains(text, "-") {
				t.Fatalf("no usage printed: %q", text)
			}
			if n := strings.Count(text, "usage: authsvc keys"); n > 1 {
				t.Errorf("usage printed %d times:\n%s", n, text)
			}
		})
	}
	if _, _, err := runCLI(t.Context(), noEnv, "check", "--no-such-flag"); !errors.Is(err, errUsage) {
		t.Errorf("unknown flag: err = %v, want errUsage", err)
	}
}

// TestRunCheck_OfflineWithoutConfiguration: check reports the missing
// variables and creates no database file in the working directory.
func TestRunCheck_OfflineWithoutConfiguration(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	out, _, err := runCLI(t.Context(), noEnv, "check", "--offline")
	if !errors.Is(err, errCheckFailed) {
		t.Fatalf("err = %v, want errCheckFailed\n%s", err, out)
	}
	if strings.Contains(out, "[ok] stores") {
		t.Errorf("stores reported ok without a database:\n%s", out)
	}
	if !strings.Contains(out, "WXAUTH_APPID") {
		t.Errorf("missing variables not named:\n%s", out)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("check created %s", e.Name())
	}
}

// TestRunDev_PortInUse: a busy port names the flag that moves it.
func TestRunDev_PortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, _, err = runCLI(t.Context(), noEnv, "dev", "--dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--emulator-listen", ln.Addr().String(), "--h5-listen", "127.0.0.1:0")
	if err == nil {
		t.Fatal("dev started on a busy port")
	}
	for _, want := range []string{"already in use", "--emulator-listen", ln.Addr().String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestRunDev_ConfigForOtherCommands: `authsvc dev` writes DIR/config.yaml,
// and `keys list --config` and `check --offline --config` work against the
// running setup with no WXAUTH_* variable set.
func TestRunDev_ConfigForOtherCommands(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := runCLI(ctx, noEnv, "dev", "--dir", dir, "--listen", "127.0.0.1:0",
			"--emulator-listen", "127.0.0.1:0", "--h5-listen", "127.0.0.1:0", "--log-level", "error")
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-done })
	cfg := filepath.Join(dir, "config.yaml")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(cfg); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("dev stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dev wrote no config.yaml")
		}
	}
	if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config.yaml mode = %v, %v; want 0600 (it holds secrets)", fi.Mode(), err)
	}
	out, errOut, err := runCLI(t.Context(), noEnv, "keys", "list", "--config", cfg)
	if err != nil {
		t.Fatalf("keys list --config: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "ES256") {
		t.Errorf("keys list printed no key:\n%s", out)
	}
	out, _, err = runCLI(t.Context(), noEnv, "check", "--offline", "--config", cfg)
	if err != nil {
		t.Fatalf("check --offline --config: %v\n%s", err, out)
	}
}
