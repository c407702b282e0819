package notificationmail

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = describe("Notification → Mail", Label(speclabel.Mail), func() {
	It("mails an admin intent to every configured admin, once each", behaviors.Proves(
		"notification.mail-command.template-mode", "notification.mail-command.fields-exact",
		"notification.mail-command.payload-variables", "notification.status.routed",
		"notification.api.get", "mail.stream.template-delivered", "mail.stub.kept-and-sent",
		"contract.admin-route.idempotency-key", "contract.admin-route.payload-as-variables",
		"contract.admin-route.locale",
	), func(ctx SpecContext) {
		gameID := harness.UniqueName("game")
		intent := adminIntent("runtime.image_pull_failed", gameID)
		intentID := svc.publishAdmin(ctx, intent)
		payload := decodeObject(intent["payload_json"])

		mailEntries := map[string]string{} // admin → its mail command's entry ID
		for _, admin := range pullAdmins {
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
				g.Expect(d.TemplateVariables).To(Equal(payload))
				// Stub mode: rendered, kept and sent, one attempt.
				g.Expect(d.Subject).To(Equal("[Galaxy] Game " + gameID + ": image pull failed (image_pull_failed)"))
				g.Expect(d.TextBody).To(ContainSubstring("\nGame: " + gameID + "\n"))
				g.Expect(d.HTMLBody).To(ContainSubstring("<code>" + gameID + "</code>"))
				g.Expect(d.Attempts).To(HaveLen(1))
				g.Expect(d.Attempts[0].Outcome).To(Equal("sent"))
				g.Expect(d.SentAtMS).NotTo(BeNil())
			}).Should(Succeed())

			// The command on the mail stream: exactly the contract's
			// fields, the payload byte for byte.
			id, fields := svc.mailCommand(ctx, Default, key)
			mailEntries[admin] = id
			Expect(slices.Sorted(maps.Keys(fields))).To(Equal([]string{"idempotency_key", "locale", "payload_mode",
				"requested_at_ms", "source", "template_id", "template_variables_json", "to_json"}))
			Expect(fields).To(HaveKeyWithValue("source", "notification"))
			Expect(fields).To(HaveKeyWithValue("payload_mode", "template"))
			Expect(fields).To(HaveKeyWithValue("template_id", "runtime.image_pull_failed"))
			Expect(fields).To(HaveKeyWithValue("template_variables_json", intent["payload_json"]))
			Expect(fields).To(HaveKeyWithValue("to_json", `["`+admin+`"]`))
			Expect(fields).To(HaveKeyWithValue("idempotency_key", key))
			requested, err := strconv.ParseInt(fields["requested_at_ms"].(string), 10, 64)
			Expect(err).NotTo(HaveOccurred())
			Expect(requested).To(BeNumerically(">", 0))
		}
		occurred, err := strconv.ParseInt(intent["occurred_at_ms"], 10, 64)
		Expect(err).NotTo(HaveOccurred())
		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, intentID)
			g.Expect(n.NotificationType).To(Equal("runtime.image_pull_failed"))
			g.Expect(n.Producer).To(Equal("runtime_manager"))
			g.Expect(n.AudienceKind).To(Equal("admin_email"))
			g.Expect(n.Payload).To(Equal(payload))
			g.Expect(n.OccurredAtMS).To(HaveValue(Equal(occurred)))
			g.Expect(n.IdempotencyKey).To(BeNil())
			g.Expect(n.Status).To(Equal("routed"))
			g.Expect(n.Reason).To(BeNil())
			g.Expect(n.Routes).To(HaveLen(len(pullAdmins)))
			for _, r := range n.Routes {
				admin := *r.Recipient
				g.Expect(mailEntries).To(HaveKey(admin))
				g.Expect(r.RouteID).To(Equal("email:email:" + admin))
				g.Expect(r.Status).To(Equal("routed"))
				g.Expect(r.Attempts).To(Equal(1))
				g.Expect(r.LastError).To(BeNil())
				g.Expect(r.IdempotencyKey).To(Equal(harness.AdminRouteKey(intentID, admin)))
				g.Expect(r.MailEntryID).To(HaveValue(Equal(mailEntries[admin])))
			}
		}).Should(Succeed())

		framework.Settle(ctx, svc.Pipeline)
		for _, admin := range pullAdmins {
			items := svc.deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(intentID, admin)})
			Expect(items).To(HaveLen(1), "mails to %s", admin)
		}
	})

	It("mails users in their own locale and skips the opted-out and the unknown", behaviors.Proves(
		"notification.user.route-per-user", "notification.user.unknown-skipped",
		"notification.user.opted-out-skipped", "notification.mail-command.template-mode",
		"notification.mail-command.user-locale", "notification.mail-command.user-key",
		"notification.mail-command.payload-variables", "notification.status.partially-routed",
		"mail.locale.language", "mail.locale.default", "user.create.stored",
	), func(ctx SpecContext) {
		ana, bea, cid, dee := harness.UniqueName("ana"), harness.UniqueName("bea"), harness.UniqueName("cid"), harness.UniqueName("dee")
		optedOut := false
		svc.createUser(ctx, harness.NewUser{UserID: ana, Email: ana + "@example.com", DisplayName: "Ana", Locale: "en-GB"})
		svc.createUser(ctx, harness.NewUser{UserID: bea, Email: bea + "@example.com", DisplayName: "Béa", Locale: "fr-CA"})
		svc.createUser(ctx, harness.NewUser{UserID: dee, Email: dee + "@example.com", DisplayName: "Dee", Locale: "de-AT"})
		svc.createUser(ctx, harness.NewUser{UserID: cid, Email: cid + "@example.com", DisplayName: "Cid", Locale: "en", EmailNotifications: &optedOut})
		ghost := harness.UniqueName("ghost")
		gameID := harness.UniqueName("game")
		// Ana twice: one route per distinct user.
		intentID := svc.publish(ctx, userIntent(gameID, ana, bea, ana, cid, dee, ghost))
		framework.ExpectForGame(svc.Pipeline, gameID, harness.Effects{Mails: lobbyMails(ana, bea, dee)})
		// The template each locale is rendered from: the language's, or
		// the default's when the language has none.
		users := map[string]struct{ name, locale, template string }{
			ana: {"Ana", "en-GB", "en"},
			bea: {"Béa", "fr-CA", "fr"},
			dee: {"Dee", "de-AT", "en"},
		}

		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, intentID)
			g.Expect(n.Status).To(Equal("partially_routed"))
			g.Expect(n.Reason).To(HaveValue(Equal("some_routes_not_routed: email_opted_out=1, user_not_found=1")))
			g.Expect(n.Routes).To(HaveLen(5))
			statuses := map[string]string{}
			for _, r := range n.Routes {
				statuses[r.RouteID] = r.Status
				if r.Reason != nil {
					statuses[r.RouteID] += "/" + *r.Reason
				}
				if u, ok := users[*r.UserID]; ok {
					g.Expect(r.Recipient).To(HaveValue(Equal(*r.UserID + "@example.com")))
					g.Expect(r.Locale).To(HaveValue(Equal(u.locale)))
					g.Expect(r.IdempotencyKey).To(Equal("notification:" + intentID + "/email:user:" + *r.UserID))
				}
			}
			g.Expect(statuses).To(Equal(map[string]string{
				"email:user:" + ana:   "routed",
				"email:user:" + bea:   "routed",
				"email:user:" + dee:   "routed",
				"email:user:" + cid:   "skipped/email_opted_out",
				"email:user:" + ghost: "skipped/user_not_found",
			}))
		}).Should(Succeed())

		subjects := map[string]string{}
		Eventually(ctx, func(g Gomega) {
			for _, user := range []string{ana, bea, dee} {
				items := svc.deliveries(ctx, g, harness.DeliveryQuery{Recipient: user + "@example.com"})
				g.Expect(items).To(HaveLen(1))
				g.Expect(items[0].Status).To(Equal("sent"))
				d := svc.delivery(ctx, g, items[0].DeliveryID)
				g.Expect(d.IdempotencyKey).To(Equal("notification:" + intentID + "/email:user:" + user))
				g.Expect(d.Source).To(Equal("notification"))
				g.Expect(d.PayloadMode).To(Equal("template"))
				g.Expect(d.TemplateID).To(Equal("lobby.game_starting"))
				g.Expect(d.To).To(Equal([]string{user + "@example.com"}))
				g.Expect(d.Locale).To(Equal(users[user].locale))
				g.Expect(d.ResolvedLocale).To(Equal(users[user].template))
				g.Expect(d.TemplateVariables).To(Equal(map[string]any{"game_id": gameID, "user_display_name": users[user].name}))
				subjects[user] = d.Subject
			}
		}).Should(Succeed())
		Expect(subjects[ana]).To(Equal("Your Galaxy game " + gameID + " is starting"))
		Expect(subjects[bea]).To(Equal("Votre partie Galaxy "+gameID+" démarre"), "fr-CA falls back to the fr template")
		Expect(subjects[dee]).To(Equal("Your Galaxy game "+gameID+" is starting"), "no de template: the default's")

		framework.Settle(ctx, svc.Pipeline)
		for _, user := range []string{ana, bea, dee} {
			Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{Recipient: user + "@example.com"})).To(HaveLen(1), "mails to %s", user)
		}
		Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{Recipient: cid + "@example.com"})).To(BeEmpty())
	})

	It("mails once when a producer repeats an intent with its idempotency key", behaviors.Proves(
		"notification.producer-key.duplicate-skipped",
	), func(ctx SpecContext) {
		intent := adminIntent("runtime.container_start_failed", harness.UniqueName("game"))
		intent["idempotency_key"] = harness.UniqueName("start-job")
		first := svc.publishAdmin(ctx, intent)
		Eventually(ctx, func(g Gomega) {
			g.Expect(svc.record(ctx, g, first).Status).To(Equal("routed"))
		}).Should(Succeed())
		second := svc.publish(ctx, intent) // the repeat mails nothing more

		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, second)
			g.Expect(n.Status).To(Equal("skipped"))
			g.Expect(n.Reason).To(HaveValue(Equal("duplicate")))
			g.Expect(n.DuplicateOf).To(HaveValue(Equal(first)))
			g.Expect(n.Routes).To(BeEmpty())
		}).Should(Succeed())
		expectOneMailFor(ctx, first, second)
	})

	It("mails once when two intents with one idempotency key arrive together", behaviors.Proves(
		"notification.producer-key.race-one-wins", "notification.producer-key.duplicate-skipped",
	), func(ctx SpecContext) {
		intent := adminIntent("runtime.container_start_failed", harness.UniqueName("game"))
		intent["idempotency_key"] = harness.UniqueName("start-job")
		// Whichever of the two is routed, the game has one mail.
		a := svc.publishAdmin(ctx, intent)
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
			g.Expect(n.Reason).To(HaveValue(Equal("duplicate")))
			g.Expect(n.DuplicateOf).To(HaveValue(Equal(routed)))
			g.Expect(n.Routes).To(BeEmpty())
		}).Should(Succeed())
		expectOneMailFor(ctx, routed, duplicate)
	})

	It("rejects a malformed intent and still mails the next one", behaviors.Proves(
		"notification.intent.rejected-names-field", "notification.intent.rejected-keeps-raw-fields",
		"notification.intent.rejected-does-not-block",
	), func(ctx SpecContext) {
		badFields := map[string]string{"notification_type": "runtime.image_pull_failed", "producer": "runtime_manager",
			"audience_kind": "admin_email", "payload_json": "not json", "occurred_at_ms": "1"}
		bad := svc.publish(ctx, badFields)
		good := svc.publishAdmin(ctx, adminIntent("runtime.container_start_failed", harness.UniqueName("game")))

		Eventually(ctx, func(g Gomega) {
			items := svc.deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(good, startAdmin)})
			g.Expect(items).To(HaveLen(1))
			g.Expect(items[0].Status).To(Equal("sent"))
		}).Should(Succeed())
		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, bad)
			g.Expect(n.Status).To(Equal("rejected"))
			g.Expect(n.Reason).To(HaveValue(HavePrefix("payload_json: ")))
			g.Expect(n.RawFields).To(Equal(badFields))
			g.Expect(n.Routes).To(BeEmpty())
		}).Should(Succeed())
	})

	It("mails a user once the User Service is back", Label(speclabel.Hermetic), behaviors.Proves(
		"notification.retry.pending-while-user-service-down",
		"notification.retry.entry-acknowledged", "contract.inflight.notification-counts-routes",
		"notification.status.pending",
		"notification.mail-command.user-locale",
	), func(ctx SpecContext) {
		user := harness.UniqueName("dan")
		svc.createUser(ctx, harness.NewUser{UserID: user, Email: user + "@example.com", DisplayName: "Dan", Locale: "fr"})
		Expect(svc.User.Stop()).To(Succeed())
		DeferCleanup(func() {
			if !svc.User.Running() {
				Expect(svc.User.Restart()).To(Succeed())
			}
		})
		gameID := harness.UniqueName("game")
		intentID := svc.publish(ctx, userIntent(gameID, user))
		framework.ExpectForGame(svc.Pipeline, gameID, harness.Effects{Mails: lobbyMails(user)})

		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, intentID)
			g.Expect(n.Status).To(Equal("pending"))
			g.Expect(n.Routes).To(HaveLen(1))
			g.Expect(n.Routes[0].Status).To(Equal("pending"))
			g.Expect(n.Routes[0].Attempts).To(BeNumerically(">=", 2))
			g.Expect(n.Routes[0].LastError).To(HaveValue(ContainSubstring("user service")))
			g.Expect(n.Routes[0].NextAttemptAtMS).NotTo(BeNil())

			// The route waits; its intent does not: the entry is
			// acknowledged.
			pending, err := svc.Redis.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: svc.Streams.Intents, Group: "notification", Start: intentID, End: intentID, Count: 1,
			}).Result()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pending).To(BeEmpty())

			// It is counted as waiting for a retry.
			f := notificationInFlight(ctx, g, svc.Pipeline)
			g.Expect(f.PendingRoutes).To(BeNumerically(">=", 1))
			g.Expect(f.AwaitingRetry).To(BeNumerically(">=", 1))
			g.Expect(f.PendingNotifications).To(BeNumerically(">=", 1))
			g.Expect(f.AwaitingFirstAttempt + f.AwaitingRetry).To(Equal(f.PendingRoutes))
			g.Expect(f.InFlight).To(Equal(f.PendingRoutes))
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
		// Routed, the route is no longer counted.
		Expect(notificationInFlight(ctx, Default, svc.Pipeline)).To(Equal(harness.NotificationInFlight{}))
	})

	It("mails every intent exactly once across a Notification crash", speclabel.SlowSpec(), Label(speclabel.Hermetic), behaviors.Proves(
		"notification.exactly-once.crash",
	), func(ctx SpecContext) {
		const total = 400
		ids := svc.publishAdminBurst(ctx, "runtime.start_config_invalid", "crash", total)
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
		for _, id := range ids {
			Expect(perKey[harness.AdminRouteKey(id, crashAdmin)]).To(Equal(1), "mail commands for intent %s", id)
		}
	})
})

// expectOneMailFor checks that the routed intent's mail is sent and that,
// once the pipeline has settled, it is the only one and the duplicate's
// never is.
func expectOneMailFor(ctx context.Context, routed, duplicate string) {
	GinkgoHelper()
	routedKey := harness.AdminRouteKey(routed, startAdmin)
	Eventually(ctx, func(g Gomega) {
		items := svc.deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: routedKey})
		g.Expect(items).To(HaveLen(1))
		g.Expect(items[0].Status).To(Equal("sent"))
	}).Should(Succeed())
	framework.Settle(ctx, svc.Pipeline)
	Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: routedKey})).To(HaveLen(1))
	Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(duplicate, startAdmin)})).To(BeEmpty())
}
