package harness

import "time"

// Node timeouts of the suites' set-up and reporting nodes. They bound work
// that does not poll (builds, container starts), unlike the Eventually
// defaults that ginkgo.yml sets.
const (
	// SuiteSetupTimeout covers a cold SynchronizedBeforeSuite: building four
	// binaries and the game images on two cores, and starting containers.
	SuiteSetupTimeout = 10 * time.Minute
	// ReportTimeout bounds collecting logs and stream dumps for a failed spec.
	ReportTimeout = 30 * time.Second
	// LedgerTimeout bounds the run-wide ledger after a process's last spec:
	// its pipelines settling (at most the Eventually timeout) and reading
	// their streams and deliveries.
	LedgerTimeout = 2 * time.Minute
)
