// Package boundary is the boundary area Runtime Manager → Notification →
// Mail. It drives real binaries of the four services on real Redis,
// PostgreSQL and Docker, and proves the contract of ../../docs/contracts.md:
// when a game cannot be started, the Runtime Manager publishes exactly one
// admin intent of the right kind on notification:intents, Notification routes
// it to the admin list configured for that kind, and Mail records exactly one
// sent delivery with the intent's payload as template variables — and
// nothing is left running on Docker.
//
// Every process runs one boundary pipeline (its own streams, databases and
// Docker network), started by the first boundary spec it runs, whose Runtime
// Manager pulls if_missing and whose Notification mails in the default
// admin locale; and, once a spec asks, two routes of a Runtime Manager and a
// Notification more, for the pull policies always and never and the admin
// locales fr-CA and de, whose mails the pipeline's Mail renders (routes.go).
package boundary

import (
	. "github.com/onsi/ginkgo/v2"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var (
	infra    harness.Infra
	pipeline *harness.Pipeline // this process's boundary pipeline
	// adminRecipient is the admin list of each failure kind
	// (framework.AdminEmails), so a spec proves that Notification honours
	// the list per type.
	adminRecipient map[string]string
)

var area = framework.Area{Label: speclabel.Boundary, Setup: func(ctx SpecContext) {
	infra = framework.Infra()
	adminRecipient = framework.AdminEmails()
	opts := harness.PipelineOptions{AdminEmails: adminRecipient}
	pipeline = framework.Pipeline(ctx, "boundary", opts)
	// The run-wide ledger checks, after the process's last spec, that the
	// pipeline produced exactly what the specs registered (expectations.go).
	framework.KeepLedger(pipeline, opts)
}}

// describe is the area's Describe: its specs are labelled boundary, named "[boundary] …",
// with the pipeline started before they run.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }
