package hostileinput

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// The limits of docs/contracts.md ("Limits") these specs probe.
const (
	// payloadLimit is Notification's payload_json limit.
	payloadLimit = 64 << 10
	// shownImageRefLimit bounds image_ref as a failed job's result and
	// intent show it.
	shownImageRefLimit = 1024
)

// configInvalidSubject is the English subject of a start_config_invalid
// mail about the game shown as shownGameID.
func configInvalidSubject(shownGameID string) string {
	return "[Galaxy] Game " + shownGameID + ": start configuration failed (start_config_invalid)"
}

// intentsShowing returns the intents whose payload names the game as any of
// ids (its raw and its shown form, so a spec sees the intent whichever the
// producer wrote).
func intentsShowing(ctx context.Context, g Gomega, p *harness.Pipeline, ids ...string) []harness.Intent {
	var out []harness.Intent
	seen := map[string]bool{}
	for _, id := range ids {
		found, err := p.IntentsForGame(ctx, id)
		g.Expect(err).NotTo(HaveOccurred())
		for _, in := range found {
			if !seen[in.EntryID] {
				seen[in.EntryID] = true
				out = append(out, in)
			}
		}
	}
	return out
}

// sentDelivery waits for the one delivery with idempotency key key to be
// sent and returns its detail. It stops at once when the delivery failed,
// when Notification rejected or dead-lettered the intent, or when Mail
// dead-lettered the command: the value was then accepted upstream and lost
// downstream.
func sentDelivery(ctx context.Context, p *harness.Pipeline, intentID, key string) harness.Delivery {
	GinkgoHelper()
	var detail harness.Delivery
	Eventually(ctx, func(g Gomega) {
		n, err := p.NotificationClient().Notification(ctx, intentID)
		if err == nil && (n.Status == "rejected" || n.Status == "dead") {
			reason := ""
			if n.Reason != nil {
				reason = *n.Reason
			}
			StopTrying(fmt.Sprintf("Notification recorded the intent %s: %s", n.Status, reason)).Now()
		}
		if dead := deadCommandWithKey(ctx, g, p, key); dead != nil {
			StopTrying(fmt.Sprintf("Mail dead-lettered the mail command: %v", dead["dead_error"])).Now()
		}
		items, err := p.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(items).To(HaveLen(1), "deliveries with key %s", key)
		if items[0].Status == "failed" {
			d, _ := p.MailClient().Delivery(ctx, items[0].DeliveryID)
			StopTrying(fmt.Sprintf("Mail failed the delivery: %s: %s", d.ErrorCode, d.ErrorMessage)).Now()
		}
		g.Expect(items[0].Status).To(Equal("sent"))
		detail, err = p.MailClient().Delivery(ctx, items[0].DeliveryID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(detail.IdempotencyKey).To(Equal(key))
	}).Should(Succeed())
	return detail
}

// deadCommandWithKey returns the dead letter of the mail command with
// idempotency key key, or nil.
func deadCommandWithKey(ctx context.Context, g Gomega, p *harness.Pipeline, key string) map[string]any {
	entries, err := p.Redis.XRange(ctx, p.Streams.MailCommands+":dead", "-", "+").Result()
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		if e.Values["idempotency_key"] == key {
			return e.Values
		}
	}
	return nil
}

// line returns the value of the line "<label>: value" of a text body.
func line(body, label string) string {
	GinkgoHelper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `: (.*)$`).FindStringSubmatch(body)
	Expect(m).NotTo(BeNil(), "no line %q in the body:\n%s", label, body)
	return m[1]
}

// expectOneAdminMail waits for the one start_config_invalid intent naming the
// game as rawGameID or shownGameID, then its one sent mail to the config
// admin, and returns the intent and the mail. Once the pipeline has settled
// it checks that nothing more came of the job.
func expectOneAdminMail(ctx context.Context, rawGameID, shownGameID string) (harness.Intent, harness.Delivery) {
	GinkgoHelper()
	var intent harness.Intent
	Eventually(ctx, func(g Gomega) {
		found := intentsShowing(ctx, g, pipeline, rawGameID, shownGameID)
		g.Expect(found).To(HaveLen(1))
		intent = found[0]
	}).Should(Succeed())
	Expect(intent.NotificationType).To(Equal("runtime.start_config_invalid"))
	framework.ExpectFailedStart(pipeline, shownGameID, "start_config_invalid")
	key := harness.AdminRouteKey(intent.EntryID, configAdmin)
	d := sentDelivery(ctx, pipeline, intent.EntryID, key)

	framework.Settle(ctx, pipeline)
	Expect(intentsShowing(ctx, Default, pipeline, rawGameID, shownGameID)).To(HaveLen(1))
	Expect(deliveries(ctx, Default, harness.DeliveryQuery{IdempotencyKey: key})).To(HaveLen(1))
	return intent, d
}

