package notificationmail

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = describe("two Notification replicas", Label(speclabel.Mail, speclabel.Hermetic), func() {
	It("share one consumer group and mail every intent exactly once", speclabel.SlowSpec(), behaviors.Proves(
		"notification.exactly-once.replicas",
	), func(ctx SpecContext) {
		// A second process with the first one's database and streams, as a
		// second replica of the deployment would be.
		replica := svc.Service("notification").Replica(ctx, GinkgoT(), nil)
		replicaURL := replica.URL
		DeferCleanup(harness.AttachLogsOnFailure, replica.Process)
		acceptedBefore := acceptedIntents(ctx, svc.NotificationURL) + acceptedIntents(ctx, replicaURL)

		const total = 300
		ids := svc.publishAdminBurst(ctx, "runtime.image_pull_failed", "replica", total)

		By("every route of every intent mailed once")
		keys := map[string]bool{}
		for _, id := range ids {
			keys[harness.AdminRouteKey(id, "nm-oncall@example.com")] = true
		}
		// 300 intents through two processes on two busy cores: a longer wait
		// than the suite's default.
		Eventually(ctx, func(g Gomega) {
			items := svc.deliveries(ctx, g, harness.DeliveryQuery{Recipient: "nm-oncall@example.com", Status: "sent", Limit: 500})
			seen := map[string]int{}
			for _, d := range items {
				detail := svc.delivery(ctx, g, d.DeliveryID)
				if keys[detail.IdempotencyKey] {
					seen[detail.IdempotencyKey]++
				}
			}
			g.Expect(seen).To(HaveLen(total))
			for k, n := range seen {
				g.Expect(n).To(Equal(1), k)
			}
		}).WithTimeout(90 * time.Second).Should(Succeed())

		By("no mail command written twice, once the pipeline has settled")
		// Settled reads the routes of both replicas: they share one
		// database.
		framework.Settle(ctx, svc.Pipeline)
		entries, err := svc.Redis.XRange(ctx, svc.Streams.MailCommands, "-", "+").Result()
		Expect(err).NotTo(HaveOccurred())
		perKey := map[string]int{}
		for _, e := range entries {
			k, _ := e.Values["idempotency_key"].(string)
			perKey[k]++
		}
		for k := range keys {
			Expect(perKey[k]).To(Equal(1), k)
		}

		By("both replicas having taken a share")
		first := acceptedIntents(ctx, svc.NotificationURL)
		second := acceptedIntents(ctx, replicaURL)
		Expect(first + second - acceptedBefore).To(BeNumerically(">=", total))
		Expect(second).To(BeNumerically(">", 0), "the replica accepted no intent")
		AddReportEntry("intents accepted per replica", map[string]float64{"first": first, "replica": second})
	})
})

// acceptedIntents reads a Notification process's accepted-intents counter
// from its /metrics.
func acceptedIntents(ctx context.Context, baseURL string) float64 {
	GinkgoHelper()
	m, err := harness.ScrapeMetrics(ctx, baseURL)
	Expect(err).NotTo(HaveOccurred())
	v, ok := m[`notification_intents_total{outcome="accepted"}`]
	Expect(ok).To(BeTrue(), "no accepted-intents counter in /metrics")
	return v
}
