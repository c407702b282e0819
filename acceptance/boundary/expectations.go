package boundary

import (
	"context"
	"net/url"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
)

// uniqueGameID names a game no other spec, process or run uses.
func uniqueGameID() string { return harness.UniqueName("game") }

// reportedFailure is what a failed start leaves on the wire.
type reportedFailure struct {
	Intent   harness.Intent
	Delivery harness.Delivery
}

// expectStartFailureReported asserts the whole contract for one failed start
// of gameID: exactly one admin intent of notificationType with the frozen
// payload, exactly one sent delivery to the type's admin list carrying the
// payload as template variables, exactly one failed job result with the same
// error code, and no container left for the game. Then, once the pipeline
// has settled, that no second intent, result or mail followed.
func expectStartFailureReported(ctx context.Context, notificationType, gameID, imageRef string) reportedFailure {
	GinkgoHelper()
	errorCode := strings.TrimPrefix(notificationType, "runtime.")
	recipient := adminRecipient[notificationType]

	By("the Runtime Manager publishing one " + notificationType + " intent")
	var intent harness.Intent
	Eventually(ctx, func(g Gomega) {
		intents, err := pipeline.IntentsForGame(ctx, gameID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(intents).To(HaveLen(1))
		intent = intents[0]
	}).Should(Succeed())
	Expect(intent).To(harness.BeAdminIntent(notificationType, gameID, imageRef))

	By("Mail recording one sent delivery to " + recipient)
	key := harness.AdminRouteKey(intent.EntryID, recipient)
	var summary harness.Delivery
	Eventually(ctx, func(g Gomega) {
		items, err := pipeline.Deliveries(ctx, url.Values{
			"source":          {"notification"},
			"status":          {"sent"},
			"recipient":       {recipient},
			"template_id":     {notificationType},
			"idempotency_key": {key},
		})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(items).To(HaveLen(1))
		summary = items[0]
	}).Should(Succeed())
	Expect(summary.PayloadMode).To(Equal("template"))
	Expect(summary.To).To(Equal([]string{recipient}))
	detail, err := pipeline.Delivery(ctx, summary.DeliveryID)
	Expect(err).NotTo(HaveOccurred())
	Expect(detail.Source).To(Equal("notification"))
	Expect(detail.TemplateID).To(Equal(notificationType))
	Expect(detail.IdempotencyKey).To(Equal(key))
	Expect(detail.Locale).To(Equal("en"))
	Expect(detail.TemplateVariables).To(And(
		HaveKeyWithValue("game_id", gameID),
		HaveKeyWithValue("image_ref", imageRef),
		HaveKeyWithValue("error_code", errorCode),
		HaveKeyWithValue("error_message", intent.Payload["error_message"]),
	))

	By("one failed job result with the same error code")
	Eventually(ctx, func(g Gomega) {
		results, err := pipeline.JobResultsForGame(ctx, gameID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(results).To(ConsistOf(And(
			HaveKeyWithValue("job_kind", "start"),
			HaveKeyWithValue("outcome", "failed"),
			HaveKeyWithValue("error_code", errorCode),
			HaveKeyWithValue("error_message", Not(BeEmpty())),
		)))
	}).Should(Succeed())

	By("no container left for the game on Docker")
	Expect(harness.ContainersForGame(ctx, gameID)).To(BeEmpty())

	By("nothing more once the pipeline has settled")
	framework.Settle(ctx, pipeline)
	intents, err := pipeline.IntentsForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(intents).To(HaveLen(1))
	results, err := pipeline.JobResultsForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(results).To(HaveLen(1))
	Expect(deliveriesForGame(ctx, Default, recipient, notificationType, gameID)).To(Equal(1))
	return reportedFailure{Intent: intent, Delivery: detail}
}

// deliveriesForGame counts the deliveries of templateID to recipient whose
// variables name gameID — whatever their idempotency key or status.
func deliveriesForGame(ctx context.Context, g Gomega, recipient, templateID, gameID string) int {
	items, err := pipeline.Deliveries(ctx, url.Values{
		"recipient": {recipient}, "template_id": {templateID}, "limit": {"500"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, item := range items {
		d, err := pipeline.Delivery(ctx, item.DeliveryID)
		g.Expect(err).NotTo(HaveOccurred())
		if d.TemplateVariables["game_id"] == gameID {
			n++
		}
	}
	return n
}
