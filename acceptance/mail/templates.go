package mail

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
)

var _ = describe("templates and locales", func() {
	It("renders a template added at run time from the exact locale, then the language, then the default", behaviors.Proves(
		"mail.template.added-at-run-time", "mail.locale.exact", "mail.locale.language",
		"mail.locale.default", "mail.command.locale-canonical",
		"mail.render.subject-template-whitespace",
	), func(ctx SpecContext) {
		// Each locale's template says which it is, so every part of
		// the message shows which step of the chain was taken. The
		// subject's own CR, LF, tab and spaces become single spaces.
		templateID := "acceptance.locales-" + harness.UniqueSuffix()
		for _, locale := range []string{"en", "fr", "fr-CA"} {
			svc.addTemplate(templateID, locale,
				"Locale "+locale+":\r\n\t{{.name}}   probe\n",
				"Text "+locale+" {{.name}}\n",
				"<p>HTML "+locale+" {{.name}}</p>\n")
		}

		for _, c := range []struct{ requested, stored, resolved string }{
			{"fr-ca", "fr-CA", "fr-CA"}, // exact, in canonical form
			{"fr-BE", "fr-BE", "fr"},    // the language
			{"de-AT", "de-AT", "en"},    // MAIL_DEFAULT_LOCALE
		} {
			to := recipient("locale")
			key := "locale/" + to
			svc.push(ctx, templateCommand(key, to, templateID, c.requested, map[string]any{"name": "Zoë"}))
			framework.ExpectDelivery(svc.Pipeline, key, "sent")

			d := svc.deliveryByKey(ctx, key, "sent")
			Expect(d.TemplateID).To(Equal(templateID))
			Expect(d.Locale).To(Equal(c.stored), "requested %s", c.requested)
			Expect(d.ResolvedLocale).To(Equal(c.resolved), "requested %s", c.requested)
			Expect(d.Subject).To(Equal("Locale " + c.resolved + ": Zoë probe"))
			Expect(d.TextBody).To(Equal("Text " + c.resolved + " Zoë\n"))
			Expect(d.HTMLBody).To(Equal("<p>HTML " + c.resolved + " Zoë</p>\n"))

			var msgs []harness.MailpitFullMessage
			Eventually(ctx, func() []harness.MailpitFullMessage { msgs = svc.received(ctx, to); return msgs }).Should(HaveLen(1))
			Expect(msgs[0].Subject).To(Equal(d.Subject))
		}
	})

	It("fails with template_not_found when no locale of the chain has the template", behaviors.Proves(
		"mail.template.not-found", "mail.locale.language",
	), func(ctx SpecContext) {
		templateID := "acceptance.german-" + harness.UniqueSuffix()
		svc.addTemplate(templateID, "de", "Deutsch {{.name}}", "Text {{.name}}\n", "<p>{{.name}}</p>\n")

		missing, found := recipient("missing"), recipient("found")
		svc.push(ctx, templateCommand("missing/"+missing, missing, templateID, "fr-CA", map[string]any{"name": "Zoë"}))
		svc.push(ctx, templateCommand("found/"+found, found, templateID, "de-CH", map[string]any{"name": "Zoë"}))
		framework.ExpectDelivery(svc.Pipeline, "missing/"+missing, "failed")
		framework.ExpectDelivery(svc.Pipeline, "found/"+found, "sent")

		d := svc.deliveryByKey(ctx, "missing/"+missing, "failed")
		Expect(d.ErrorCode).To(Equal("template_not_found"))
		Expect(d.ErrorMessage).To(ContainSubstring("fr-CA, fr, en"), "the chain that was tried")
		d = svc.deliveryByKey(ctx, "found/"+found, "sent")
		Expect(d.ResolvedLocale).To(Equal("de"))
		Expect(d.Subject).To(Equal("Deutsch Zoë"))

		framework.Settle(ctx, svc.Pipeline)
		Expect(svc.received(ctx, missing)).To(BeEmpty())
		Expect(svc.received(ctx, found)).To(HaveLen(1))
	})

	It("shows subject variables as they are when printable and quoted otherwise, and no variable opens a header", behaviors.Proves(
		"mail.render.subject-variable-shown", "mail.render.subject-header-safe",
		"mail.render.html-escaped", "mail.render.text-literal", "contract.admin-mail.html-escaped",
	), func(ctx SpecContext) {
		to, evil := recipient("subject"), recipient("evil")
		markup := "<i>game</i> & co"
		injected := "image_pull_failed\r\nBcc: " + evil
		vars := map[string]any{
			"game_id": markup, "image_ref": "galaxy/missing:0.0.0", "error_code": injected,
			"error_message": "manifest unknown", "attempted_at_ms": 1700000000123,
		}
		svc.push(ctx, imagePullCommand("subject/"+to, to, "en", vars))
		framework.ExpectDelivery(svc.Pipeline, "subject/"+to, "sent")
		long := strings.Repeat("a", 300)
		longTo := recipient("long")
		vars = map[string]any{
			"game_id": long, "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
			"error_message": "manifest unknown", "attempted_at_ms": 1700000000123,
		}
		svc.push(ctx, imagePullCommand("subject/"+longTo, longTo, "en", vars))
		framework.ExpectDelivery(svc.Pipeline, "subject/"+longTo, "sent")

		// Printable markup as it is; CR/LF quoted in Go syntax.
		d := svc.deliveryByKey(ctx, "subject/"+to, "sent")
		want := `[Galaxy] Game <i>game</i> & co: image pull failed ("image_pull_failed\r\nBcc: ` + evil + `")`
		Expect(d.Subject).To(Equal(want))
		// The bodies show the variables as sent: literal in text,
		// escaped in HTML.
		Expect(d.TextBody).To(ContainSubstring("\nGame: <i>game</i> & co\n"))
		Expect(d.TextBody).To(ContainSubstring("\nError code: " + injected + "\n"))
		Expect(d.HTMLBody).To(ContainSubstring("<code>&lt;i&gt;game&lt;/i&gt; &amp; co</code>"))
		Expect(d.HTMLBody).NotTo(ContainSubstring("<i>game"))

		var msgs []harness.MailpitFullMessage
		Eventually(ctx, func() []harness.MailpitFullMessage { msgs = svc.received(ctx, to); return msgs }).Should(HaveLen(1))
		Expect(msgs[0].Subject).To(Equal(want))
		Expect(msgs[0].To).To(HaveExactElements(HaveField("Address", to)))
		Expect(msgs[0].Cc).To(BeEmpty())
		Expect(msgs[0].Bcc).To(BeEmpty())
		headers, err := svc.smtp.Headers(ctx, msgs[0].ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(headers).NotTo(HaveKey("Bcc"))
		Expect(headers["Subject"]).To(HaveLen(1))

		// Over 256 bytes: quoted, cut to 256 with the real length.
		d = svc.deliveryByKey(ctx, "subject/"+longTo, "sent")
		shown := `"` + strings.Repeat("a", 239) + `"… (300 bytes)`
		Expect(shown).To(HaveLen(256))
		Expect(d.Subject).To(Equal("[Galaxy] Game " + shown + ": image pull failed (image_pull_failed)"))
		Expect(d.TextBody).To(ContainSubstring("\nGame: " + long + "\n"))

		framework.Settle(ctx, svc.Pipeline)
		Expect(svc.received(ctx, evil)).To(BeEmpty())
	})
})
