package harness

// TB is the part of testing.TB the harness needs. *testing.T, *testing.B,
// Ginkgo's GinkgoT() and PackageTB satisfy it, so one helper serves plain go
// tests, TestMain set-ups and Ginkgo suites alike. Under Ginkgo, Cleanup is
// DeferCleanup and Fatalf fails the current node.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
	Name() string
}

// failedReporter is implemented by *testing.T and GinkgoT(); the harness uses
// it to print process logs only when a test failed.
type failedReporter interface {
	Failed() bool
}

// testFailed reports whether tb says its test failed; TBs that cannot tell
// (PackageTB) count as not failed.
func testFailed(tb TB) bool {
	f, ok := tb.(failedReporter)
	return ok && f.Failed()
}
