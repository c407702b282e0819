package resilience

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// redisDowntime is how long Redis stays down while the flow goes on (the
// drill's publisher keeps retrying, as a producer would): longer than both
// budgets an outage can spend, plus a claim idle — deliveryBudget (an
// entry's deliveries, 3 s) and routeBudget (a Notification route's
// attempts, 5.4 s) — so every entry and route caught by the outage proves
// it is retried for as long as Redis is away rather than dead-lettered or
// made dead.
var redisDowntime = max(deliveryBudget, routeBudget) + drillClaimIdle

var _ = describe("Redis restarted mid-flight", func() {
	It("loses nothing when Redis crashes with its append-only file on", speclabel.SlowSpec(), behaviors.Proves("rtm.jobs.dependency-outage-retried", "rtm.jobs.one-result-per-job"), func(ctx SpecContext) {
		r := harness.StartDurableRedis(ctx, GinkgoT())
		own := infra
		own.RedisAddr, own.RedisContainerID = r.Addr, r.ContainerID
		d := newDrill(ctx, drillOptions{infra: own})
		f := d.startFlow(ctx, d.items)
		f.waitPublished(ctx, faultAfter)

		By("killing Redis with SIGKILL")
		Expect(r.Kill(ctx)).To(Succeed())
		killedAt := time.Now()
		holdFault(redisDowntime)

		By("starting Redis again; it replays its append-only file")
		restartedAt := time.Now()
		Expect(r.Start(ctx)).To(Succeed())

		d.awaitRecovery(ctx, "redis kill -9 (appendfsync always)", killedAt, restartedAt, f, everything)
		d.expectWhole(ctx, everything)
	}, SpecTimeout(specTimeout))

	// A Redis without persistence comes back empty: the streams, consumer
	// groups, pending lists, leases and publish markers are gone. What was
	// in flight then may be lost — that is the price of no persistence, not
	// a fault of the services — but nothing may happen twice, nothing
	// published after the restart may be lost, and every service must
	// carry on by itself.
	It("loses no work published after Redis restarts empty, and repeats none from before", speclabel.SlowSpec(), behaviors.Proves("contract.streams.group-from-start", "rtm.jobs.one-result-per-job"), func(ctx SpecContext) {
		r := harness.StartRedis(ctx, GinkgoT())
		own := infra
		own.RedisAddr, own.RedisContainerID = r.Addr, r.ContainerID
		d := newDrill(ctx, drillOptions{infra: own})
		f := d.startFlow(ctx, d.items)
		f.waitPublished(ctx, faultAfter)

		By("restarting Redis, which keeps no data")
		Expect(r.Stop(ctx)).To(Succeed())
		stoppedAt := time.Now()
		holdFault(redisDowntime)
		restartedAt := time.Now()
		Expect(r.Start(ctx)).To(Succeed())

		f.wait(ctx)
		afterRestart := func(it *item) bool { return it.publishedAt.After(stoppedAt) }
		n := 0
		for _, it := range d.items {
			if afterRestart(it) {
				n++
			}
		}
		Expect(n).To(BeNumerically(">", 0), "items published after the restart")
		Expect(n).To(BeNumerically("<", len(d.items)), "items published before the restart")

		d.awaitRecovery(ctx, "redis restart without persistence", stoppedAt, restartedAt, f, afterRestart)
		d.expectWhole(ctx, afterRestart)
	}, SpecTimeout(specTimeout))
})
