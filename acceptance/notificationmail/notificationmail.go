package notificationmail

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = describe("Notification → Mail", Label(speclabel.Mail), func() {
	It("mails an admin intent to every configured admin, once each", func(ctx SpecContext) {
		gameID := harness.UniqueName("game")
		intentID := svc.publish(ctx, adminIntent("runtime.image_pull_failed", gameID))

		for _, admin := range []string{"nm-admin@example.com", "nm-oncall@example.com"} {
			key := harness.AdminRouteKey(intentID, admin)
			Eventually(ctx, func(g Gomega) {
				items := svc.deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: key})
				g.Expect(items).To(HaveLen(1))
				g.Expect(items[0].Status).To(Equal("sent"))
				d := svc.delivery(ctx, g, items[0].DeliveryID)
				g.Expect(d.Source).To(Equal("notification"))
				g.Expect(d.PayloadMode).To(Equal("template"))
				g.Expect(d.TemplateID).To(Equal("runtime.image_pull_failed"))
				g.Expect(d.Locale).To(Equal("en"))
				g.Expect(d.To).To(Equal([]string{admin}))
				g.Expect(d.TemplateVariables).To(HaveKeyWithValue("game_id", gameID))
				g.Expect(d.Subject).To(ContainSubstring(gameID))
			}).Should(Succeed())
		}
		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, intentID)
			g.Expect(n.Status).To(Equal("routed"))
			g.Expect(n.Routes).To(HaveLen(2))
		}).Should(Succeed())

		framework.Settle(ctx, svc.Pipeline)
		for _, admin := range []string{"nm-admin@example.com", "nm-oncall@example.com"} {
			items := svc.deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(intentID, admin)})
			Expect(items).To(HaveLen(1), "mails to %s", admin)
		}
	})

	It("mails users in their own locale and skips the opted-out and the unknown", func(ctx SpecContext) {
		ana, bea, cid := harness.UniqueName("ana"), harness.UniqueName("bea"), harness.UniqueName("cid")
		optedOut := false
		svc.createUser(ctx, harness.NewUser{UserID: ana, Email: ana + "@example.com", DisplayName: "Ana", Locale: "en-GB"})
		svc.createUser(ctx, harness.NewUser{UserID: bea, Email: bea + "@example.com", DisplayName: "Béa", Locale: "fr-CA"})
		svc.createUser(ctx, harness.NewUser{UserID: cid, Email: cid + "@example.com", DisplayName: "Cid", Locale: "en", EmailNotifications: &optedOut})
		ghost := harness.UniqueName("ghost")
		gameID := harness.UniqueName("game")
		intentID := svc.publish(ctx, userIntent(gameID, ana, bea, cid, ghost))

		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, intentID)
			g.Expect(n.Status).To(Equal("partially_routed"))
			statuses := map[string]string{}
			for _, r := range n.Routes {
				statuses[r.RouteID] = r.Status
				if r.Reason != nil {
					statuses[r.RouteID] += "/" + *r.Reason
				}
			}
			g.Expect(statuses).To(Equal(map[string]string{
				"email:user:" + ana:   "routed",
				"email:user:" + bea:   "routed",
				"email:user:" + cid:   "skipped/email_opted_out",
				"email:user:" + ghost: "skipped/user_not_found",
			}))
		}).Should(Succeed())

		subjects := map[string]string{}
		Eventually(ctx, func(g Gomega) {
			for _, user := range []string{ana, bea} {
				items := svc.deliveries(ctx, g, harness.DeliveryQuery{Recipient: user + "@example.com"})
				g.Expect(items).To(HaveLen(1))
				g.Expect(items[0].Status).To(Equal("sent"))
				d := svc.delivery(ctx, g, items[0].DeliveryID)
				g.Expect(d.IdempotencyKey).To(Equal("notification:" + intentID + "/email:user:" + user))
				g.Expect(d.TemplateVariables).To(HaveKeyWithValue("game_id", gameID))
				subjects[user] = d.Subject
				g.Expect(d.TemplateVariables).To(HaveKey("user_display_name"))
			}
		}).Should(Succeed())
		Expect(subjects[ana]).To(HavePrefix("Your Galaxy game"))
		Expect(subjects[bea]).To(HavePrefix("Votre partie Galaxy"), "fr-CA falls back to the fr template")

		framework.Settle(ctx, svc.Pipeline)
		for _, user := range []string{ana, bea} {
			Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{Recipient: user + "@example.com"})).To(HaveLen(1), "mails to %s", user)
		}
		Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{Recipient: cid + "@example.com"})).To(BeEmpty())
	})

	It("mails once when a producer repeats an intent with its idempotency key", func(ctx SpecContext) {
		intent := adminIntent("runtime.container_start_failed", harness.UniqueName("game"))
		intent["idempotency_key"] = harness.UniqueName("start-job")
		first := svc.publish(ctx, intent)
		Eventually(ctx, func(g Gomega) {
			g.Expect(svc.record(ctx, g, first).Status).To(Equal("routed"))
		}).Should(Succeed())
		second := svc.publish(ctx, intent)

		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, second)
			g.Expect(n.Status).To(Equal("skipped"))
			g.Expect(n.DuplicateOf).To(HaveValue(Equal(first)))
		}).Should(Succeed())
		expectOneMailFor(ctx, first, second)
	})

	It("mails once when two intents with one idempotency key arrive together", func(ctx SpecContext) {
		intent := adminIntent("runtime.container_start_failed", harness.UniqueName("game"))
		intent["idempotency_key"] = harness.UniqueName("start-job")
		a := svc.publish(ctx, intent)
		b := svc.publish(ctx, intent)

		// Two workers may take the entries at the same instant, so either
		// may be recorded first: that one routes, the other is its
		// duplicate.
		var routed, duplicate string
		Eventually(ctx, func(g Gomega) {
			na, nb := svc.record(ctx, g, a), svc.record(ctx, g, b)
			routed, duplicate = a, b
			if na.Status == "skipped" {
				routed, duplicate = b, a
			}
			g.Expect(svc.record(ctx, g, routed).Status).To(Equal("routed"), "a: %s, b: %s", na.Status, nb.Status)
			n := svc.record(ctx, g, duplicate)
			g.Expect(n.Status).To(Equal("skipped"))
			g.Expect(n.DuplicateOf).To(HaveValue(Equal(routed)))
		}).Should(Succeed())
		expectOneMailFor(ctx, routed, duplicate)
	})

	It("rejects a malformed intent and still mails the next one", func(ctx SpecContext) {
		bad := svc.publish(ctx, map[string]string{"notification_type": "runtime.image_pull_failed", "producer": "runtime_manager",
			"audience_kind": "admin_email", "payload_json": "not json", "occurred_at_ms": "1"})
		good := svc.publish(ctx, adminIntent("runtime.container_start_failed", harness.UniqueName("game")))

		Eventually(ctx, func(g Gomega) {
			items := svc.deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(good, "nm-admin@example.com")})
			g.Expect(items).To(HaveLen(1))
			g.Expect(items[0].Status).To(Equal("sent"))
		}).Should(Succeed())
		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, bad)
			g.Expect(n.Status).To(Equal("rejected"))
			g.Expect(n.Reason).To(HaveValue(HavePrefix("payload_json:")))
		}).Should(Succeed())
	})

	It("mails a user once the User Service is back", func(ctx SpecContext) {
		user := harness.UniqueName("dan")
		svc.createUser(ctx, harness.NewUser{UserID: user, Email: user + "@example.com", DisplayName: "Dan", Locale: "fr"})
		Expect(svc.User.Stop()).To(Succeed())
		DeferCleanup(func() {
			if !svc.User.Running() {
				Expect(svc.User.Restart()).To(Succeed())
			}
		})
		intentID := svc.publish(ctx, userIntent(harness.UniqueName("game"), user))

		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, intentID)
			g.Expect(n.Status).To(Equal("pending"))
			g.Expect(n.Routes).To(HaveLen(1))
			g.Expect(n.Routes[0].Attempts).To(BeNumerically(">=", 2))
			g.Expect(n.Routes[0].LastError).To(HaveValue(ContainSubstring("user service")))
		}).Should(Succeed())
		Expect(svc.User.Restart()).To(Succeed())

		Eventually(ctx, func(g Gomega) {
			items := svc.deliveries(ctx, g, harness.DeliveryQuery{Recipient: user + "@example.com"})
			g.Expect(items).To(HaveLen(1))
			g.Expect(items[0].Status).To(Equal("sent"))
			g.Expect(items[0].Locale).To(Equal("fr"))
		}).Should(Succeed())
		framework.Settle(ctx, svc.Pipeline)
		Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{Recipient: user + "@example.com"})).To(HaveLen(1))
	})

	It("mails every intent exactly once across a Notification crash", speclabel.SlowSpec(), func(ctx SpecContext) {
		const total = 400
		pipe := svc.Redis.Pipeline()
		var cmds []*redis.StringCmd
		for range total {
			intent := adminIntent("runtime.start_config_invalid", harness.UniqueName("crash"))
			cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: svc.Streams.Intents, Values: toAny(intent)}))
		}
		_, err := pipe.Exec(ctx)
		Expect(err).NotTo(HaveOccurred())
		// Kill as soon as the first commands are out: the rest is in flight.
		Eventually(ctx, func() (int64, error) { return svc.Redis.XLen(ctx, svc.Streams.MailCommands).Result() }).
			WithPolling(10 * time.Millisecond).Should(BeNumerically(">", 0))
		Expect(svc.Notification.Kill()).To(Succeed())
		Expect(svc.Notification.Restart()).To(Succeed())

		Eventually(ctx, func(g Gomega) {
			items := svc.deliveries(ctx, g, harness.DeliveryQuery{Recipient: crashAdmin})
			g.Expect(items).To(HaveLen(total))
			for _, d := range items {
				g.Expect(d.Status).To(Equal("sent"))
			}
		}).Should(Succeed())

		// What the killed process left half done, its successor finishes:
		// once the pipeline has settled nothing is left to finish, so a
		// mail command written twice is on the stream by now.
		framework.Settle(ctx, svc.Pipeline)
		entries, err := svc.Redis.XRange(ctx, svc.Streams.MailCommands, "-", "+").Result()
		Expect(err).NotTo(HaveOccurred())
		perKey := map[string]int{}
		for _, e := range entries {
			k, _ := e.Values["idempotency_key"].(string)
			perKey[k]++
		}
		for _, c := range cmds {
			Expect(perKey[harness.AdminRouteKey(c.Val(), crashAdmin)]).To(Equal(1), "mail commands for intent %s", c.Val())
		}
	})
})

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// expectOneMailFor checks that the routed intent's mail is sent and that,
// once the pipeline has settled, it is the only one and the duplicate's
// never is.
func expectOneMailFor(ctx context.Context, routed, duplicate string) {
	GinkgoHelper()
	routedKey := harness.AdminRouteKey(routed, "nm-admin@example.com")
	Eventually(ctx, func(g Gomega) {
		items := svc.deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: routedKey})
		g.Expect(items).To(HaveLen(1))
		g.Expect(items[0].Status).To(Equal("sent"))
	}).Should(Succeed())
	framework.Settle(ctx, svc.Pipeline)
	Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: routedKey})).To(HaveLen(1))
	Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(duplicate, "nm-admin@example.com")})).To(BeEmpty())
}
