// Package logging builds the JSON slog logger every service writes to stderr.
package logging

import (
	"log/slog"
	"os"
)

// New returns a JSON logger at level that tags every line with the service.
func New(service string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	return slog.New(h).With("service", service)
}
