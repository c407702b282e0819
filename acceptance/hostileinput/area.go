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
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var (
	pipeline *harness.Pipeline // this process's boundary pipeline
	// admin is an address of the image_pull_failed list, the type of the
	// intents the specs publish, and configAdmin one of the
	// start_config_invalid list.
	admin, configAdmin string
)

var area = framework.Area{Label: speclabel.HostileInput, Setup: func(ctx SpecContext) {
	lists := framework.AdminEmails()
	admin = firstAddress(lists["runtime.image_pull_failed"])
	configAdmin = firstAddress(lists["runtime.start_config_invalid"])
	Expect(admin).NotTo(BeEmpty(), "an admin list for runtime.image_pull_failed")
	Expect(configAdmin).NotTo(BeEmpty(), "an admin list for runtime.start_config_invalid")
	opts := harness.PipelineOptions{AdminEmails: lists}
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

// firstAddress is the first address of a comma-separated admin list.
func firstAddress(list string) string {
	first, _, _ := strings.Cut(list, ",")
	return strings.TrimSpace(first)
}
