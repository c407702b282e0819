package mail

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
)

var _ = describe("the Mail API", func() {
	It("accepts commands over HTTP, lists them newest first by every filter a page at a time, and shows each in detail", behaviors.Proves(
		"mail.api.create-accepted", "mail.api.list-filters", "mail.api.list-paging",
		"mail.api.detail",
	), func(ctx SpecContext) {
		// A source of its own keeps the list to this spec's deliveries.
		source := "acceptance-" + harness.UniqueSuffix()
		to, cc, bcc, other := recipient("list"), recipient("cc"), recipient("bcc"), recipient("other")
		now := time.Now().UnixMilli()
		cmds := []harness.DeliveryCommand{{
			Source: source, PayloadMode: "rendered", Subject: "List one", TextBody: "one", HTMLBody: "<p>one</p>",
			To: []string{to}, Cc: []string{cc}, Bcc: []string{bcc}, ReplyTo: "ops@example.com",
			IdempotencyKey: source + "/1", RequestedAtMS: now,
		}, {
			Source: source, PayloadMode: "rendered", Subject: "List two", TextBody: "two",
			To: []string{"Ops Team <" + to + ">"}, IdempotencyKey: source + "/2", RequestedAtMS: now,
		}, {
			Source: source, PayloadMode: "template", TemplateID: "runtime.image_pull_failed", Locale: "en",
			TemplateVariables: map[string]any{
				"game_id": "game-3", "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
				"error_message": "manifest unknown", "attempted_at_ms": 1700000000123,
			},
			To: []string{other}, Cc: []string{to}, IdempotencyKey: source + "/3", RequestedAtMS: now,
		}}
		var ids []string
		for _, cmd := range cmds {
			created, err := svc.api.CreateDelivery(ctx, cmd)
			Expect(err).NotTo(HaveOccurred())
			Expect(created.HTTPStatus).To(Equal(http.StatusAccepted))
			Expect(created.Replayed).To(BeFalse())
			Expect(created.DeliveryID).To(MatchRegexp(`^dlv_[A-Z2-7]{26}$`))
			Expect(created.IdempotencyKey).To(Equal(cmd.IdempotencyKey))
			Expect(created.Source).To(Equal(source))
			Expect(created.PayloadMode).To(Equal(cmd.PayloadMode))
			ids = append(ids, created.DeliveryID)
			framework.ExpectDelivery(svc.Pipeline, cmd.IdempotencyKey, "sent")
		}
		newestFirst := []string{ids[2], ids[1], ids[0]}
		idsOf := func(items []harness.Delivery) []string {
			out := []string{}
			for _, d := range items {
				out = append(out, d.DeliveryID)
			}
			return out
		}
		list := func(g Gomega, q harness.DeliveryQuery) []string {
			items, err := svc.api.AllDeliveries(ctx, q)
			g.Expect(err).NotTo(HaveOccurred())
			return idsOf(items)
		}

		By("filters")
		Eventually(ctx, func(g Gomega) {
			g.Expect(list(g, harness.DeliveryQuery{Source: source, Status: "sent"})).To(Equal(newestFirst))
		}).Should(Succeed())
		Expect(list(Default, harness.DeliveryQuery{Source: source})).To(Equal(newestFirst))
		Expect(list(Default, harness.DeliveryQuery{Source: source, Status: "failed"})).To(BeEmpty())
		// to, to with a display name, cc; in another letter case.
		Expect(list(Default, harness.DeliveryQuery{Recipient: strings.ToUpper(to)})).To(Equal(newestFirst))
		Expect(list(Default, harness.DeliveryQuery{Recipient: bcc})).To(Equal([]string{ids[0]}))
		Expect(list(Default, harness.DeliveryQuery{Source: source, TemplateID: "runtime.image_pull_failed"})).To(Equal([]string{ids[2]}))
		Expect(list(Default, harness.DeliveryQuery{IdempotencyKey: source + "/2"})).To(Equal([]string{ids[1]}))

		By("pages")
		page, next, err := svc.api.Deliveries(ctx, harness.DeliveryQuery{Source: source, Limit: 2})
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(page)).To(Equal(newestFirst[:2]))
		Expect(next).NotTo(BeEmpty())
		page, next, err = svc.api.Deliveries(ctx, harness.DeliveryQuery{Source: source, Limit: 2, Cursor: next})
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(page)).To(Equal(newestFirst[2:]))
		Expect(next).To(BeEmpty())
		for query, code := range map[string]string{
			"cursor=not-a-cursor": "invalid_cursor",
			"limit=0":             "invalid_request",
			"limit=501":           "invalid_request",
			"status=delivered":    "invalid_request",
		} {
			q, err := url.ParseQuery(query)
			Expect(err).NotTo(HaveOccurred())
			_, _, err = svc.api.ListDeliveries(ctx, q)
			Expect(harness.StatusOf(err)).To(Equal(http.StatusBadRequest), "%s: %v", query, err)
			Expect(harness.ErrorCodeOf(err)).To(Equal(code), query)
		}

		By("detail")
		d, err := svc.api.Delivery(ctx, ids[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(d.DeliveryID).To(Equal(ids[0]))
		Expect(d.Source).To(Equal(source))
		Expect(d.PayloadMode).To(Equal("rendered"))
		Expect(d.IdempotencyKey).To(Equal(source + "/1"))
		Expect(d.To).To(Equal([]string{to}))
		Expect(d.Cc).To(Equal([]string{cc}))
		Expect(d.Bcc).To(Equal([]string{bcc}))
		Expect(d.ReplyTo).To(Equal("ops@example.com"))
		Expect(d.Subject).To(Equal("List one"))
		Expect(d.TextBody).To(Equal("one"))
		Expect(d.HTMLBody).To(Equal("<p>one</p>"))
		Expect(d.TemplateVariables).To(BeNil())
		Expect(d.RequestedAtMS).To(Equal(now))
		Expect(d.StreamEntryID).To(BeEmpty(), "a command that came over HTTP")
		Expect(d.Status).To(Equal("sent"))
		Expect(d.Sequence).To(Equal(1))
		Expect(d.Attempts).To(HaveLen(1))
		Expect(d.Attempts[0].Attempt).To(Equal(1))
		Expect(d.Attempts[0].Outcome).To(Equal("sent"))
		Expect(d.SentAtMS).To(HaveValue(BeNumerically(">=", d.CreatedAtMS)))
		Expect(d.UpdatedAtMS).To(BeNumerically(">=", d.CreatedAtMS))

		d, err = svc.api.Delivery(ctx, ids[2])
		Expect(err).NotTo(HaveOccurred())
		Expect(d.TemplateID).To(Equal("runtime.image_pull_failed"))
		Expect(d.TemplateVariables).To(HaveKeyWithValue("game_id", "game-3"))
		Expect(d.Subject).To(Equal("[Galaxy] Game game-3: image pull failed (image_pull_failed)"))

		_, err = svc.api.Delivery(ctx, "dlv_"+strings.Repeat("A", 26))
		Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%v", err)
		Expect(harness.ErrorCodeOf(err)).To(Equal("not_found"))
	})
})
