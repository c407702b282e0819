// Package hostileinput is the hostile-input area: it feeds the pipeline's
// public inputs — the mail command and intent streams and the Mail and User
// HTTP APIs — with malformed and hostile values, and checks the contract's
// promise for bad input: each gets a dead letter, a recorded rejection or a
// 400 naming the field, nothing crashes, and the next valid input still
// flows.
//
// Its specs run on the boundary area's pipeline: they ask for the same
// options, so a process that runs both areas starts one pipeline for both.
// Every input a spec sends names a recipient, key or game of its own, so
// neither area's specs see the other's work.
package hostileinput

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// admin is the admin list of the intents the specs publish.
var admin = framework.AdminEmails["runtime.image_pull_failed"]

var pipeline *harness.Pipeline // this process's boundary pipeline

var area = framework.Area{Label: speclabel.HostileInput, Setup: func(ctx SpecContext) {
	opts := harness.PipelineOptions{AdminEmails: framework.AdminEmails}
	pipeline = framework.Pipeline(ctx, "boundary", opts)
	framework.KeepLedger(pipeline, opts)
	// Every service must still be running after the hostile input.
	DeferCleanup(func() {
		for _, p := range pipeline.Processes() {
			Expect(p.Running()).To(BeTrue(), "%s exited:\n%s", p.Name(), p.LogTail(50))
		}
	})
}}

// describe registers hostile-input specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }
