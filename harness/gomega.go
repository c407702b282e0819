package harness

import "github.com/onsi/gomega"

// ConfigureGomega sets Gomega's default Eventually and Consistently timeout
// and polling interval from the suite configuration (eventually: in
// ginkgo.yml). Call it once per process, before the first assertion — in the
// suite's Test function or a BeforeSuite:
//
//	harness.ConfigureGomega(GinkgoT())
//
// A spec that needs another bound says so with WithTimeout/WithPolling, or
// passes its SpecContext so the wait ends with the spec.
func ConfigureGomega(tb TB) {
	tb.Helper()
	cfg := mustSuiteConfig(tb)
	gomega.SetDefaultEventuallyTimeout(cfg.Eventually.Timeout)
	gomega.SetDefaultEventuallyPollingInterval(cfg.Eventually.Polling)
	gomega.SetDefaultConsistentlyDuration(cfg.Eventually.ConsistentlyDuration)
	gomega.SetDefaultConsistentlyPollingInterval(cfg.Eventually.ConsistentlyPolling)
	// Without this, Eventually(ctx, …) with a spec's context and no explicit
	// timeout polls until the spec ends — a hang instead of a failure.
	gomega.EnforceDefaultTimeoutsWhenUsingContexts()
}
