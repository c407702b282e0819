// Package security is the security area of the four services. It runs
// the real binaries and proves, through what an operator or an attacker on
// the same host can see, three promises:
//
//   - loopback by default: with no <P>_INTERNAL_HTTP_ADDR, each internal API
//     listens on 127.0.0.1 at its fixed port (CONTRACTS §2) and cannot be
//     reached through the host's other addresses;
//   - the bearer token: with <P>_INTERNAL_API_TOKEN set, every API route
//     answers 401 without the token or with a wrong one, and 200 with it,
//     while /healthz, /readyz and /metrics stay open for probes and scrapers;
//   - no secret leaks: the PostgreSQL password (of a role made for the
//     spec), the Redis password (of a Redis made to require one), the SMTP
//     password and the API token never appear in a process's log, in
//     /metrics, in /readyz or in an API answer — through normal traffic,
//     SMTP failures, an operator resend, bad requests, and starts that fail
//     because a secret is wrong.
//
// Each spec starts the services it needs against the shared world (Redis,
// PostgreSQL, the local registry, the four binaries). The
// loopback specs use the services' fixed default ports and are Serial.
package security

import (
	. "github.com/onsi/ginkgo/v2"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var infra harness.Infra

var area = framework.Area{Label: speclabel.Security, Hermetic: true, Setup: func(SpecContext) { infra = framework.Infra() }}

// describe registers security specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }
