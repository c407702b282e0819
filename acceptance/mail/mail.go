package mail

import (
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
)

var _ = describe("a template command on the stream", func() {
	It("is rendered, sent over SMTP once and recorded with its variables", behaviors.Proves(
		"mail.stream.template-delivered", "mail.locale.language", "mail.smtp.message-sent",
		"mail.render.html-escaped", "mail.render.text-literal", "mail.attempts.recorded",
		"mail.render.ms-time", "mail.command.numbers-exact",
	), func(ctx SpecContext) {
		to := recipient("ops")
		key := harness.AdminRouteKey("1700000000000-0", to)
		vars := map[string]any{
			"game_id": "game-7", "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
			"error_message": `pull: <b>denied</b> & "quoted"`, "attempted_at_ms": 1700000000123,
		}
		svc.push(ctx, imagePullCommand(key, to, "fr-CA", vars))
		framework.ExpectDelivery(svc.Pipeline, key, "sent")

		d := svc.deliveryByKey(ctx, key, "sent")
		Expect(d.Source).To(Equal("notification"))
		Expect(d.PayloadMode).To(Equal("template"))
		Expect(d.TemplateID).To(Equal("runtime.image_pull_failed"))
		Expect(d.IdempotencyKey).To(Equal(key))
		Expect(d.Locale).To(Equal("fr-CA"))
		Expect(d.ResolvedLocale).To(Equal("fr"), "fr-CA falls back to fr")
		Expect(d.To).To(Equal([]string{to}))
		// Numbers decode as float64; the timestamp is exact in one.
		vars["attempted_at_ms"] = float64(1700000000123)
		Expect(d.TemplateVariables).To(Equal(vars))
		Expect(d.Subject).To(Equal("[Galaxy] Partie game-7 : échec — téléchargement d'image (image_pull_failed)"))
		Expect(d.TextBody).To(ContainSubstring("\nMessage d'erreur : pull: <b>denied</b> & \"quoted\"\n"))
		// msTime as RFC 3339 UTC, and the number itself as it was written.
		Expect(d.TextBody).To(ContainSubstring("\nDate de la tentative : 2023-11-14T22:13:20Z (1700000000123)\n"))
		Expect(d.HTMLBody).To(ContainSubstring(`<pre style="white-space: pre-wrap; margin: 0;">pull: &lt;b&gt;denied&lt;/b&gt; &amp; &#34;quoted&#34;</pre>`))
		Expect(d.Attempts).To(HaveLen(1))
		a := d.Attempts[0]
		Expect(a.Attempt).To(Equal(1))
		Expect(a.Sequence).To(Equal(1))
		Expect(a.Outcome).To(Equal("sent"))
		Expect(a.Error).To(BeEmpty())
		Expect(a.StartedAtMS).To(BeNumerically(">=", d.CreatedAtMS))
		Expect(a.FinishedAtMS).To(BeNumerically(">=", a.StartedAtMS))
		Expect(d.SentAtMS).To(HaveValue(BeNumerically(">=", a.StartedAtMS)))

		var msgs []harness.MailpitFullMessage
		Eventually(ctx, func() []harness.MailpitFullMessage { msgs = svc.received(ctx, to); return msgs }).Should(HaveLen(1))
		m := msgs[0]
		Expect(m.From.Address).To(Equal("mail@galaxy.example"))
		Expect(m.To).To(HaveExactElements(HaveField("Address", to)))
		Expect(m.Subject).To(Equal(d.Subject))
		Expect(m.MessageID).To(Equal(d.DeliveryID + ".1@galaxy-mail"))
		Expect(m.Text).To(ContainSubstring(`Message d'erreur : pull: <b>denied</b> & "quoted"`))
		Expect(m.HTML).To(ContainSubstring("pull: &lt;b&gt;denied&lt;/b&gt; &amp; &#34;quoted&#34;"))
		Expect(m.HTML).NotTo(ContainSubstring("<b>denied"))
	})

	It("fails with template_render_failed when a variable is missing, and template_not_found without a template", behaviors.Proves(
		"mail.template.render-failed", "mail.template.not-found",
	), func(ctx SpecContext) {
		to := recipient("ops")
		svc.push(ctx, imagePullCommand("render-"+to, to, "en", map[string]any{"game_id": "g"}))
		missing := imagePullCommand("notfound-"+to, to, "en", nil)
		missing["template_id"] = "runtime.no_such_template"
		svc.push(ctx, missing)
		framework.ExpectDelivery(svc.Pipeline, "render-"+to, "failed")
		framework.ExpectDelivery(svc.Pipeline, "notfound-"+to, "failed")

		// The subject is rendered first, and its second variable is the
		// first one missing.
		d := svc.deliveryByKey(ctx, "render-"+to, "failed")
		Expect(d.ErrorCode).To(Equal("template_render_failed"))
		Expect(d.ErrorMessage).To(ContainSubstring("runtime.image_pull_failed/en/subject.tmpl"))
		Expect(d.ErrorMessage).To(ContainSubstring(`map has no entry for key "error_code"`))
		d = svc.deliveryByKey(ctx, "notfound-"+to, "failed")
		Expect(d.ErrorCode).To(Equal("template_not_found"))
		Expect(d.ErrorMessage).To(ContainSubstring(`"runtime.no_such_template"`))
		framework.Settle(ctx, svc.Pipeline)
		Expect(svc.received(ctx, to)).To(BeEmpty())
	})
})

var _ = describe("malformed and repeated commands", func() {
	It("dead-letters a malformed command with its reason while later commands flow", behaviors.Proves(
		"mail.stream.malformed-dead-lettered", "mail.command.control-characters-refused",
	), func(ctx SpecContext) {
		to := recipient("ops")
		bad := imagePullCommand("bad-"+to, to, "en", nil)
		bad["to_json"] = `["` + to + `\r\nBcc: evil@example.com"]`
		svc.push(ctx, bad)
		svc.push(ctx, imagePullCommand("good-"+to, to, "en", nil))
		// Nothing for the dead-lettered command: it is to have no delivery.
		framework.ExpectDelivery(svc.Pipeline, "good-"+to, "sent")

		svc.deliveryByKey(ctx, "good-"+to, "sent")
		Eventually(ctx, func(g Gomega) {
			dead, err := svc.Redis.XRange(ctx, svc.Streams.MailCommands+":dead", "-", "+").Result()
			g.Expect(err).NotTo(HaveOccurred())
			var reason string
			for _, e := range dead {
				if e.Values["idempotency_key"] == "bad-"+to {
					reason, _ = e.Values["dead_error"].(string)
				}
			}
			g.Expect(reason).To(ContainSubstring("to_json"))
			g.Expect(reason).To(ContainSubstring("control character"))
		}).Should(Succeed())
		framework.Settle(ctx, svc.Pipeline)
		items, _, err := svc.api.Deliveries(ctx, harness.DeliveryQuery{IdempotencyKey: "bad-" + to})
		Expect(err).NotTo(HaveOccurred())
		Expect(items).To(BeEmpty())
		Expect(svc.received(ctx, to)).To(HaveLen(1))
		Expect(svc.received(ctx, "evil@example.com")).To(BeEmpty())
	})

	It("creates one delivery and one message for a key repeated on the stream and over HTTP", behaviors.Proves(
		"mail.idempotency.stream-duplicate", "mail.api.create-replayed", "mail.api.create-conflict",
	), func(ctx SpecContext) {
		to := recipient("dup")
		key := "dup/" + to
		cmd := imagePullCommand(key, to, "en", nil)
		for range 3 {
			svc.push(ctx, cmd)
		}
		// One delivery for the key, however often and however it came.
		framework.ExpectDelivery(svc.Pipeline, key, "sent")
		d := svc.deliveryByKey(ctx, key, "sent")

		repeated := harness.DeliveryCommand{
			Source: "notification", PayloadMode: "template", TemplateID: "runtime.image_pull_failed",
			Locale: "en", To: []string{to}, IdempotencyKey: key, RequestedAtMS: time.Now().UnixMilli(),
			TemplateVariables: map[string]any{
				"game_id": "game-1", "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
				"error_message": "manifest unknown", "attempted_at_ms": 1700000000123,
			},
		}
		created, err := svc.api.CreateDelivery(ctx, repeated)
		Expect(err).NotTo(HaveOccurred())
		Expect(created.HTTPStatus).To(Equal(http.StatusOK))
		Expect(created.Replayed).To(BeTrue(), "Idempotency-Replayed: true")
		Expect(created.DeliveryID).To(Equal(d.DeliveryID))
		Expect(created.IdempotencyKey).To(Equal(key))
		Expect(created.Status).To(Equal("sent"))

		other := recipient("other")
		repeated.To = []string{other}
		_, err = svc.api.CreateDelivery(ctx, repeated)
		Expect(harness.StatusOf(err)).To(Equal(http.StatusConflict), "%v", err)
		Expect(harness.ErrorCodeOf(err)).To(Equal("idempotency_conflict"))

		framework.Settle(ctx, svc.Pipeline)
		items, _, err := svc.api.Deliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		Expect(err).NotTo(HaveOccurred())
		Expect(items).To(HaveLen(1))
		Expect(svc.received(ctx, to)).To(HaveLen(1))
		Expect(svc.received(ctx, other)).To(BeEmpty())
	})
})

