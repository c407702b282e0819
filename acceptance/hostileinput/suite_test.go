// Package hostileinput_test feeds the pipeline's public inputs — the mail
// command and intent streams and the Mail and User HTTP APIs — with malformed
// and hostile values, and checks the contract's promise for bad input: each
// gets a dead letter, a recorded rejection or a 400 naming the field, nothing
// crashes, and the next valid input still flows.
package hostileinput_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
)

var (
	infra    harness.Infra
	pipeline *harness.Pipeline
)

const admin = "hostile-admin@example.com"

func TestHostileInput(t *testing.T) {
	RegisterFailHandler(Fail)
	harness.ConfigureGomega(t)
	RunSpecs(t, "Hostile input")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	return harness.StartInfra(ctx, GinkgoT()).Encode()
}, func(ctx SpecContext, data []byte) {
	infra = harness.MustDecodeInfra(GinkgoT(), data)
	pipeline = harness.StartPipeline(ctx, GinkgoT(), infra, harness.PipelineOptions{
		AdminEmails: map[string]string{"runtime.image_pull_failed": admin},
	})
}, NodeTimeout(harness.SuiteSetupTimeout))

var _ = AfterEach(func(ctx SpecContext) {
	if !CurrentSpecReport().Failed() || pipeline == nil {
		return
	}
	AddReportEntry("streams", pipeline.DumpStreams(ctx), ReportEntryVisibilityFailureOrVerbose)
	harness.AttachLogsOnFailure(pipeline.Processes()...)
}, NodeTimeout(harness.ReportTimeout))

// Every service must still be running after the hostile input.
var _ = AfterEach(func() {
	if pipeline == nil {
		return
	}
	for _, p := range pipeline.Processes() {
		Expect(p.Running()).To(BeTrue(), "%s exited:\n%s", p.Name(), p.LogTail(50))
	}
})
