//go:build tools

// Package tools pins Docker Compose v2 (the CLI plugin behind
// `docker compose`; its Go module is github.com/docker/compose/v5 since
// release 5), which `make compose-plugin` builds. It is a module of its own so
// Compose's dependencies stay out of galaxy's go.mod.
package tools

import _ "github.com/docker/compose/v5/cmd"
