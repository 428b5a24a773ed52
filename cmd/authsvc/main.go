// Command authsvc is wxauth: WeChat web-authorization login, session JWTs
// with a JWKS, the Official Account's message callback, the global
// access_token and jsapi_ticket, and a WeChat emulator for development.
// Run `authsvc --help` for its subcommands.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
