package harness

import "github.com/onsi/ginkgo/v2"

// AttachLogsOnFailure adds, when the current Ginkgo spec has failed, one
// report entry per process holding what it logged while the spec ran (at
// most the last 500 lines), so JUnit and the console show the services' side
// of a failure without the noise of green specs. Call it from a DeferCleanup
// or an AfterEach:
//
//	DeferCleanup(harness.AttachLogsOnFailure, mail, notification)
func AttachLogsOnFailure(procs ...*Process) {
	report := ginkgo.CurrentSpecReport()
	if !report.Failed() {
		return
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		ginkgo.AddReportEntry(p.Name()+" log", p.LogsSince(report.StartTime, 500), ginkgo.ReportEntryVisibilityFailureOrVerbose)
	}
}
