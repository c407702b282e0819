// Package hostileinput is the hostile-input area: it feeds the pipeline's
// public inputs — the mail command and intent streams and the Mail and User
// HTTP APIs — with malformed and hostile values, and checks the contract's
// promise for bad input: each gets a dead letter, a recorded rejection or a
// 400 naming the field, nothing crashes, and the next valid input still
// flows.
package hostileinput

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

const admin = "hostile-admin@example.com"

var pipeline *harness.Pipeline // this process's hostile-input pipeline

var area = framework.Area{Label: speclabel.HostileInput, Setup: func(ctx SpecContext) {
	pipeline = framework.Pipeline(ctx, "hostile input", harness.PipelineOptions{
		AdminEmails: map[string]string{"runtime.image_pull_failed": admin},
	})
	// Every service must still be running after the hostile input.
	DeferCleanup(func() {
		for _, p := range pipeline.Processes() {
			Expect(p.Running()).To(BeTrue(), "%s exited:\n%s", p.Name(), p.LogTail(50))
		}
	})
}}

// describe registers hostile-input specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }
