package boundary

import (
	"context"
	"net/url"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = describe("successful, repeated and concurrent starts", func() {
	It("says nothing to the admins when a game starts", speclabel.SlowSpec(), func(ctx SpecContext) {
		gameID := uniqueGameID()
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.GameImage})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(stopGame, gameID, NodeTimeout(harness.ReportTimeout))

		Eventually(ctx, func(g Gomega) {
			results, err := pipeline.JobResultsForGame(ctx, gameID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(results).To(ConsistOf(And(
				HaveKeyWithValue("job_kind", "start"),
				HaveKeyWithValue("outcome", "succeeded"),
				HaveKeyWithValue("container_id", Not(BeEmpty())),
			)))
		}).Should(Succeed())
		Expect(harness.ContainersForGame(ctx, gameID)).To(HaveLen(1))

		framework.Settle(ctx, pipeline)
		intents, err := pipeline.IntentsForGame(ctx, gameID)
		Expect(err).NotTo(HaveOccurred())
		Expect(intents).To(BeEmpty())
		for notificationType, recipient := range adminRecipient {
			Expect(deliveriesForGame(ctx, Default, recipient, notificationType, gameID)).To(BeZero())
		}
	})

	It("reports a start job delivered twice once", func(ctx SpecContext) {
		gameID := uniqueGameID()
		job := map[string]string{"game_id": gameID, "image_ref": missingImageRef, "job_id": harness.UniqueName("job")}
		for range 2 {
			_, err := pipeline.PublishStartJob(ctx, job)
			Expect(err).NotTo(HaveOccurred())
		}
		expectStartFailureReported(ctx, "runtime.image_pull_failed", gameID, missingImageRef)
	})

	It("routes two failures of different kinds, at once, each to its own admin list", func(ctx SpecContext) {
		pullGame, startGame := uniqueGameID(), uniqueGameID()
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": pullGame, "image_ref": missingImageRef})
		Expect(err).NotTo(HaveOccurred())
		_, err = pipeline.PublishStartJob(ctx, map[string]string{"game_id": startGame, "image_ref": infra.BrokenImage})
		Expect(err).NotTo(HaveOccurred())

		expectStartFailureReported(ctx, "runtime.image_pull_failed", pullGame, missingImageRef)
		expectStartFailureReported(ctx, "runtime.container_start_failed", startGame, infra.BrokenImage)
	})

	It("mails a failure only to the list configured for its type", func(ctx SpecContext) {
		gameID := uniqueGameID()
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": "Not A Valid::Reference"})
		Expect(err).NotTo(HaveOccurred())
		expectStartFailureReported(ctx, "runtime.start_config_invalid", gameID, "Not A Valid::Reference")

		for notificationType, recipient := range adminRecipient {
			if notificationType == "runtime.start_config_invalid" {
				continue
			}
			items, err := pipeline.Deliveries(ctx, url.Values{"recipient": {recipient}, "template_id": {"runtime.start_config_invalid"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(items).To(BeEmpty(), "%s is not on the start_config_invalid list", recipient)
		}
	})
})

// stopGame stops a game a spec started and waits until Docker no longer has
// its container, so no spec leaves a game running.
func stopGame(ctx context.Context, gameID string) {
	_, err := pipeline.PublishStopJob(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Eventually(ctx, func() ([]string, error) {
		return harness.ContainersForGame(ctx, gameID)
	}).Should(BeEmpty())
}

var _ = describe("two Runtime Managers publishing to one Notification", func() {
	// Job IDs are the producer's, or default to entry IDs, which two start
	// streams can share: the same job ID at two deployments names two jobs,
	// and each failure must reach the admins.
	It("reports a failure of each, when their job IDs coincide", func(ctx SpecContext) {
		other := harness.StartService(ctx, GinkgoT(), harness.ServiceSpec{
			Name:  "rtmanager",
			Infra: infra,
			Streams: harness.PipelineStreams{
				StartJobs:    harness.UniqueName("runtime:start_jobs"),
				StopJobs:     harness.UniqueName("runtime:stop_jobs"),
				JobResults:   pipeline.Streams.JobResults,
				HealthEvents: pipeline.Streams.HealthEvents,
				Intents:      pipeline.Streams.Intents,
			},
			DockerNetwork: pipeline.DockerNetwork,
			Env:           map[string]string{"RTMANAGER_INSTANCE_ID": harness.UniqueName("rtm-other")},
		})
		framework.ReportOnFailure(framework.SpecPipeline("second runtime manager", pipeline, other.Process))

		jobID := harness.UniqueName("job")
		here, there := uniqueGameID(), uniqueGameID()
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": here, "image_ref": missingImageRef, "job_id": jobID})
		Expect(err).NotTo(HaveOccurred())
		_, err = pipeline.Redis.XAdd(ctx, &redis.XAddArgs{Stream: other.Streams.StartJobs, Values: map[string]any{
			"game_id": there, "image_ref": missingImageRef, "job_id": jobID,
			"requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
		}}).Result()
		Expect(err).NotTo(HaveOccurred())

		expectStartFailureReported(ctx, "runtime.image_pull_failed", here, missingImageRef)
		expectStartFailureReported(ctx, "runtime.image_pull_failed", there, missingImageRef)
	})
})
