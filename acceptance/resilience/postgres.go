package resilience

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// postgresDowntime is how long PostgreSQL stays down while the flow goes on.
const postgresDowntime = 3 * time.Second

var _ = describe("PostgreSQL restarted mid-flight", func() {
	// The test image trades durability for speed (fsync and
	// synchronous_commit off), so a SIGKILL could lose commits the services
	// were told had happened; the restart is a clean one (docker stop sends
	// the image's fast-shutdown signal), which loses no committed work.
	It("loses nothing and repeats nothing", speclabel.SlowSpec(), func(ctx SpecContext) {
		pg := harness.StartPostgres(ctx, GinkgoT())
		own := infra
		own.PostgresAdminDSN, own.PostgresContainerID = pg.AdminDSN, pg.ContainerID
		d := newDrill(ctx, drillOptions{infra: own})
		f := d.startFlow(ctx, d.items)
		f.waitPublished(ctx, faultAfter)

		By("stopping PostgreSQL")
		Expect(pg.Stop(ctx)).To(Succeed())
		stoppedAt := time.Now()
		holdFault(postgresDowntime)

		By("starting PostgreSQL again")
		restartedAt := time.Now()
		Expect(pg.Start(ctx)).To(Succeed())

		d.awaitRecovery(ctx, "postgresql restart", stoppedAt, restartedAt, f, everything)
		d.expectWhole(ctx, everything)
	}, SpecTimeout(specTimeout))
})
