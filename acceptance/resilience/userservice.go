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

// userServiceDowntimeAfterFlow is how long the User Service stays down after
// the flow's last item: a route's whole backoff budget (routeBudget, 5.4 s)
// plus one retry at its ceiling. Every user intent of the flow is published
// while the service is down, so every user route is refused by an
// unreachable User Service for longer than a route may be retried for a
// failure of its own: had those refusals counted, each would be dead and
// its player never mailed.
var userServiceDowntimeAfterFlow = routeBudget + drillRouteBackoffMax

var _ = describe("the User Service down for longer than a route's budget", func() {
	It("sends every user mail of the outage once it is back, and no route is dead", speclabel.SlowSpec(), behaviors.Proves("contract.inflight.notification-counts-routes"), func(ctx SpecContext) {
		d := newDrill(ctx, drillOptions{infra: infra})
		proc, base := d.service("userservice")
		f := d.startFlow(ctx, d.items)
		f.waitPublished(ctx, faultAfter)

		By("killing the User Service with SIGKILL")
		Expect(proc.Kill()).To(Succeed())
		killedAt := time.Now()
		f.wait(ctx)
		holdFault(time.Until(f.last.Add(userServiceDowntimeAfterFlow)))

		By("Notification counting every user route of the outage as in flight")
		d.expectUserRoutesWaiting(ctx)

		By("no notification dead when the outage has outlasted the route budget")
		notifications := harness.NewNotificationClient(d.p.NotificationURL, "")
		dead, err := notifications.AllNotifications(ctx, harness.NotificationQuery{Status: "dead"})
		Expect(err).NotTo(HaveOccurred())
		Expect(dead).To(BeEmpty(), "notifications dead after an outage of %s (route budget %s)",
			time.Since(killedAt).Round(time.Millisecond), routeBudget)

		By("restarting the User Service")
		restartedAt := time.Now()
		Expect(restartedAt.Sub(killedAt)).To(BeNumerically(">", routeBudget+drillRouteBackoffMax))
		Expect(proc.Restart()).To(Succeed())
		harness.WaitForHTTPStatus(GinkgoT(), proc, base+"/readyz", http.StatusOK)

		d.awaitRecovery(ctx, "user service down past the route budget", killedAt, restartedAt, f, everything)
		d.expectWhole(ctx, everything)
		dead, err = notifications.AllNotifications(ctx, harness.NotificationQuery{Status: "dead"})
		Expect(err).NotTo(HaveOccurred())
		Expect(dead).To(BeEmpty(), "dead notifications")
	}, SpecTimeout(specTimeout))
})
