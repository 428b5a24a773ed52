package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `authsvc: WeChat Official Account login for H5 pages (wxauth)

Usage:
  authsvc <command> [flags]

Commands:
  serve      run the service, configured by WXAUTH_* environment variables
  dev        run the service, the WeChat emulator and the example H5 app on loopback, no configuration
  emulate    run the WeChat emulator alone
  check      validate the configuration, open the stores and prove appid, AppSecret and IP whitelist (--offline skips WeChat)
  keys       list or rotate the JWT signing keys (keys list | keys rotate)
  qrcode     create a QR code with parameters (qrcode create --scene S [--expire N | --permanent] [--out qr.png])
  menu       manage the custom menu (menu create FILE.json | menu get | menu delete)
  version    print the version

Run 'authsvc <command> --help' for a command's flags. Configuration: see README.md.
`

// errUsage is returned after a usage message was printed for bad arguments.
var errUsage = errors.New("invalid arguments")

// parseFlags parses args into fs. -h and --help print fs's flags and make
// the command succeed (run maps flag.ErrHelp to nil); any other parse error
// is errUsage after flag's own message.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return errUsage
	}
	return nil
}

// run is the whole program: main only calls it. It owns the signal
// handling; everything below it gets its environment through getenv and its
// arguments through args, so tests run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	err := dispatch(ctx, args[1], args[2:], getenv, stdin, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // a subcommand's --help printed its flags
	}
	return err
}

// subcommand runs one `authsvc CMD` with its arguments.
type subcommand func(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error

// dispatch runs the subcommand cmd with its arguments.
func dispatch(ctx context.Context, cmd string, rest []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	run := map[string]subcommand{
		"serve":   runServe,
		"dev":     runDev,
		"emulate": runEmulate,
		"check":   runCheck,
		"keys":    runKeys,
		"qrcode":  runQRCode,
		"menu":    runMenu,
	}[cmd]
	if run != nil {
		return run(ctx, rest, getenv, stdin, stdout, stderr)
	}
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "authsvc", version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "authsvc: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

// version reports the module version and VCS revision the binary was built
// from, when the build recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
