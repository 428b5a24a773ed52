// Package web holds the service's pages and static assets, embedded into the
// binary: the H5 error page (zh/en) shown by the login flow, the QR login
// page, and the service's landing page at /. Templates are parsed once, by [Parse], at server construction.
package web

import (
	"embed"
	"html/template"
)

//go:embed templates/*.html
var files embed.FS

// Parse parses every page template. It fails only when a template is
// malformed, which a test catches at build time.
func Parse() (*template.Template, error) {
	return template.ParseFS(files, "templates/*.html")
}
