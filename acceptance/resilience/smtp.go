package resilience

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// Mail's retry timers in the drill (newDrill sets them; docs/mail.md,
// "Retry policy"): the first delay is 1 s instead of the default 5 s, so
// the outage that must outlast two of them stays short; the ceiling and
// the attempts are the defaults. With the defaults the recovery after an
// SMTP outage is about the first delay longer.
const (
	mailRetryBackoffMin = time.Second      // MAIL_RETRY_BACKOFF_MIN
	mailRetryBackoffMax = 10 * time.Minute // MAIL_RETRY_BACKOFF_MAX
	mailMaxAttempts     = 8                // MAIL_MAX_ATTEMPTS
)

// mailRetryBudget is how long Mail retries a delivery through temporary
// failures before it is failed: 1 + 2 + … + 64 s, about 2 minutes.
var mailRetryBudget = harness.BackoffBudget(mailRetryBackoffMin, mailRetryBackoffMax, mailMaxAttempts)

// smtpDowntime is how long the SMTP server stays down: two first retry
// delays, so the deliveries the outage caught are retried against the dead
// server (the first retry of one tried as the server went is due within
// mailRetryBackoffMin), and each such retry is seen to fail temporarily
// rather than to end the delivery. It stays far below mailRetryBudget: an
// SMTP outage longer than that makes Mail mark deliveries failed, by
// design, and then not every mail could be sent.
const smtpDowntime = 2 * mailRetryBackoffMin

var _ = describe("the SMTP server down for a while", func() {
	// Mail runs in smtp mode against Mailpit with the drill's retry
	// schedule (mailRetryBackoffMin, doubling, mailMaxAttempts).
	It("sends every mail exactly once when it is back", speclabel.SlowSpec(), behaviors.Proves("contract.inflight.mail-counts-deliveries", "mail.smtp.transient-retried"), func(ctx SpecContext) {
		mp := harness.StartMailpit(ctx, GinkgoT())
		d := newDrill(ctx, drillOptions{infra: infra, mailpit: mp})
		f := d.startFlow(ctx, d.items)
		f.waitPublished(ctx, faultAfter)

		By("stopping the SMTP server")
		Expect(mp.Stop()).To(Succeed())
		stoppedAt := time.Now()
		f.wait(ctx)

		By("every mail of the outage retrying, none lost and none failed")
		Eventually(ctx, func(g Gomega) {
			s, err := d.snapshot(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			retrying := 0
			for _, it := range d.items {
				want, ok := d.mail(it)
				if !ok {
					continue
				}
				ds := s.deliveriesFor(it.gameID(), want)
				g.Expect(ds).To(HaveLen(1), "mails of %s", it)
				g.Expect(ds[0].Status).To(BeElementOf("sent", "retrying"), "mail of %s", it)
				if ds[0].Status == "retrying" {
					g.Expect(ds[0].ErrorCode).To(Equal("smtp_transient_failure"), "mail of %s", it)
					retrying++
				}
			}
			g.Expect(retrying).To(BeNumerically(">", 0))
		}).Should(Succeed())
		Expect(smtpDowntime).To(BeNumerically("<", mailRetryBudget/10))
		holdFault(smtpDowntime - time.Since(stoppedAt))

		// A message in the middle of its DATA when the server stopped may
		// have been answered with a 4xx by the server shutting down; every
		// other attempt found nothing listening.
		s, err := d.snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		refused, retried := 0, 0
		for _, dl := range s.deliveries {
			if dl.Status != "retrying" {
				continue
			}
			detail, err := d.mailAPI.Delivery(ctx, dl.DeliveryID)
			Expect(err).NotTo(HaveOccurred())
			Expect(detail.Attempts).NotTo(BeEmpty())
			if len(detail.Attempts) >= 2 {
				retried++
			}
			for _, a := range detail.Attempts {
				Expect(a.Outcome).To(Equal("transient_failure"), "attempts of %s", dl.DeliveryID)
				if strings.Contains(a.Error, "connection refused") {
					refused++
				}
			}
		}
		Expect(refused).To(BeNumerically(">", 0), "attempts refused by the stopped server")
		Expect(retried).To(BeNumerically(">", 0), "deliveries retried during the outage of %s", smtpDowntime)

		By("Mail counting the deliveries waiting for their retry as in flight")
		d.expectDeliveriesRetrying(ctx)

		By("starting the SMTP server again on the same address")
		restartedAt := time.Now()
		Expect(mp.Start(ctx)).To(Succeed())

		d.awaitRecovery(ctx, "smtp server down", stoppedAt, restartedAt, f, everything)
		d.expectWhole(ctx, everything)
	}, SpecTimeout(specTimeout))
})