var _ = describe("values at the limits", func() {
	It("mails the admins once about a start job whose image_ref is tens of KiB, naming it quoted and cut short", Label(speclabel.Notification, speclabel.Mail), behaviors.Proves(
		"mail.render.text-literal", "mail.render.html-escaped",
	), func(ctx SpecContext) {
		gameID := harness.UniqueName("game")
		imageRef := "galaxy/" + strings.Repeat("a", 40<<10) + ":1"
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": imageRef})
		Expect(err).NotTo(HaveOccurred())

		intent, d := expectOneAdminMail(ctx, gameID, gameID)
		// The value quoted, cut to the limit, with its real length.
		shown := regexp.MustCompile(`^"galaxy/a+"… \(` + strconv.Itoa(len(imageRef)) + ` bytes\)$`)
		Expect(intent.Payload["image_ref"]).To(MatchRegexp(shown.String()))
		shownRef := intent.Payload["image_ref"].(string)
		Expect(len(shownRef)).To(BeNumerically("<=", shownImageRefLimit))
		Expect(len(intent.Fields["payload_json"])).To(BeNumerically("<=", payloadLimit))

		Expect(d.Subject).To(Equal(configInvalidSubject(gameID)))
		Expect(line(d.TextBody, "Game")).To(Equal(gameID))
		Expect(line(d.TextBody, "Image")).To(Equal(shownRef))
		msg := line(d.TextBody, "Error message")
		Expect(msg).To(HavePrefix(`image_ref: `))
		Expect(msg).To(ContainSubstring(`"galaxy/aaaa`))
		Expect(msg).To(ContainSubstring(fmt.Sprintf("(%d bytes)", len(imageRef))))
		Expect(len(msg)).To(BeNumerically("<", 4<<10))
		Expect(d.HTMLBody).To(ContainSubstring("<code>" + html.EscapeString(shownRef) + "</code>"))
	})

	DescribeTable("mails the admins once about a start job whose game_id carries a control character, naming it quoted",
		Label(speclabel.Notification, speclabel.Mail),
		behaviors.Proves("rtm.failure.config-invalid-names-field", "mail.render.subject-variable-shown",
			"mail.render.text-literal", "mail.render.html-escaped"),
		func(ctx SpecContext, char string) {
			gameID := harness.UniqueName("game") + char + "x"
			shownID := strconv.Quote(gameID)
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": "galaxy/x:1"})
			Expect(err).NotTo(HaveOccurred())

			intent, d := expectOneAdminMail(ctx, gameID, shownID)
			Expect(intent.Payload["game_id"]).To(Equal(shownID))
			Expect(intent.Payload["error_message"]).To(HavePrefix("game_id: " + shownID + " does not match "))

			Expect(d.Subject).To(Equal(configInvalidSubject(shownID)))
			Expect(line(d.TextBody, "Game")).To(Equal(shownID))
			Expect(line(d.TextBody, "Error message")).To(HavePrefix("game_id: " + shownID + " does not match "))
			Expect(d.HTMLBody).To(ContainSubstring("<code>" + html.EscapeString(shownID) + "</code>"))

			results, err := pipeline.JobResultsForGame(ctx, shownID)
			Expect(err).NotTo(HaveOccurred())
			Expect(results).To(ConsistOf(And(
				HaveKeyWithValue("outcome", "failed"),
				HaveKeyWithValue("error_code", "start_config_invalid"),
			)))
		},
		Entry("SOH (U+0001)", "\x01"),
		Entry("ESC (U+001B)", "\x1b"),
		Entry("DEL (U+007F)", "\x7f"),
		Entry("LINE SEPARATOR (U+2028)", "\u2028"),
	)

	DescribeTable("mails a user whose locale is at the User Service's limit, or the User Service refuses it",
		Label(speclabel.Notification, speclabel.Mail),
		behaviors.Proves("user.locale.limit", "notification.mail-command.user-locale", "mail.locale.language"),
		func(ctx SpecContext, locale string, size int) {
			Expect(locale).To(HaveLen(size))
			u := validUser()
			u.Locale = locale
			created, err := pipeline.UserClient().Create(ctx, u)
			Expect(err).NotTo(HaveOccurred())
			Expect(created.Locale).To(HaveLen(size))

			gameID := harness.UniqueName("game")
			d := mailUser(ctx, created.UserID, fmt.Sprintf(`{"game_id":%q}`, gameID))
			Expect(d.Locale).To(Equal(created.Locale))
			Expect(d.ResolvedLocale).To(Equal("en"))
			Expect(d.Subject).To(Equal("Your Galaxy game " + gameID + " is starting"))
		},
		Entry("35 bytes", "en-GB-x-aaaaaaaa-bbbbbbbb-ccccccc-d", 35),
		Entry("64 bytes", "en-GB-x-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee-ffffffff-ab", 64),
	)

	It("refuses a locale over the limit at the User Service, naming the field", Label(speclabel.Notification), behaviors.Proves(
		"user.locale.limit",
	), func(ctx SpecContext) {
		u := asMap(validUser())
		u["locale"] = "en-GB-x-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee-ffffffff-abc"
		expect400(postRaw(ctx, "userservice", pipeline.UserURL+usersPath, pipeline.Tokens.User, encode(u)), "locale")
		expectCreated(ctx)
	})

	It("mails a user whose display name is all <&> with a payload at Notification's limit", Label(speclabel.Notification, speclabel.Mail), behaviors.Proves(
		"user.create.stored", "notification.mail-command.payload-variables",
		"mail.render.text-literal", "mail.render.html-escaped",
	), func(ctx SpecContext) {
		name := strings.Repeat("<&>", 66) + "<&"
		u := validUser()
		u.DisplayName = name
		created, err := pipeline.UserClient().Create(ctx, u)
		Expect(err).NotTo(HaveOccurred())
		Expect(created.DisplayName).To(Equal(name))

		gameID := harness.UniqueName("game")
		head := fmt.Sprintf(`{"game_id":%q,"game_name":"`, gameID)
		filler := strings.Repeat("<&>", payloadLimit)[:payloadLimit-len(head)-2]
		payload := head + filler + `"}`
		Expect(payload).To(HaveLen(payloadLimit))

		d := mailUser(ctx, created.UserID, payload)
		Expect(d.TemplateVariables).To(HaveKeyWithValue("user_display_name", name))
		Expect(d.TemplateVariables).To(HaveKeyWithValue("game_name", filler))
		Expect(d.TextBody).To(HavePrefix("Hello " + name + ",\n"))
		Expect(d.HTMLBody).To(ContainSubstring("<p>Hello " + html.EscapeString(name) + ",</p>"))
		Expect(d.HTMLBody).To(ContainSubstring("<strong>" + html.EscapeString(filler) + "</strong>"))
	})

	It("mails an admin whose address is 254 bytes long", Label(speclabel.Notification, speclabel.Mail, speclabel.Hermetic), behaviors.Proves(
		"notification.mail-command.template-mode",
	), func(ctx SpecContext) {
		// RFC 5321's longest path: a 64-byte local part and a domain of
		// labels up to 63 bytes, 254 bytes in all.
		local := harness.UniqueName("a")
		local += strings.Repeat("x", 64-len(local))
		domain := strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 49) + ".example.com"
		long := local + "@" + domain
		Expect(long).To(HaveLen(254))
		p := framework.Pipeline(ctx, "long admin address", harness.PipelineOptions{
			AdminEmails: map[string]string{"runtime.image_pull_failed": long},
			Services:    []string{"userservice", "mail", "notification"},
		})

		id := publishTo(ctx, p, p.Streams.Intents, adminIntent(harness.UniqueName("game"), "pull failed"))
		d := sentDelivery(ctx, p, id, harness.AdminRouteKey(id, long))
		Expect(d.Source).To(Equal("notification"))
		Expect(d.PayloadMode).To(Equal("template"))
		Expect(d.TemplateID).To(Equal("runtime.image_pull_failed"))
		Expect(d.To).To(Equal([]string{long}))
	})
})

