// Package security_test is the security suite of the four services. It runs
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
// Process 1 starts the shared infrastructure (Redis, PostgreSQL, the local
// registry, the four binaries); each spec starts the services it needs. The
// loopback specs use the services' fixed default ports and are Serial.
package security_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
)

var infra harness.Infra

func TestSecurity(t *testing.T) {
	RegisterFailHandler(Fail)
	harness.ConfigureGomega(t)
	RunSpecs(t, "Security of the internal APIs")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	return harness.StartInfra(ctx, GinkgoT()).Encode()
}, func(data []byte) {
	infra = harness.MustDecodeInfra(GinkgoT(), data)
}, NodeTimeout(harness.SuiteSetupTimeout))
