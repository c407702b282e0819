package runtime

import (
	"context"
	"net/http"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// specTimeout bounds every spec: an Eventually given the spec's context and
// no timeout of its own polls until that context ends.
const specTimeout = 2 * time.Minute

// containersOf lists the game's containers on the daemon (the process-wide
// client of the harness, which must not be closed).
func containersOf(ctx context.Context, gameID string) []string {
	c, err := harness.DockerClient()
	Expect(err).NotTo(HaveOccurred())
	res, err := c.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: client.Filters{}.Add("label", harness.GameContainerLabel+"="+gameID),
	})
	Expect(err).NotTo(HaveOccurred())
	ids := []string{}
	for _, item := range res.Items {
		ids = append(ids, item.ID)
	}
	return ids
}

// runningGame starts a game and waits until the manager reports it running
// and healthy; it is stopped when the spec ends.
func runningGame(ctx context.Context, env map[string]string) (string, harness.Runtime) {
	gameID := uniqueGameID()
	rtm.startGame(ctx, gameID, env)
	DeferCleanup(func(ctx SpecContext) { rtm.stopGame(ctx, gameID) }, NodeTimeout(10*time.Second))
	Eventually(func(g Gomega) {
		results := rtm.results(ctx, gameID)
		g.Expect(results).To(HaveLen(1))
		g.Expect(results[0]).To(HaveKeyWithValue("outcome", "succeeded"))
	}).WithContext(ctx).Should(Succeed())
	Eventually(rtm.events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy"}))
	rt := rtm.runtime(ctx, gameID)
	Expect(rt.State).To(Equal("running"))
	return gameID, rt
}

var _ = describe("a game's life", func() {
	It("runs a game from the registry and reports it healthy", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, rt := runningGame(ctx, nil)
		Expect(rt.ContainerID).NotTo(BeEmpty())
		Expect(rt.ImageRef).To(Equal(infra.GameImage))
		Expect(containersOf(ctx, gameID)).To(ConsistOf(rt.ContainerID))
		Expect(rtm.entriesForGame(ctx, rtm.intentsStream, gameID)).To(BeEmpty(), "a successful start tells the admins nothing")
	})

	It("stops a game, removes its container and records it stopped", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, _ := runningGame(ctx, nil)
		rtm.stopGame(ctx, gameID)
		Eventually(func(g Gomega) {
			results := rtm.results(ctx, gameID)
			g.Expect(results).To(HaveLen(2))
			g.Expect(results[1]).To(HaveKeyWithValue("job_kind", "stop"))
			g.Expect(results[1]).To(HaveKeyWithValue("outcome", "succeeded"))
		}).WithContext(ctx).Should(Succeed())
		Expect(containersOf(ctx, gameID)).To(BeEmpty())
		rt := rtm.runtime(ctx, gameID)
		Expect(rt.State).To(Equal("stopped"))
	})

	It("starts a game once however many start jobs arrive together", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID := uniqueGameID()
		DeferCleanup(func(ctx SpecContext) { rtm.stopGame(ctx, gameID) }, NodeTimeout(10*time.Second))
		for range 4 {
			rtm.startGame(ctx, gameID, nil)
		}
		Eventually(func(g Gomega) {
			results := rtm.results(ctx, gameID)
			g.Expect(results).To(HaveLen(4))
			ids := map[string]bool{}
			for _, r := range results {
				g.Expect(r).To(HaveKeyWithValue("outcome", "succeeded"))
				ids[r["container_id"]] = true
			}
			g.Expect(ids).To(HaveLen(1), "every start names the same container")
		}).WithContext(ctx).Should(Succeed())
		Expect(containersOf(ctx, gameID)).To(HaveLen(1))
	})

	It("reports a game that turns unhealthy", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, _ := runningGame(ctx, map[string]string{"GAME_UNHEALTHY_AFTER": "2s"})
		Eventually(rtm.events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy", "unhealthy"}))
		rt := rtm.runtime(ctx, gameID)
		Expect(rt.State).To(Equal("unhealthy"))
		Expect(rt.LastErrorCode).To(Equal("probe_failed"))
	})

	It("reports a game that exits", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, _ := runningGame(ctx, map[string]string{"GAME_EXIT_AFTER": "2s", "GAME_EXIT_CODE": "9"})
		Eventually(rtm.events).WithContext(ctx).WithArguments(gameID).Should(ContainElement("exited"))
		rt := rtm.runtime(ctx, gameID)
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
		Eventually(rtm.events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy", "missing"}))
		Consistently(rtm.events).WithContext(ctx).WithArguments(gameID).Should(HaveLen(2), "one missing event, not one per pass")
		rt = rtm.runtime(ctx, gameID)
		Expect(rt.State).To(Equal("failed"))
		Expect(rt.LastErrorCode).To(Equal("container_missing"))
	})

	It("answers 404 for a game it never heard of", NodeTimeout(specTimeout), func(ctx SpecContext) {
		_, err := rtm.api.Runtime(ctx, "never-heard-of-"+uniqueGameID())
		Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%v", err)
		Expect(harness.ErrorCodeOf(err)).To(Equal("not_found"))
	})
})

var _ = describe("a restart of the manager", Label(speclabel.Resilience), func() {
	It("keeps running games running: adopted, not restarted", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID, before := runningGame(ctx, nil)
		Expect(rtm.proc.Restart()).To(Succeed())
		harness.WaitForHTTPStatus(GinkgoT(), rtm.proc, rtm.url+"/readyz", http.StatusOK)
		Consistently(func(g Gomega) {
			g.Expect(containersOf(ctx, gameID)).To(ConsistOf(before.ContainerID))
			rt, err := rtm.api.Runtime(ctx, gameID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(rt.State).To(Equal("running"))
			g.Expect(rt.ContainerID).To(Equal(before.ContainerID))
		}).WithContext(ctx).Should(Succeed())
		c, err := harness.DockerClient()
		Expect(err).NotTo(HaveOccurred())
		in, err := c.ContainerInspect(ctx, before.ContainerID, client.ContainerInspectOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(in.Container.State.Running).To(BeTrue())
		Expect(in.Container.RestartCount).To(BeZero())
	})

	It("finishes a start whose manager was killed mid-job, with one result", NodeTimeout(specTimeout), func(ctx SpecContext) {
		gameID := uniqueGameID()
		DeferCleanup(func(ctx SpecContext) { rtm.stopGame(ctx, gameID) }, NodeTimeout(10*time.Second))
		rtm.startGame(ctx, gameID, nil)
		// Kill as soon as the job is taken; whatever it had done, the
		// redelivery (claim idle 2s) finishes it once.
		Expect(rtm.proc.Signal(syscall.SIGKILL)).To(Succeed())
		_, _ = rtm.proc.Wait(30 * time.Second)
		Expect(rtm.proc.Restart()).To(Succeed())
		harness.WaitForHTTPStatus(GinkgoT(), rtm.proc, rtm.url+"/readyz", http.StatusOK)
		// Up to a lease TTL (5s) plus the claim idle time (2s) and the start.
		Eventually(func(g Gomega) {
			results := rtm.results(ctx, gameID)
			g.Expect(results).To(HaveLen(1))
			g.Expect(results[0]).To(HaveKeyWithValue("outcome", "succeeded"))
		}).WithContext(ctx).WithTimeout(60 * time.Second).Should(Succeed())
		Consistently(rtm.results).WithContext(ctx).WithArguments(gameID).Should(HaveLen(1))
		Expect(containersOf(ctx, gameID)).To(HaveLen(1))
	})
})
