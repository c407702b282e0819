package resilience

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// killDowntime is how long a killed service stays dead while the flow goes
// on: its stream keeps filling, and what it had in hand stays pending. Twice
// drillClaimIdle: the entries the dead process held are past their claim
// idle when it is back, so the restarted process (or another consumer) must
// reclaim its predecessor's entries, and the ones that arrived meanwhile
// have waited a whole claim idle too.
const killDowntime = 2 * drillClaimIdle

var _ = describe("a service killed with SIGKILL while work flows", func() {
	DescribeTable("comes back whole once it is restarted",
		func(ctx SpecContext, service string) {
			d := newDrill(ctx, drillOptions{infra: infra})
			proc, base := d.service(service)
			f := d.startFlow(ctx, d.items)
			f.waitPublished(ctx, faultAfter)

			By("killing " + service + " with SIGKILL")
			Expect(proc.Kill()).To(Succeed())
			killedAt := time.Now()
			holdFault(killDowntime)
			if service == "userservice" {
				// Still down: what Notification cannot hand off yet, it
				// counts as in flight.
				d.expectUserRoutesWaiting(ctx)
			}

			By("restarting " + service)
			restartedAt := time.Now()
			Expect(proc.Restart()).To(Succeed())
			harness.WaitForHTTPStatus(GinkgoT(), proc, base+"/readyz", http.StatusOK)

			d.awaitRecovery(ctx, "kill -9 "+service, killedAt, restartedAt, f, everything)
			d.expectWhole(ctx, everything)
		},
		speclabel.SlowSpec(),
		Entry("the Runtime Manager", SpecTimeout(specTimeout), "rtmanager",
			behaviors.Proves("contract.streams.reclaim-dead-consumer", "contract.streams.ack-after-durable",
				"rtm.jobs.one-result-per-job", "rtm.lease.dead-holder")),
		Entry("Notification", SpecTimeout(specTimeout), "notification",
			behaviors.Proves("contract.streams.reclaim-dead-consumer", "contract.streams.ack-after-durable")),
		Entry("Mail", SpecTimeout(specTimeout), "mail",
			behaviors.Proves("contract.streams.reclaim-dead-consumer", "contract.streams.ack-after-durable")),
		Entry("the User Service", SpecTimeout(specTimeout), "userservice",
			behaviors.Proves("contract.inflight.notification-counts-routes")),
	)
})
