package boundary

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"galaxy/acceptance/framework"
	"galaxy/harness"
)

// uniqueGameID names a game no other spec, process or run uses.
func uniqueGameID() string { return harness.UniqueName("game") }

// reportedFailure is what a failed start leaves on the wire.
type reportedFailure struct {
	Intent harness.Intent
	// Deliveries are the sent mails, one per address of the type's list.
	Deliveries []harness.Delivery
}

// expectStartFailureReported asserts the whole contract for one failed start
// of gameID that travelled r: exactly one admin intent of notificationType
// with the frozen payload, whose error_message matches message (the cause,
// as the failure table of docs/rtmanager.md says it), stamped within the
// spec and keyed by r's Runtime Manager and the job; exactly one failed job
// result carrying the same error_code and error_message; Notification's
// record of it with one route per address of the type's list, keyed as the
// contract says — or, for a type with no list, recorded skipped with no
// route; exactly one sent delivery per address, in r's admin locale,
// carrying the payload as its template variables and rendered from the
// templates of r's resolved locale; and no container left for the game.
// Then, once r has settled, that no second intent, result or mail followed.
func expectStartFailureReported(ctx context.Context, r route, notificationType, gameID, imageRef string, message types.GomegaMatcher) reportedFailure {
	GinkgoHelper()
	errorCode := strings.TrimPrefix(notificationType, "runtime.")
	recipients := r.admins[notificationType]
	began := CurrentSpecReport().StartTime.UnixMilli()
	expectFailureOnLedger(r, gameID, notificationType)

	By("the Runtime Manager publishing one " + notificationType + " intent")
	var intent harness.Intent
	Eventually(ctx, func(g Gomega) {
		intents, err := r.p.IntentsForGame(ctx, gameID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(intents).To(HaveLen(1))
		intent = intents[0]
	}).Should(Succeed())
	Expect(intent).To(harness.BeAdminIntent(notificationType, gameID, imageRef))
	Expect(intent.Payload["error_message"]).To(message, "the intent's error_message")
	attempted, _ := intent.Payload["attempted_at_ms"].(float64)
	occurred, err := strconv.ParseInt(intent.OccurredAtMS, 10, 64)
	Expect(err).NotTo(HaveOccurred())
	now := time.Now().UnixMilli()
	Expect(int64(attempted)).To(BeNumerically(">=", began), "attempted_at_ms is not before the spec began")
	Expect(int64(attempted)).To(BeNumerically("<=", occurred), "the attempt came before its outcome")
	Expect(occurred).To(BeNumerically("<=", now), "occurred_at_ms is not in the future")

	By("one failed job result with the same error code and message")
	var result map[string]string
	Eventually(ctx, func(g Gomega) {
		results, err := r.p.JobResultsForGame(ctx, gameID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(results).To(HaveLen(1))
		result = results[0]
	}).Should(Succeed())
	Expect(result).To(And(
		HaveKeyWithValue("job_kind", "start"),
		HaveKeyWithValue("outcome", "failed"),
		HaveKeyWithValue("game_id", gameID),
		HaveKeyWithValue("image_ref", imageRef),
		HaveKeyWithValue("error_code", errorCode),
		HaveKeyWithValue("error_message", intent.Payload["error_message"]),
		HaveKeyWithValue("job_id", Not(BeEmpty())),
	))
	finished, err := strconv.ParseInt(result["finished_at_ms"], 10, 64)
	Expect(err).NotTo(HaveOccurred(), "finished_at_ms")
	Expect(finished).To(And(BeNumerically(">=", int64(attempted)), BeNumerically("<=", time.Now().UnixMilli())), "finished_at_ms")
	Expect(intent.IdempotencyKey).To(Equal("runtime:"+r.instance+"/"+result["job_id"]), "the intent's idempotency key")

	By("Notification recording one route per address of the " + notificationType + " list")
	var record harness.Notification
	Eventually(ctx, func(g Gomega) {
		var err error
		record, err = r.p.NotificationClient().Notification(ctx, intent.EntryID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(record.Status).NotTo(Equal("pending"))
	}).Should(Succeed())
	Expect(record.NotificationType).To(Equal(notificationType))
	Expect(record.Payload).To(Equal(intent.Payload), "the recorded payload")
	if len(recipients) == 0 {
		Expect(record.Status).To(Equal("skipped"), "a type with no admin list")
		Expect(record.Reason).To(HaveValue(Equal("no_admin_recipients")))
		Expect(record.Routes).To(BeEmpty())
	} else {
		Expect(record.Status).To(Equal("routed"))
		var want []any
		for _, addr := range recipients {
			want = append(want, And(
				HaveField("RouteID", "email:email:"+addr),
				HaveField("Recipient", HaveValue(Equal(addr))),
				HaveField("Status", "routed"),
				HaveField("IdempotencyKey", harness.AdminRouteKey(intent.EntryID, addr)),
			))
		}
		Expect(record.Routes).To(ConsistOf(want...))
	}

	var deliveries []harness.Delivery
	for _, recipient := range recipients {
		By("Mail recording one sent delivery to " + recipient)
		key := harness.AdminRouteKey(intent.EntryID, recipient)
		var summary harness.Delivery
		Eventually(ctx, func(g Gomega) {
			items, err := r.p.Deliveries(ctx, url.Values{
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
		detail, err := r.p.Delivery(ctx, summary.DeliveryID)
		Expect(err).NotTo(HaveOccurred())
		Expect(detail.Source).To(Equal("notification"))
		Expect(detail.TemplateID).To(Equal(notificationType))
		Expect(detail.IdempotencyKey).To(Equal(key))
		Expect(detail.Locale).To(Equal(r.locale), "the mail command's locale: NOTIFICATION_ADMIN_LOCALE")
		Expect(detail.ResolvedLocale).To(Equal(r.resolved), "the template locale Mail fell back to")
		Expect(detail.TemplateVariables).To(Equal(intent.Payload), "the template variables are the intent's payload")
		expectRendered(detail, r.resolved, notificationType, intent.Payload)
		expectReceived(ctx, r, recipient, detail.Subject)
		deliveries = append(deliveries, detail)
	}

	By("no container left for the game on Docker")
	Expect(harness.ContainersForGame(ctx, gameID)).To(BeEmpty())

	By("nothing more once the pipeline has settled")
	framework.Settle(ctx, r.p)
	intents, err := r.p.IntentsForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(intents).To(HaveLen(1))
	results, err := r.p.JobResultsForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(results).To(HaveLen(1))
	// Notification's routes are the type's list and nothing else; no
	// address of it got a second mail about the game, under any key; and
	// without a list, no one got any.
	for i, recipient := range recipients {
		Expect(deliveriesForGame(ctx, Default, r.p, recipient, notificationType, gameID)).To(Equal(1), "mails about the game to %s", recipient)
		if mp := deploymentMailpit(r); mp != nil {
			Expect(received(ctx, Default, mp, recipient, deliveries[i].Subject)).To(HaveLen(1), "messages to %s in the deployment's Mailpit", recipient)
		}
	}
	if len(recipients) == 0 {
		Expect(deliveriesForGame(ctx, Default, r.p, "", notificationType, gameID)).To(BeZero(), "mails about the game")
	}
	return reportedFailure{Intent: intent, Deliveries: deliveries}
}

// expectStarted asserts that the start of gameID through r succeeded and
// told nobody: one succeeded job result naming the running container, and
// once r has settled, no intent and no mail about the game.
func expectStarted(ctx context.Context, r route, gameID, imageRef string) {
	GinkgoHelper()
	if r.p == pipeline {
		framework.ExpectForGame(pipeline, gameID, harness.Effects{Results: []string{harness.ResultLine("start", "succeeded", "")}})
	}
	By("one succeeded job result")
	Eventually(ctx, func(g Gomega) {
		results, err := r.p.JobResultsForGame(ctx, gameID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(results).To(ConsistOf(And(
			HaveKeyWithValue("job_kind", "start"),
			HaveKeyWithValue("outcome", "succeeded"),
			HaveKeyWithValue("image_ref", imageRef),
			HaveKeyWithValue("container_id", Not(BeEmpty())),
			Not(HaveKey("error_code")),
			Not(HaveKey("error_message")),
		)))
	}).Should(Succeed())
	results, err := r.p.JobResultsForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	containers, err := harness.ContainersForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(containers).To(ConsistOf(results[0]["container_id"]), "the game's one container is the result's")

	By("no intent and no mail once the pipeline has settled")
	framework.Settle(ctx, r.p)
	intents, err := r.p.IntentsForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(intents).To(BeEmpty())
	for notificationType, addrs := range r.admins {
		for _, recipient := range addrs {
			Expect(deliveriesForGame(ctx, Default, r.p, recipient, notificationType, gameID)).To(BeZero(), "%s mails about the game to %s", notificationType, recipient)
		}
	}
}

// stopGame stops a game a spec started through p and waits until Docker no
// longer has its container, so no spec leaves a game running.
func stopGame(ctx context.Context, p *harness.Pipeline, gameID string) {
	if p == pipeline {
		framework.ExpectForGame(pipeline, gameID, harness.Effects{Results: []string{harness.ResultLine("stop", "succeeded", "")}})
	}
	_, err := p.PublishStopJob(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Eventually(ctx, func() ([]string, error) {
		return harness.ContainersForGame(ctx, gameID)
	}).Should(BeEmpty())
}

// expectFailureOnLedger registers with the run-wide ledger of the boundary
// pipeline what one failed start through r leaves there by the end of the
// run: on the pipeline's own route, one failed result, one intent and one
// mail per address of the type's list; on another route, whose results and
// intents have streams of their own, its mails, which the pipeline's Mail
// renders.
func expectFailureOnLedger(r route, gameID, notificationType string) {
	if r.p == pipeline {
		framework.ExpectFailedStart(pipeline, gameID, strings.TrimPrefix(notificationType, "runtime."))
		return
	}
	var mails []string
	for _, addr := range r.admins[notificationType] {
		mails = append(mails, harness.MailLine(notificationType, addr, "sent"))
	}
	framework.ExpectForGame(pipeline, gameID, harness.Effects{Mails: mails})
}

// deliveriesForGame counts the deliveries of templateID by p's Mail to
// recipient (to anyone, if empty) whose variables name gameID — whatever
// their idempotency key or status.
func deliveriesForGame(ctx context.Context, g Gomega, p *harness.Pipeline, recipient, templateID, gameID string) int {
	query := url.Values{"template_id": {templateID}, "limit": {"500"}}
	if recipient != "" {
		query.Set("recipient", recipient)
	}
	items, err := p.Deliveries(ctx, query)
	g.Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, item := range items {
		d, err := p.Delivery(ctx, item.DeliveryID)
		g.Expect(err).NotTo(HaveOccurred())
		if d.TemplateVariables["game_id"] == gameID {
			n++
		}
	}
	return n
}

// deploymentMailpit is a client of the Mailpit a deployment's Mail sends
// to (target.mailpit_url), when r is the deployment and one is named: then
// a sent delivery must also have arrived there. The suite's own pipelines
// run Mail in stub mode.
func deploymentMailpit(r route) *harness.MailpitClient {
	if !r.p.Deployed || framework.Target().MailpitURL == "" {
		return nil
	}
	return &harness.MailpitClient{APIURL: framework.Target().MailpitURL}
}

// expectReceived waits until the deployment's Mailpit, if it names one,
// holds the message to recipient with subject, exactly once.
func expectReceived(ctx context.Context, r route, recipient, subject string) {
	GinkgoHelper()
	mp := deploymentMailpit(r)
	if mp == nil {
		return
	}
	By("the deployment's SMTP server receiving it")
	Eventually(ctx, func(g Gomega) {
		g.Expect(received(ctx, g, mp, recipient, subject)).To(HaveLen(1))
	}).Should(Succeed())
}

// received are the messages Mailpit holds to recipient with subject — the
// subject names the spec's game, so they are the spec's.
func received(ctx context.Context, g Gomega, mp *harness.MailpitClient, recipient, subject string) []harness.MailpitMessage {
	msgs, err := mp.Search(ctx, "to:"+recipient)
	g.Expect(err).NotTo(HaveOccurred())
	var out []harness.MailpitMessage
	for _, m := range msgs {
		if m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}
