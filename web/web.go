// Package web holds the server-rendered pages of tenantbridge's sign-in,
// MFA, consent and device-code flows, and their style sheet. The pages are
// plain HTML that works without JavaScript; package signin renders them.
package web

import (
	"embed"
	"io/fs"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static/*
var static embed.FS

// Templates returns the page templates: layout.html and one file per page.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// Static returns the static assets (the style sheet), served as they are.
func Static() fs.FS {
	sub, _ := fs.Sub(static, "static")
	return sub
}
