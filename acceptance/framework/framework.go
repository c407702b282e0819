// Package framework is what every area of the acceptance suite shares: the
// world process 1 starts once per run (Redis, PostgreSQL, the registry with
// the game images, the service binaries), the per-process resources started
// lazily and shared by the specs that use the same configuration (a
// pipeline of some or all of the services, Mail with its Mailpit), the
// Describe wrapper that puts a spec in its area, and the one failure
// reporter.
//
// The suite's entry point (acceptance/acceptance_test.go) wires it:
//
//	var _ = SynchronizedBeforeSuite(framework.StartWorld, framework.JoinWorld, ...)
//	var _ = AfterSuite(framework.Shutdown)
//	var _ = AfterEach(framework.ReportFailure, ...)
//
// Areas are ordinary packages under acceptance/ that register their specs
// through an Area's Describe (Kubernetes' SIGDescribe pattern): each spec
// carries its area's label and its name starts with "[label]", in reports and
// filters alike.
package framework

import (
	"context"
	"slices"
	"time"

	"github.com/onsi/ginkgo/v2"

	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var (
	world  harness.Infra
	target harness.TargetConfig
)

// StartWorld runs on process 1 only: it starts the shared world and returns
// its addresses for every process. What it starts is removed after the last
// process has finished (DeferCleanup in SynchronizedBeforeSuite). Against a
// deployment (ginkgo.yml's target) the world is only the registry with the
// game images: the deployment is the rest.
func StartWorld(ctx ginkgo.SpecContext) []byte {
	t := mustTarget()
	return harness.StartInfraWith(ctx, ginkgo.GinkgoT(), harness.InfraOptions{Deployed: t.Deployed()}).Encode()
}

// JoinWorld runs on every process with what StartWorld returned.
func JoinWorld(data []byte) {
	world = harness.MustDecodeInfra(ginkgo.GinkgoT(), data)
	target = mustTarget()
}

func mustTarget() harness.TargetConfig {
	cfg, err := harness.LoadSuiteConfig()
	if err != nil {
		ginkgo.Fail(err.Error())
	}
	return cfg.Target
}

// Infra is the shared world: its Redis, PostgreSQL, registry and game images,
// and the service binaries.
func Infra() harness.Infra { return world }

// Target is what the run tests: ginkgo.yml's target section with its
// GALAXY_TARGET_* overrides.
func Target() harness.TargetConfig { return target }

// Area is one area of the suite: its label, and what runs before each of its
// specs (where the area takes the shared resources its specs use).
type Area struct {
	Label string
	Setup func(ginkgo.SpecContext)
	// Hermetic areas start, configure or break processes of their own in
	// every spec: each of their specs carries speclabel.Hermetic, and a
	// run against a deployment leaves them out.
	Hermetic bool
}

// Describe registers a top-level container of the area's specs: its text is
// prefixed with "[label]" and it carries the area's label, so every test case
// in the JUnit and JSON reports names its area and a label filter selects it;
// Setup runs before each of its specs. Each area package wraps it as its
// own describe (Kubernetes' SIGDescribe).
func (a Area) Describe(text string, args ...any) bool {
	args = slices.Clone(args)
	if a.Setup != nil {
		for i, arg := range args {
			if body, ok := arg.(func()); ok {
				args[i] = func() {
					ginkgo.BeforeEach(a.Setup, ginkgo.NodeTimeout(harness.SuiteSetupTimeout))
					body()
				}
				break
			}
		}
	}
	labels := ginkgo.Label(a.Label)
	if a.Hermetic {
		labels = ginkgo.Label(a.Label, speclabel.Hermetic)
	}
	return ginkgo.Describe("["+a.Label+"] "+text, append([]any{labels}, args...)...)
}

// ReportFailure is the suite's one failure reporter (a top-level AfterEach):
// when the spec failed, it adds, once each, what the streams of every shared
// resource the spec used received and what each of their processes logged
// while the spec ran. Processes a spec started itself report through
// harness.AttachLogsOnFailure in that spec's DeferCleanup.
func ReportFailure(ctx context.Context) {
	used := takeUsed()
	report := ginkgo.CurrentSpecReport()
	if !report.Failed() {
		return
	}
	for _, r := range used {
		if d, ok := r.(interface {
			DumpStreamsSince(context.Context, time.Time) string
		}); ok {
			ginkgo.AddReportEntry(r.Name()+" streams since the spec started", d.DumpStreamsSince(ctx, report.StartTime), ginkgo.ReportEntryVisibilityFailureOrVerbose)
		}
		harness.AttachLogsOnFailure(r.Processes()...)
	}
}
