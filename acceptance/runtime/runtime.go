package runtime

import (
	"context"
	"net/http"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// specTimeout bounds every spec: an Eventually given the spec's context and
// no timeout of its own polls until that context ends.
const specTimeout = 2 * time.Minute

// loopWindow is how long a spec watches for what a timer-driven loop of the
// manager might do on its own — a pass of inspect (inspectInterval) or
// reconcile (reconcileInterval) — which Settled cannot see coming: three
// reconcile passes and six inspect passes.
const loopWindow = 3 * reconcileInterval

// runningGame starts a game and waits until the manager reports it running
// and healthy; it is stopped when the spec ends.
func runningGame(ctx context.Context, env map[string]string) (string, harness.Runtime) {
	GinkgoHelper()
	gameID := uniqueGameID()
	startGame(ctx, gameID, env)
	DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))
	Eventually(func(g Gomega) {
		results := results(ctx, gameID)
		g.Expect(results).To(HaveLen(1))
		g.Expect(results[0]).To(HaveKeyWithValue("outcome", "succeeded"))
	}).WithContext(ctx).Should(Succeed())
	Eventually(events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy"}))
	rt := runtimeOf(ctx, gameID)
	Expect(rt.State).To(Equal("running"))
	return gameID, rt
}

var _ = describe("a game's life", func() {
	It("runs a game from the registry and reports it healthy", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, rt := runningGame(ctx, nil)
		Expect(rt.ContainerID).NotTo(BeEmpty())
		Expect(rt.ImageRef).To(Equal(infra.GameImage))
		Expect(containersOf(ctx, gameID)).To(ConsistOf(rt.ContainerID))
		framework.Settle(ctx, rtm)
		Expect(results(ctx, gameID)).To(HaveLen(1))
		intents, err := rtm.IntentsForGame(ctx, gameID)
		Expect(err).NotTo(HaveOccurred())
		Expect(intents).To(BeEmpty(), "a successful start tells the admins nothing")
	})

	It("stops a game, removes its container and records it stopped", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, _ := runningGame(ctx, nil)
		stopGame(ctx, gameID)
		Eventually(func(g Gomega) {
			results := results(ctx, gameID)
			g.Expect(results).To(HaveLen(2))
			g.Expect(results[1]).To(HaveKeyWithValue("job_kind", "stop"))
			g.Expect(results[1]).To(HaveKeyWithValue("outcome", "succeeded"))
		}).WithContext(ctx).Should(Succeed())
		Expect(containersOf(ctx, gameID)).To(BeEmpty())
		rt := runtimeOf(ctx, gameID)
		Expect(rt.State).To(Equal("stopped"))
	})

	It("starts a game once however many start jobs arrive together", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID := uniqueGameID()
		DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))
		for range 4 {
			startGame(ctx, gameID, nil)
		}
		Eventually(func(g Gomega) {
			results := results(ctx, gameID)
			g.Expect(results).To(HaveLen(4))
			ids := map[string]bool{}
			for _, r := range results {
				g.Expect(r).To(HaveKeyWithValue("outcome", "succeeded"))
				ids[r["container_id"]] = true
			}
			g.Expect(ids).To(HaveLen(1), "every start names the same container")
		}).WithContext(ctx).Should(Succeed())
		framework.Settle(ctx, rtm)
		Expect(results(ctx, gameID)).To(HaveLen(4))
		Expect(containersOf(ctx, gameID)).To(HaveLen(1))
	})

	It("reports a game that turns unhealthy", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, _ := runningGame(ctx, map[string]string{"GAME_UNHEALTHY_AFTER": "2s"})
		Eventually(events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy", "unhealthy"}))
		rt := runtimeOf(ctx, gameID)
		Expect(rt.State).To(Equal("unhealthy"))
		Expect(rt.LastErrorCode).To(Equal("probe_failed"))
	})

	It("reports a game that exits", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, _ := runningGame(ctx, map[string]string{"GAME_EXIT_AFTER": "2s", "GAME_EXIT_CODE": "9"})
		Eventually(events).WithContext(ctx).WithArguments(gameID).Should(ContainElement("exited"))
		rt := runtimeOf(ctx, gameID)
		Expect(rt.State).To(Equal("failed"))
		Expect(rt.LastErrorCode).To(Equal("container_exited"))
		Expect(rt.LastErrorMessage).To(ContainSubstring("exit code 9"))
	})

	It("reports a game whose container was removed behind its back", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, rt := runningGame(ctx, nil)
		c, err := harness.DockerClient()
		Expect(err).NotTo(HaveOccurred())
		_, err = c.ContainerRemove(ctx, rt.ContainerID, client.ContainerRemoveOptions{Force: true})
		Expect(err).NotTo(HaveOccurred())
		Eventually(events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy", "missing"}))
		// Both the inspect and the reconcile pass look for the container on
		// their own timers, and Settled cannot see a pass coming: watch a
		// few of each for a second missing event.
		framework.Settle(ctx, rtm)
		Consistently(events).WithContext(ctx).WithArguments(gameID).WithTimeout(loopWindow).
			Should(HaveLen(2), "one missing event, not one per pass")
		rt = runtimeOf(ctx, gameID)
		Expect(rt.State).To(Equal("failed"))
		Expect(rt.LastErrorCode).To(Equal("container_missing"))
	})

	It("answers 404 for a game it never heard of", NodeTimeout(specTimeout), func(ctx SpecContext) {
		_, err := rtm.RuntimeClient().Runtime(ctx, "never-heard-of-"+uniqueGameID())
		Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%v", err)
		Expect(harness.ErrorCodeOf(err)).To(Equal("not_found"))
	})
})

