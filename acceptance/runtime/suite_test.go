// Package runtime_test is the Runtime Manager's own acceptance suite: the
// life of a game container as the rtmanager binary runs it on a real Docker
// daemon — started from a registry and reported healthy, stopped with its
// state kept, watched until it turns unhealthy or exits, kept running across
// a restart of the manager, and never started twice — seen only through the
// service's streams, its HTTP API and the daemon.
//
// Process 1 starts the shared infrastructure (Redis, PostgreSQL, the local
// registry with the game images) and builds the rtmanager binary; each
// parallel process runs its own rtmanager on its own database, streams,
// Docker network, state root and instance identity.
package runtime_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
)

var (
	infra harness.Infra
	rtm   *manager
)

func TestRuntime(t *testing.T) {
	RegisterFailHandler(Fail)
	harness.ConfigureGomega(t)
	RunSpecs(t, "Runtime Manager")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	return harness.StartInfraWith(ctx, GinkgoT(), harness.InfraOptions{
		Packages: []string{harness.ServicePackages["rtmanager"]},
	}).Encode()
}, func(ctx SpecContext, data []byte) {
	infra = harness.MustDecodeInfra(GinkgoT(), data)
	rtm = startManager(ctx)
}, NodeTimeout(harness.SuiteSetupTimeout))

var _ = AfterEach(func(ctx SpecContext) {
	if !CurrentSpecReport().Failed() || rtm == nil {
		return
	}
	AddReportEntry("streams", rtm.dumpStreams(ctx), ReportEntryVisibilityFailureOrVerbose)
	harness.AttachLogsOnFailure(rtm.proc)
}, NodeTimeout(harness.ReportTimeout))
