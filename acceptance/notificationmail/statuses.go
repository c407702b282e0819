package notificationmail

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = describe("notification statuses", Label(speclabel.Mail), func() {
	It("routes an intent of another producer with the same idempotency key as its own notification", behaviors.Proves(
		"notification.producer-key.per-producer",
	), func(ctx SpecContext) {
		key := harness.UniqueName("start-job")
		first := adminIntent("runtime.container_start_failed", harness.UniqueName("game"))
		first["idempotency_key"] = key
		second := adminIntent("runtime.container_start_failed", harness.UniqueName("game"))
		second["idempotency_key"] = key
		second["producer"] = "ops_console"
		ids := []string{svc.publishAdmin(ctx, first), svc.publishAdmin(ctx, second)}

		for _, id := range ids {
			Eventually(ctx, func(g Gomega) {
				n := svc.record(ctx, g, id)
				g.Expect(n.Status).To(Equal("routed"))
				g.Expect(n.DuplicateOf).To(BeNil())
				g.Expect(n.IdempotencyKey).To(HaveValue(Equal(key)))
			}).Should(Succeed())
		}
		framework.Settle(ctx, svc.Pipeline)
		for _, id := range ids {
			items := svc.deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(id, startAdmin)})
			Expect(items).To(HaveLen(1), "mails of intent %s", id)
			Expect(items[0].Status).To(Equal("sent"))
		}
	})

	It("lets a valid intent use the producer key of an earlier rejected one", behaviors.Proves(
		"notification.producer-key.rejected-claims-nothing",
	), func(ctx SpecContext) {
		key := harness.UniqueName("start-job")
		bad := adminIntent("runtime.container_start_failed", harness.UniqueName("game"))
		bad["idempotency_key"] = key
		bad["payload_json"] = "[]"
		badID := svc.publish(ctx, bad)
		Eventually(ctx, func(g Gomega) {
			g.Expect(svc.record(ctx, g, badID).Status).To(Equal("rejected"))
		}).Should(Succeed())

		good := adminIntent("runtime.container_start_failed", harness.UniqueName("game"))
		good["idempotency_key"] = key
		goodID := svc.publishAdmin(ctx, good)
		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, goodID)
			g.Expect(n.Status).To(Equal("routed"))
			g.Expect(n.DuplicateOf).To(BeNil())
			items := svc.deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(goodID, startAdmin)})
			g.Expect(items).To(HaveLen(1))
			g.Expect(items[0].Status).To(Equal("sent"))
		}).Should(Succeed())
	})

	It("skips a notification whose every user is unknown, with their common reason", behaviors.Proves(
		"notification.status.skipped-common-reason", "notification.user.unknown-skipped",
	), func(ctx SpecContext) {
		ghosts := []string{harness.UniqueName("ghost"), harness.UniqueName("ghost")}
		intentID := svc.publish(ctx, userIntent(harness.UniqueName("game"), ghosts...))

		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, intentID)
			g.Expect(n.Status).To(Equal("skipped"))
			g.Expect(n.Reason).To(HaveValue(Equal("user_not_found")))
			g.Expect(n.Routes).To(HaveLen(2))
			for _, r := range n.Routes {
				g.Expect(r.Status).To(Equal("skipped"))
				g.Expect(r.Reason).To(HaveValue(Equal("user_not_found")))
			}
		}).Should(Succeed())
		framework.Settle(ctx, svc.Pipeline)
		for _, ghost := range ghosts {
			Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: "notification:" + intentID + "/email:user:" + ghost})).To(BeEmpty())
		}
	})

	It("makes a route dead once its hand-off failed NOTIFICATION_ROUTE_MAX_ATTEMPTS times, and its notification dead", Label(speclabel.Hermetic), behaviors.Proves(
		"notification.retry.dead-after-max-attempts", "notification.status.dead",
	), func(ctx SpecContext) {
		// Notification alone, with no User Service where it looks for
		// one: every hand-off of a user route fails, and counts.
		const maxAttempts = 3
		p := framework.Pipeline(ctx, "notification without a user service", harness.PipelineOptions{
			Services: []string{"notification"},
			Env: map[string]map[string]string{"notification": {
				"NOTIFICATION_ROUTE_MAX_ATTEMPTS": "3",
			}},
		})
		user := harness.UniqueName("unreachable")
		intentID, err := p.Publish(ctx, p.Streams.Intents, userIntent(harness.UniqueName("game"), user))
		Expect(err).NotTo(HaveOccurred())

		notifications := p.NotificationClient()
		Eventually(ctx, func(g Gomega) {
			n, err := notifications.Notification(ctx, intentID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Status).To(Equal("dead"))
			g.Expect(n.Reason).To(HaveValue(Equal("routes_dead: attempts_exhausted=1")))
			g.Expect(n.Routes).To(HaveLen(1))
			r := n.Routes[0]
			g.Expect(r.RouteID).To(Equal("email:user:" + user))
			g.Expect(r.Status).To(Equal("dead"))
			g.Expect(r.Reason).To(HaveValue(Equal("attempts_exhausted")))
			g.Expect(r.Attempts).To(Equal(maxAttempts))
			g.Expect(r.LastError).To(HaveValue(ContainSubstring("user service")))
			g.Expect(r.MailEntryID).To(BeNil())
		}).Should(Succeed())

		framework.Settle(ctx, p)
		// A dead route is finished: nothing is counted in flight.
		Expect(notificationInFlight(ctx, Default, p)).To(Equal(harness.NotificationInFlight{}))
		commands, err := p.Redis.XRange(ctx, p.Streams.MailCommands, "-", "+").Result()
		Expect(err).NotTo(HaveOccurred())
		for _, c := range commands {
			Expect(c.Values["idempotency_key"]).NotTo(Equal("notification:" + intentID + "/email:user:" + user))
		}
	})
})
