// Package test holds wxauth's end-to-end tests: they build the authsvc
// binary, run it as a real process (`authsvc dev`, `authsvc serve`,
// `authsvc emulate`) on loopback ports, and drive whole flows over HTTP and
// in a headless Chromium. Process handling lives in test/e2e.
package test

import (
	"testing"

	"github.com/wxauth/wxauth/test/e2e"
)

// binary is the authsvc built once for the package by TestMain.
var binary string

func TestMain(m *testing.M) {
	e2e.Main(m, "..", &binary)
}

// start runs the test binary; see [e2e.Start].
func start(t testing.TB, env map[string]string, want int, args ...string) *e2e.Proc {
	t.Helper()
	return e2e.Start(t, binary, env, want, args...)
}

// startDev runs `authsvc dev` on free loopback ports; its URLs are named
// "service", "emulator" and "h5".
func startDev(t testing.TB) *e2e.Proc {
	t.Helper()
	return start(t, nil, 3, "dev", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0",
		"--h5-listen", "127.0.0.1:0", "--dir", t.TempDir(), "--log-level", "warn")
}
