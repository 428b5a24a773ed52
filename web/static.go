package web

import _ "embed"

// script is wxauth.js, the script an H5 page includes to log in through
// wxauth's code flow with PKCE (see the comment at its top).
//
//go:embed static/wxauth.js
var script []byte

// Script returns wxauth.js. The slice is shared: callers must not modify it.
func Script() []byte { return script }
