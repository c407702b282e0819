package runtime

import (
	"context"
	"maps"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
)

// createLeftover creates, and does not start, a container of the game image
// labelled as instance's container of gameID — what a manager leaves behind
// when it could not remove a container — and returns its ID. It is removed
// when the spec ends if it is still there.
func createLeftover(ctx context.Context, instance, gameID string) string {
	GinkgoHelper()
	return createContainer(ctx, harness.UniqueName("galaxy-leftover"), instance, gameID)
}

// createContainer is createLeftover with the container's name.
func createContainer(ctx context.Context, name, instance, gameID string) string {
	GinkgoHelper()
	Expect(harness.PullImage(ctx, infra.GameImage)).To(Succeed())
	labels := harness.OwnerLabels()
	maps.Copy(labels, map[string]string{
		"galaxy.rtmanager.game_id":  gameID,
		"galaxy.rtmanager.managed":  "true",
		"galaxy.rtmanager.instance": instance,
		"galaxy.rtmanager.job_id":   harness.UniqueName("leftover"),
	})
	c, err := harness.DockerClient()
	Expect(err).NotTo(HaveOccurred())
	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   name,
		Config: &container.Config{Image: infra.GameImage, Labels: labels},
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		_, _ = c.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true})
	})
	return res.ID
}

// containerGone reports whether the daemon no longer knows the container.
func containerGone(ctx context.Context, id string) (bool, error) {
	c, err := harness.DockerClient()
	if err != nil {
		return false, err
	}
	_, err = c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

var _ = describe("the loops", func() {
	It("removes a container left behind by a stopped game",
		behaviors.Proves("rtm.cleanup.stopped-games"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID, _ := runningGame(ctx, nil)
			stopGame(ctx, gameID)
			Eventually(func(g Gomega) {
				g.Expect(runtimeOf(ctx, gameID).State).To(Equal("stopped"))
			}).WithContext(ctx).Should(Succeed())
			before := removedContainers(ctx, rtm.RTManagerURL, "stopped")
			leftover := createLeftover(ctx, instanceID(), gameID)
			Expect(containersOf(ctx, gameID)).To(ConsistOf(leftover))
			// The cleanup loop runs every cleanupInterval; reconcile leaves
			// a stopped game's containers to it.
			Eventually(containerGone).WithContext(ctx).WithArguments(leftover).Should(BeTrue())
			Expect(removedContainers(ctx, rtm.RTManagerURL, "stopped")).To(Equal(before+1), "removed by the cleanup loop")
			Expect(runtimeOf(ctx, gameID).State).To(Equal("stopped"))
		})

	It("removes a container of its own that no record tracks once past the orphan grace, and never another instance's",
		behaviors.Proves("rtm.reconcile.orphans"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			// A manager of the spec's own: the area's keeps the default
			// grace of two minutes.
			svc := harness.StartService(ctx, GinkgoT(), harness.ServiceSpec{
				Name: "rtmanager", Infra: infra,
				Env: map[string]string{"RTMANAGER_ORPHAN_GRACE": "1s", "RTMANAGER_RECONCILE_INTERVAL": reconcileInterval.String()},
			})
			DeferCleanup(harness.AttachLogsOnFailure, svc.Process)
			instance := svc.Var("INSTANCE_ID")
			Expect(svc.Var("ORPHAN_GRACE")).To(Equal("1s"))

			// The other instance's container first: it is past the grace
			// whenever the orphan is.
			foreign := createLeftover(ctx, instance+"-other", uniqueGameID())
			orphan := createLeftover(ctx, instance, uniqueGameID())
			Eventually(containerGone).WithContext(ctx).WithArguments(orphan).Should(BeTrue())
			Expect(removedContainers(ctx, svc.URL, "orphan")).To(Equal(1.0))
			// The pass that removed the orphan found the older container
			// past the grace too, and left it: it is not this instance's.
			Expect(containerGone(ctx, foreign)).To(BeFalse(), "another instance's container is left alone")
		})
})