// mailUser publishes a lobby.game_starting intent with payload for userID
// and returns its one sent delivery.
func mailUser(ctx context.Context, userID, payload string) harness.Delivery {
	GinkgoHelper()
	user, err := pipeline.UserClient().Get(ctx, userID)
	Expect(err).NotTo(HaveOccurred())
	var vars struct {
		GameID string `json:"game_id"`
	}
	Expect(json.Unmarshal([]byte(payload), &vars)).To(Succeed())
	framework.ExpectForGame(pipeline, vars.GameID, harness.Effects{
		Mails: []string{harness.MailLine("lobby.game_starting", user.Email, "sent")},
	})
	id := publish(ctx, pipeline.Streams.Intents, map[string]string{
		"notification_type": "lobby.game_starting",
		"producer":          "acceptance",
		"audience_kind":     "user",
		"audience_json":     fmt.Sprintf(`{"user_ids":[%q]}`, userID),
		"payload_json":      payload,
		"occurred_at_ms":    fmt.Sprint(time.Now().UnixMilli()),
	})
	d := sentDelivery(ctx, pipeline, id, "notification:"+id+"/email:user:"+userID)
	Expect(d.TemplateID).To(Equal("lobby.game_starting"))
	return d
}

// publishTo adds an entry to stream on p's Redis.
func publishTo(ctx context.Context, p *harness.Pipeline, stream string, fields map[string]string) string {
	GinkgoHelper()
	id, err := p.Publish(ctx, stream, fields)
	Expect(err).NotTo(HaveOccurred())
	return id
}
