package notificationmail

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = describe("a user's mail, rendered", Label(speclabel.Mail), func() {
	It("reaches a fr-CA user from the fr template, markup escaped in the HTML part only", behaviors.Proves(
		"mail.locale.language", "mail.render.html-escaped", "mail.render.text-literal",
		"mail.render.subject-variable-shown", "mail.stub.kept-and-sent",
		"notification.mail-command.payload-variables", "notification.mail-command.user-locale",
	), func(ctx SpecContext) {
		user := harness.UniqueName("zoe")
		name := `Zoé <b>&</b> "Q"`
		svc.createUser(ctx, harness.NewUser{UserID: user, Email: user + "@example.com", DisplayName: name, Locale: "fr-CA"})

		// Markup in the payload too, and a user_display_name of the
		// producer's own, which the user's name replaces.
		raw := harness.UniqueName("game")
		gameID := "<i>" + raw + "</i>"
		gameName := "<script>alert(1)</script> & co"
		payload, err := json.Marshal(map[string]string{"game_id": gameID, "game_name": gameName, "user_display_name": "Mallory"})
		Expect(err).NotTo(HaveOccurred())
		intent := userIntent("", user)
		intent["payload_json"] = string(payload)
		intentID := svc.publish(ctx, intent)
		framework.ExpectForGame(svc.Pipeline, gameID, harness.Effects{Mails: lobbyMails(user)})
		key := "notification:" + intentID + "/email:user:" + user

		var d harness.Delivery
		Eventually(ctx, func(g Gomega) {
			items := svc.deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: key})
			g.Expect(items).To(HaveLen(1))
			g.Expect(items[0].Status).To(Equal("sent"))
			d = svc.delivery(ctx, g, items[0].DeliveryID)
		}).Should(Succeed())

		Expect(d.Locale).To(Equal("fr-CA"))
		Expect(d.ResolvedLocale).To(Equal("fr"), "no fr-CA template: its language's")
		Expect(d.TemplateVariables).To(Equal(map[string]any{"game_id": gameID, "game_name": gameName, "user_display_name": name}))
		Expect(d.Attempts).To(HaveLen(1))
		Expect(d.Attempts[0].Outcome).To(Equal("sent"))
		Expect(d.SentAtMS).NotTo(BeNil())

		// The subject shows a printable variable as it is.
		Expect(d.Subject).To(Equal("Votre partie Galaxy " + gameID + " démarre"))
		// The text part shows the variables as sent.
		Expect(d.TextBody).To(HavePrefix("Bonjour " + name + ",\n\nVotre partie " + gameID + " démarre maintenant."))
		Expect(d.TextBody).To(ContainSubstring("\n" + gameName + "\n"))
		// The HTML part escapes them.
		Expect(d.HTMLBody).To(ContainSubstring("<title>Votre partie Galaxy &lt;i&gt;" + raw + "&lt;/i&gt; démarre</title>"))
		Expect(d.HTMLBody).To(ContainSubstring("<p>Bonjour Zoé &lt;b&gt;&amp;&lt;/b&gt; &#34;Q&#34;,</p>"))
		Expect(d.HTMLBody).To(ContainSubstring("<p>Votre partie &lt;i&gt;" + raw + "&lt;/i&gt; démarre maintenant."))
		Expect(d.HTMLBody).To(ContainSubstring("<p><strong>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</strong></p>"))
		for _, markup := range []string{"<b>", "<i>", "<script>"} {
			Expect(d.HTMLBody).NotTo(ContainSubstring(markup))
		}

		Eventually(ctx, func(g Gomega) {
			n := svc.record(ctx, g, intentID)
			g.Expect(n.Status).To(Equal("routed"))
			g.Expect(n.Routes).To(HaveLen(1))
			g.Expect(n.Routes[0].Locale).To(HaveValue(Equal("fr-CA")))
		}).Should(Succeed())
	})
})
