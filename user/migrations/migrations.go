// Package migrations holds the User Service's schema as goose migrations,
// embedded so the binary brings its database up to date at start.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
