package resilience

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// postgresDowntime is how long PostgreSQL stays down while the flow goes on:
// a whole delivery budget (drillMaxDeliveries × drillClaimIdle, 3 s) plus a
// claim idle, so an entry whose handler waits for the database would have
// been dead-lettered had its failed deliveries counted; they must not, the
// entry is retried in place. (Notification's routes spend no attempts on
// it: a hand-off needs its transaction first.)
const postgresDowntime = deliveryBudget + drillClaimIdle

var _ = describe("PostgreSQL crashed mid-flight", func() {
	// A real outage is often a crash: the server is killed (SIGKILL), with
	// no shutdown checkpoint and open transactions cut off. The server is a
	// durable one (synchronous_commit on, harness.StartDurablePostgres), so
	// every commit a service was told had happened survives and anything
	// missing afterwards is the services' loss; the suite's shared image
	// runs without it and could lose such commits.
	It("loses nothing and repeats nothing", speclabel.SlowSpec(), behaviors.Proves("contract.streams.ack-after-durable", "rtm.jobs.dependency-outage-retried", "rtm.jobs.one-result-per-job"), func(ctx SpecContext) {
		pg := harness.StartDurablePostgres(ctx, GinkgoT())
		own := infra
		own.PostgresAdminDSN, own.PostgresContainerID = pg.AdminDSN, pg.ContainerID
		d := newDrill(ctx, drillOptions{infra: own})
		f := d.startFlow(ctx, d.items)
		f.waitPublished(ctx, faultAfter)

		By("killing PostgreSQL with SIGKILL")
		Expect(pg.Kill(ctx)).To(Succeed())
		killedAt := time.Now()
		holdFault(postgresDowntime)

		By("starting PostgreSQL again; it replays its write-ahead log")
		restartedAt := time.Now()
		Expect(pg.Start(ctx)).To(Succeed())

		d.awaitRecovery(ctx, "postgresql kill -9 (durable)", killedAt, restartedAt, f, everything)
		d.expectWhole(ctx, everything)
	}, SpecTimeout(specTimeout))
})