var _ = describe("a restart of the manager", Label(speclabel.Resilience), func() {
	It("keeps running games running: adopted, not restarted", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, before := runningGame(ctx, nil)
		restartManager()
		// The restarted manager's reconcile pass (reconcileInterval) decides
		// whether to adopt the container, and its inspect pass
		// (inspectInterval) whether it still runs, each on its own timer:
		// watch several passes of each for a restart or a replacement.
		Consistently(func(g Gomega) {
			g.Expect(harness.ContainersForGame(ctx, gameID)).To(ConsistOf(before.ContainerID))
			rt, err := rtm.RuntimeClient().Runtime(ctx, gameID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rt.State).To(Equal("running"))
			g.Expect(rt.ContainerID).To(Equal(before.ContainerID))
		}).WithContext(ctx).WithTimeout(loopWindow).Should(Succeed())
		c, err := harness.DockerClient()
		Expect(err).NotTo(HaveOccurred())
		in, err := c.ContainerInspect(ctx, before.ContainerID, client.ContainerInspectOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(in.Container.State.Running).To(BeTrue())
		Expect(in.Container.RestartCount).To(BeZero())
	})

	It("finishes a start whose manager was killed mid-job, with one result", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID := uniqueGameID()
		DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))
		startGame(ctx, gameID, nil)
		// Kill as soon as the job is taken; whatever it had done, the
		// restarted manager (the same consumer) takes up its pending entry
		// and finishes it once.
		Expect(rtm.RTManager.Signal(syscall.SIGKILL)).To(Succeed())
		_, _ = rtm.RTManager.Wait(30 * time.Second)
		restartManager()
		// Up to a lease TTL plus the claim idle time (2s) and the start.
		Eventually(func(g Gomega) {
			results := results(ctx, gameID)
			g.Expect(results).To(HaveLen(1))
			g.Expect(results[0]).To(HaveKeyWithValue("outcome", "succeeded"))
		}).WithContext(ctx).WithTimeout(60 * time.Second).Should(Succeed())
		// A second run of the job would be a pending entry or a job
		// running: once settled, there is none.
		framework.Settle(ctx, rtm)
		Expect(results(ctx, gameID)).To(HaveLen(1))
		Expect(containersOf(ctx, gameID)).To(HaveLen(1))
	})
})
