package resilience

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = describe("the SMTP server down for a while", func() {
	// Mail runs in smtp mode against Mailpit with its default retry
	// schedule (5 s, doubling, 8 attempts), so the recovery measured is the
	// one an operator would see.
	It("sends every mail exactly once when it is back", speclabel.SlowSpec(), func(ctx SpecContext) {
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
		// A message in the middle of its DATA when the server stopped may
		// have been answered with a 4xx by the server shutting down; every
		// other attempt found nothing listening.
		s, err := d.snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		refused := 0
		for _, dl := range s.deliveries {
			if dl.Status != "retrying" {
				continue
			}
			detail, err := d.mailAPI.Delivery(ctx, dl.DeliveryID)
			Expect(err).NotTo(HaveOccurred())
			Expect(detail.Attempts).NotTo(BeEmpty())
			for _, a := range detail.Attempts {
				Expect(a.Outcome).To(Equal("transient_failure"), "attempts of %s", dl.DeliveryID)
				if strings.Contains(a.Error, "connection refused") {
					refused++
				}
			}
		}
		Expect(refused).To(BeNumerically(">", 0), "attempts refused by the stopped server")

		By("starting the SMTP server again on the same address")
		restartedAt := time.Now()
		Expect(mp.Start(ctx)).To(Succeed())

		d.awaitRecovery(ctx, "smtp server down", stoppedAt, restartedAt, f, everything)
		d.expectWhole(ctx, everything)
	}, SpecTimeout(specTimeout))
})