var _ = describe("SMTP failures", func() {
	It("fails the delivery on a 5xx with the reply recorded, and sends it on an operator resend", behaviors.Proves(
		"mail.smtp.permanent-failed", "mail.resend.new-sequence", "mail.attempts.recorded",
	), func(ctx SpecContext) {
		to := recipient("rejected")
		svc.failRecipients(ctx, 550)
		DeferCleanup(svc.clearChaos, NodeTimeout(10*time.Second))
		svc.push(ctx, imagePullCommand("rej-"+to, to, "en", nil))
		// Sent in the end, by the operator resend.
		framework.ExpectDelivery(svc.Pipeline, "rej-"+to, "sent")

		d := svc.deliveryByKey(ctx, "rej-"+to, "failed")
		Expect(d.ErrorCode).To(Equal("smtp_rejected"))
		Expect(d.ErrorMessage).To(ContainSubstring("550"))
		Expect(d.Attempts).To(HaveLen(1))
		Expect(d.Attempts[0].Attempt).To(Equal(1))
		Expect(d.Attempts[0].Sequence).To(Equal(1))
		Expect(d.Attempts[0].Outcome).To(Equal("permanent_failure"))
		Expect(d.Attempts[0].SMTPCode).To(Equal(550))
		Expect(d.Attempts[0].Error).To(ContainSubstring("550"))
		Expect(d.SentAtMS).To(BeNil())

		svc.clearChaos(ctx)
		resent, settled, err := svc.api.Resend(ctx, d.DeliveryID)
		Expect(err).NotTo(HaveOccurred())
		Expect(settled).To(BeTrue(), "200: the resend's attempt finished within the request")
		Expect(resent.DeliveryID).To(Equal(d.DeliveryID))
		Expect(resent.Sequence).To(Equal(2))
		d = svc.deliveryByKey(ctx, "rej-"+to, "sent")
		Expect(d.Sequence).To(Equal(2))
		Expect(d.Attempts).To(HaveLen(2))
		Expect(d.Attempts[0].Outcome).To(Equal("permanent_failure"), "the first sequence's attempt is kept")
		Expect(d.Attempts[1].Attempt).To(Equal(2))
		Expect(d.Attempts[1].Sequence).To(Equal(2))
		Expect(d.Attempts[1].Outcome).To(Equal("sent"))
		Expect(d.Attempts[1].StartedAtMS).To(BeNumerically(">=", d.Attempts[0].FinishedAtMS))
		framework.Settle(ctx, svc.Pipeline)
		Expect(svc.received(ctx, to)).To(HaveLen(1))
	})

	It("retries while the SMTP server is down and sends exactly once when it is back", behaviors.Proves(
		"mail.smtp.transient-retried", "mail.attempts.recorded", "contract.inflight.mail-counts-deliveries",
	), func(ctx SpecContext) {
		to := recipient("outage")
		Expect(svc.mailpit.Stop()).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			if !svc.mailpit.Process.Running() {
				Expect(svc.mailpit.Start(ctx)).To(Succeed())
			}
		}, NodeTimeout(time.Minute))
		svc.push(ctx, imagePullCommand("outage-"+to, to, "en", nil))
		framework.ExpectDelivery(svc.Pipeline, "outage-"+to, "sent")

		Eventually(ctx, func(g Gomega) {
			d := svc.deliveryByKey(ctx, "outage-"+to, "retrying", "sending", "queued")
			g.Expect(d.Status).To(Equal("retrying"))
			g.Expect(d.ErrorCode).To(Equal("smtp_transient_failure"))
			g.Expect(d.Attempts).NotTo(BeEmpty())
			g.Expect(d.Attempts[0].Outcome).To(Equal("transient_failure"))
			g.Expect(d.Attempts[0].Error).To(ContainSubstring("connection refused"))
			g.Expect(d.Attempts[0].SMTPCode).To(BeZero(), "no server, no reply code")

			// The delivery waits for its retry, and is counted so.
			n := svc.inFlight(ctx, g)
			g.Expect(n.Retrying).To(BeNumerically(">=", 1))
			g.Expect(n.InFlight).To(Equal(n.Queued + n.Sending + n.Retrying))
		}).Should(Succeed())

		Expect(svc.mailpit.Start(ctx)).To(Succeed())
		d := svc.deliveryByKey(ctx, "outage-"+to, "sent")
		for i, a := range d.Attempts {
			Expect(a.Attempt).To(Equal(i + 1))
			Expect(a.Sequence).To(Equal(1))
			Expect(a.FinishedAtMS).To(BeNumerically(">=", a.StartedAtMS))
		}
		Expect(d.Attempts[len(d.Attempts)-1].Outcome).To(Equal("sent"))
		framework.Settle(ctx, svc.Pipeline)
		Expect(svc.received(ctx, to)).To(HaveLen(1))
		// A sent delivery is an outcome, not work in flight.
		Expect(svc.inFlight(ctx, Default)).To(Equal(harness.MailInFlight{}))
	})

	// The area's Mail spends its four attempts within a second: a Mail of
	// the spec's own, on the same Mailpit, retries for long enough that the
	// server is seen to accept again between two attempts on a loaded
	// machine too.
	It("retries a 4xx reply and sends exactly once when the server accepts again", behaviors.Proves(
		"mail.smtp.transient-retried", "mail.attempts.recorded",
	), func(ctx SpecContext) {
		mail := harness.StartPipeline(ctx, GinkgoT(), framework.Infra(), harness.PipelineOptions{
			Services: []string{"mail"},
			SMTPAddr: svc.mailpit.SMTPAddr,
			Env: map[string]map[string]string{"mail": {
				"MAIL_TEMPLATE_DIR":         svc.templates,
				"MAIL_RETRY_BACKOFF_MIN":    "1s",
				"MAIL_RETRY_BACKOFF_MAX":    "2s",
				"MAIL_MAX_ATTEMPTS":         "10",
				"MAIL_SENDER_POLL_INTERVAL": "50ms",
			}},
		})
		framework.ReportOnFailure(framework.SpecPipeline("greylisting mail", mail))
		api := mail.MailClient()
		to := recipient("greylisted")
		key := "greylist-" + to
		svc.failRecipients(ctx, 451)
		DeferCleanup(svc.clearChaos, NodeTimeout(10*time.Second))
		_, err := mail.Publish(ctx, mail.Streams.MailCommands, imagePullCommand(key, to, "en", nil))
		Expect(err).NotTo(HaveOccurred())

		By("the 451 leaving the delivery retrying")
		var id string
		Eventually(ctx, func(g Gomega) {
			items, err := api.AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(items).To(HaveLen(1))
			id = items[0].DeliveryID
			d, err := api.Delivery(ctx, id)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(d.Status).To(Equal("retrying"))
			g.Expect(d.ErrorCode).To(Equal("smtp_transient_failure"))
			g.Expect(d.Attempts).NotTo(BeEmpty())
			g.Expect(d.Attempts[0].Outcome).To(Equal("transient_failure"))
			g.Expect(d.Attempts[0].SMTPCode).To(Equal(451))
		}).Should(Succeed())
		Expect(svc.received(ctx, to)).To(BeEmpty())

		By("the server accepting again")
		svc.clearChaos(ctx)
		var d harness.Delivery
		Eventually(ctx, func(g Gomega) {
			var err error
			d, err = api.Delivery(ctx, id)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(d.Status).To(Equal("sent"))
		}).Should(Succeed())
		Expect(len(d.Attempts)).To(BeNumerically(">=", 2))
		for i, a := range d.Attempts {
			Expect(a.Attempt).To(Equal(i + 1))
			Expect(a.Sequence).To(Equal(1))
			if i < len(d.Attempts)-1 {
				Expect(a.Outcome).To(Equal("transient_failure"), "attempt %d", a.Attempt)
				Expect(a.SMTPCode).To(Equal(451), "attempt %d", a.Attempt)
			}
		}
		Expect(d.Attempts[len(d.Attempts)-1].Outcome).To(Equal("sent"))
		// Once the spec's Mail has nothing in flight, nothing more can
		// reach the server.
		framework.Settle(ctx, mail)
		Expect(svc.received(ctx, to)).To(HaveLen(1))
	})

	// A 4xx is retried: every attempt of the budget is made, each a
	// transient failure, before the delivery fails.
	It("fails with attempts_exhausted after a 4xx on every attempt", behaviors.Proves(
		"mail.smtp.transient-exhausted", "mail.smtp.transient-retried", "mail.attempts.recorded",
	), func(ctx SpecContext) {
		to := recipient("deferred")
		svc.failRecipients(ctx, 451)
		DeferCleanup(svc.clearChaos, NodeTimeout(10*time.Second))
		svc.push(ctx, imagePullCommand("def-"+to, to, "en", nil))
		framework.ExpectDelivery(svc.Pipeline, "def-"+to, "failed")

		d := svc.deliveryByKey(ctx, "def-"+to, "failed")
		Expect(d.ErrorCode).To(Equal("attempts_exhausted"))
		Expect(d.Attempts).To(HaveLen(4), "MAIL_MAX_ATTEMPTS")
		for i, a := range d.Attempts {
			Expect(a.Attempt).To(Equal(i + 1))
			Expect(a.Sequence).To(Equal(1))
			Expect(a.Outcome).To(Equal("transient_failure"))
			Expect(a.SMTPCode).To(Equal(451))
			Expect(a.Error).To(ContainSubstring("451"))
		}
		Expect(strings.Contains(d.ErrorMessage, "451")).To(BeTrue(), d.ErrorMessage)
		// A failed delivery is an outcome, not work in flight.
		framework.Settle(ctx, svc.Pipeline)
		Expect(svc.inFlight(ctx, Default)).To(Equal(harness.MailInFlight{}))
	})
})
