// Package rtmnotification_test is the boundary suite Runtime Manager →
// Notification → Mail. It drives real binaries of the four services on real
// Redis, PostgreSQL and Docker, and proves the contract of
// ../../docs/contracts.md: when a game cannot be started, the Runtime Manager
// publishes exactly one admin intent of the right kind on
// notification:intents, Notification routes it to the admin list configured
// for that kind, and Mail records exactly one sent delivery with the intent's
// payload as template variables — and nothing is left running on Docker.
//
// Process 1 starts the shared infrastructure once (Redis, PostgreSQL, a local
// OCI registry holding the game images, the four binaries); every parallel
// process starts its own four services on its own streams, databases and
// Docker network, so specs never share state.
package rtmnotification_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
)

// The admin list of each failure kind. Each kind has its own recipient, so a
// spec proves that Notification honours the list per type; the image pull
// recipient is the seed test's.
var adminRecipient = map[string]string{
	"runtime.image_pull_failed":      "rtm-admin@example.com",
	"runtime.container_start_failed": "rtm-start-admin@example.com",
	"runtime.start_config_invalid":   "rtm-config-admin@example.com",
}

var (
	infra    harness.Infra
	pipeline *harness.Pipeline
)

func TestRTMNotification(t *testing.T) {
	RegisterFailHandler(Fail)
	harness.ConfigureGomega(t)
	RunSpecs(t, "Runtime Manager → Notification → Mail boundary")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	return harness.StartInfra(ctx, GinkgoT()).Encode()
}, func(ctx SpecContext, data []byte) {
	infra = harness.MustDecodeInfra(GinkgoT(), data)
	pipeline = harness.StartPipeline(ctx, GinkgoT(), infra, harness.PipelineOptions{AdminEmails: adminRecipient})
}, NodeTimeout(harness.SuiteSetupTimeout))

// Every spec that fails carries the services' logs and the streams' contents
// in its report.
var _ = AfterEach(func(ctx SpecContext) {
	if !CurrentSpecReport().Failed() || pipeline == nil {
		return
	}
	AddReportEntry("streams", pipeline.DumpStreams(ctx), ReportEntryVisibilityFailureOrVerbose)
	harness.AttachLogsOnFailure(pipeline.Processes()...)
}, NodeTimeout(harness.ReportTimeout))
