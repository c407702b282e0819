// Package migrations embeds the Notification Service's PostgreSQL schema.
package migrations

import "embed"

// FS holds the goose migrations applied at start by database.Open.
//
//go:embed *.sql
var FS embed.FS
