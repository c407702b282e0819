package hostileinput

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// validMailCommand is a rendered-mode command to a recipient of its own.
func validMailCommand() map[string]string {
	return map[string]string{
		"source":          "acceptance",
		"payload_mode":    "rendered",
		"subject":         "Hello",
		"text_body":       "Hello there",
		"to_json":         fmt.Sprintf(`[%q]`, harness.UniqueName("to")+"@example.com"),
		"idempotency_key": harness.UniqueName("key"),
		"requested_at_ms": fmt.Sprint(time.Now().UnixMilli()),
	}
}

func publish(ctx context.Context, stream string, fields map[string]string) string {
	GinkgoHelper()
	id, err := pipeline.Publish(ctx, stream, fields)
	Expect(err).NotTo(HaveOccurred())
	return id
}

// publishAdminIntent publishes a valid admin intent and tells the run's
// ledger of the one mail to the type's admin list it is to produce.
func publishAdminIntent(ctx context.Context, intent map[string]string) string {
	GinkgoHelper()
	id := publish(ctx, pipeline.Streams.Intents, intent)
	var payload struct {
		GameID string `json:"game_id"`
	}
	Expect(json.Unmarshal([]byte(intent["payload_json"]), &payload)).To(Succeed())
	framework.ExpectForGame(pipeline, payload.GameID, harness.Effects{
		Mails: framework.AdminMails(framework.AdminEmails(), intent["notification_type"]),
	})
	return id
}

// deadLetterOf returns the dead-letter entry of the entry id of stream. It
// reads only from id's millisecond on — the dead letter was added after its
// source, by the same server clock, though its sequence number in that
// millisecond may be lower — since on a deployment the dead-letter stream
// holds others' entries too.
func deadLetterOf(ctx context.Context, g Gomega, stream, id string) map[string]any {
	ms, _, _ := strings.Cut(id, "-")
	entries, err := pipeline.Redis.XRange(ctx, stream+":dead", ms+"-0", "+").Result()
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		if e.Values["dead_source_id"] == id {
			return e.Values
		}
	}
	return nil
}

// deliveries returns Mail's deliveries matching q (all pages).
func deliveries(ctx context.Context, g Gomega, q harness.DeliveryQuery) []harness.Delivery {
	items, err := pipeline.MailClient().AllDeliveries(ctx, q)
	g.Expect(err).NotTo(HaveOccurred())
	return items
}

// expectMailSent waits until the command's delivery is sent.
func expectMailSent(ctx context.Context, cmd map[string]string) {
	GinkgoHelper()
	Eventually(ctx, func(g Gomega) {
		items := deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: cmd["idempotency_key"]})
		g.Expect(items).To(HaveLen(1))
		g.Expect(items[0].Status).To(Equal("sent"))
	}).Should(Succeed())
}

var _ = describe("the mail command stream", Label(speclabel.Mail), func() {
	DescribeTable("dead-letters a malformed command with the field named, and the next command flows",
		behaviors.Proves("mail.stream.malformed-dead-lettered"),
		func(ctx SpecContext, spoil func(map[string]string), field string) {
			bad := validMailCommand()
			spoil(bad)
			badID := publish(ctx, pipeline.Streams.MailCommands, bad)
			good := validMailCommand()
			publish(ctx, pipeline.Streams.MailCommands, good)

			Eventually(ctx, func(g Gomega) {
				dead := deadLetterOf(ctx, g, pipeline.Streams.MailCommands, badID)
				g.Expect(dead).NotTo(BeNil())
				g.Expect(dead["dead_error"]).To(ContainSubstring(field))
			}).Should(Succeed())
			expectMailSent(ctx, good)
			items, err := pipeline.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: bad["idempotency_key"]})
			Expect(err).NotTo(HaveOccurred())
			Expect(items).To(BeEmpty())
		},
		Entry("a missing recipient list", func(c map[string]string) { delete(c, "to_json") }, "to_json"),
		Entry("recipients of the wrong type", func(c map[string]string) { c["to_json"] = `"a@example.com"` }, "to_json"),
		Entry("an unknown field", func(c map[string]string) { c["colour"] = "red" }, "colour"),
		Entry("CR/LF smuggling a header into an address", behaviors.Proves("mail.command.control-characters-refused"), func(c map[string]string) {
			c["to_json"] = `["victim@example.com\r\nBcc: all@example.com"]`
		}, "to_json"),
		Entry("CR/LF smuggling a header into the subject", behaviors.Proves("mail.command.control-characters-refused"), func(c map[string]string) {
			c["subject"] = "Hello\r\nBcc: all@example.com"
		}, "subject"),
		Entry("invalid UTF-8 in the subject", func(c map[string]string) { c["subject"] = "caf\xe9" }, "subject"),
		Entry("an oversized body", func(c map[string]string) { c["text_body"] = strings.Repeat("x", 600<<10) }, "text_body"),
		Entry("a timestamp that is not a number", func(c map[string]string) { c["requested_at_ms"] = "soon" }, "requested_at_ms"),
	)
})

// adminIntent is a valid admin intent whose payload carries errorMessage.
func adminIntent(gameID, errorMessage string) map[string]string {
	payload, _ := json.Marshal(map[string]any{
		"game_id": gameID, "image_ref": "galaxy/x:1", "error_code": "image_pull_failed",
		"error_message": errorMessage, "attempted_at_ms": time.Now().UnixMilli(),
	})
	return map[string]string{
		"notification_type": "runtime.image_pull_failed",
		"producer":          "runtime_manager",
		"audience_kind":     "admin_email",
		"payload_json":      string(payload),
		"occurred_at_ms":    fmt.Sprint(time.Now().UnixMilli()),
	}
}

