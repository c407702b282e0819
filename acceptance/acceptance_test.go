// Package acceptance_test is the one acceptance program of the Galaxy
// platform: one Ginkgo suite whose areas — the boundary of the three failure
// kinds, the Runtime Manager on Docker, Notification → Mail, Mail, hostile
// input, security, resilience, the operator's command — are the packages
// imported below. Process 1 starts the shared world once per run; every
// process starts the pipelines its specs need, once each, when the first
// spec asks (acceptance/framework).
// docs/acceptance.md explains the areas, labels and reports.
package acceptance_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"

	_ "galaxy/acceptance/boundary"
	_ "galaxy/acceptance/hostileinput"
	_ "galaxy/acceptance/mail"
	_ "galaxy/acceptance/notificationmail"
	_ "galaxy/acceptance/operator"
	_ "galaxy/acceptance/resilience"
	_ "galaxy/acceptance/runtime"
	_ "galaxy/acceptance/security"
)

func TestAcceptance(t *testing.T) {
	// A filter naming an unknown label would select nothing and pass: stop
	// before anything starts.
	suite, _ := GinkgoConfiguration()
	if err := speclabel.CheckFilter(suite.LabelFilter, behaviors.Labels()...); err != nil {
		t.Fatal(err)
	}
	// Against a deployment, the specs that need processes or
	// infrastructure of their own are left out whatever the filter says.
	cfg, err := harness.LoadSuiteConfig()
	if err != nil {
		t.Fatal(err)
	}
	description := "Galaxy acceptance"
	if cfg.Target.Deployed() {
		suite.LabelFilter = speclabel.ExcludeForDeployed(suite.LabelFilter)
		description += " against a deployment"
	}
	RegisterFailHandler(Fail)
	harness.ConfigureGomega(t)
	RunSpecs(t, description, suite)
}

var _ = SynchronizedBeforeSuite(framework.StartWorld, framework.JoinWorld, NodeTimeout(harness.SuiteSetupTimeout))

// After this process's last spec: the run-wide ledger, then the shared
// resources stop whatever the ledger found.
var _ = AfterSuite(func(ctx SpecContext) {
	defer framework.Shutdown()
	framework.CheckLedger(ctx)
}, NodeTimeout(harness.LedgerTimeout))

var _ = AfterEach(framework.ReportFailure, NodeTimeout(harness.ReportTimeout))