var _ = describe("the intent stream", Label(speclabel.Notification), func() {
	DescribeTable("records a malformed intent rejected with the field named, and the next intent is mailed",
		behaviors.Proves("notification.intent.rejected-names-field", "notification.intent.rejected-does-not-block"),
		func(ctx SpecContext, spoil func(map[string]string), field string) {
			bad := adminIntent(harness.UniqueName("game"), "pull failed")
			spoil(bad)
			badID := publish(ctx, pipeline.Streams.Intents, bad)
			goodID := publishAdminIntent(ctx, adminIntent(harness.UniqueName("game"), "pull failed"))

			Eventually(ctx, func(g Gomega) {
				n, err := pipeline.NotificationClient().Notification(ctx, badID)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(n.IntentEntryID).To(Equal(badID))
				g.Expect(n.Status).To(Equal("rejected"))
				g.Expect(n.Reason).NotTo(BeNil())
				g.Expect(*n.Reason).To(HavePrefix(field + ": "))
				g.Expect(n.Routes).To(BeEmpty())
			}).Should(Succeed())
			Eventually(ctx, func(g Gomega) {
				items := deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(goodID, admin), Status: "sent"})
				g.Expect(items).To(HaveLen(1))
			}).Should(Succeed())
		},
		Entry("a payload that is not an object", func(i map[string]string) { i["payload_json"] = "[1,2]" }, "payload_json"),
		Entry("an unknown audience", func(i map[string]string) { i["audience_kind"] = "everyone" }, "audience_kind"),
		Entry("a missing producer", func(i map[string]string) { delete(i, "producer") }, "producer"),
		Entry("invalid UTF-8 in the type", func(i map[string]string) { i["notification_type"] = "runtime.\xff" }, "notification_type"),
		Entry("a user audience without users", func(i map[string]string) {
			i["audience_kind"] = "user"
			i["audience_json"] = `{"user_ids":[]}`
		}, "audience_json"),
	)

	It("escapes HTML in template variables and keeps them verbatim on the delivery", behaviors.Proves(
		"mail.render.html-escaped", "mail.render.text-literal",
	), func(ctx SpecContext) {
		hostile := `<script>alert("x")</script> & <b>bold</b>`
		id := publishAdminIntent(ctx, adminIntent(harness.UniqueName("game"), hostile))
		var detail harness.Delivery
		Eventually(ctx, func(g Gomega) {
			items := deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(id, admin), Status: "sent"})
			g.Expect(items).To(HaveLen(1))
			var err error
			detail, err = pipeline.MailClient().Delivery(ctx, items[0].DeliveryID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(detail.DeliveryID).To(Equal(items[0].DeliveryID))
		}).Should(Succeed())
		Expect(detail.TemplateVariables).To(HaveKeyWithValue("error_message", hostile))
		Expect(detail.TextBody).To(ContainSubstring("\nError message: " + hostile + "\n"))
		Expect(detail.HTMLBody).To(ContainSubstring(`<pre style="white-space: pre-wrap; margin: 0;">` +
			`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;</pre>`))
		Expect(detail.HTMLBody).NotTo(ContainSubstring("<script>"))
		Expect(detail.HTMLBody).NotTo(ContainSubstring("<b>bold"))
	})

	It("routes and mails an intent with a field the contract does not name", behaviors.Proves(
		"notification.intent.unknown-field-ignored",
	), func(ctx SpecContext) {
		intent := adminIntent(harness.UniqueName("game"), "pull failed")
		intent["colour"] = "red"
		id := publishAdminIntent(ctx, intent)
		Eventually(ctx, func(g Gomega) {
			n, err := pipeline.NotificationClient().Notification(ctx, id)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Status).To(Equal("routed"))
			items := deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(id, admin), Status: "sent"})
			g.Expect(items).To(HaveLen(1))
		}).Should(Succeed())
	})

	It("dead-letters an intent entry above 1 MiB without recording it, and the next intent is mailed", behaviors.Proves(
		"notification.intent.oversized-dead-lettered",
	), func(ctx SpecContext) {
		big := adminIntent(harness.UniqueName("game"), "pull failed")
		big["padding"] = strings.Repeat("x", 1<<20)
		bigID := publish(ctx, pipeline.Streams.Intents, big)
		goodID := publishAdminIntent(ctx, adminIntent(harness.UniqueName("game"), "pull failed"))

		Eventually(ctx, func(g Gomega) {
			dead := deadLetterOf(ctx, g, pipeline.Streams.Intents, bigID)
			g.Expect(dead).NotTo(BeNil())
			g.Expect(dead["dead_error"]).To(ContainSubstring("too large"))
			g.Expect(dead["dead_group"]).To(Equal("notification"))
			g.Expect(dead["notification_type"]).To(Equal("runtime.image_pull_failed"))
		}).Should(Succeed())
		Eventually(ctx, func(g Gomega) {
			items := deliveries(ctx, g, harness.DeliveryQuery{IdempotencyKey: harness.AdminRouteKey(goodID, admin), Status: "sent"})
			g.Expect(items).To(HaveLen(1))
		}).Should(Succeed())
		_, err := pipeline.NotificationClient().Notification(ctx, bigID)
		Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "not recorded: %v", err)
	})
})
