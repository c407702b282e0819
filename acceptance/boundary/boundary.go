package boundary

import (
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = describe("successful, repeated and concurrent starts", func() {
	It("says nothing to the admins when a game starts", speclabel.SlowSpec(),
		behaviors.Proves("rtm.failure.success-tells-nobody"), func(ctx SpecContext) {
			r := defaultRoute()
			gameID := uniqueGameID()
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.GameImage})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(stopGame, pipeline, gameID, NodeTimeout(harness.ReportTimeout))

			expectStarted(ctx, r, gameID, infra.GameImage)
		})

	It("reports a start job delivered twice once",
		behaviors.Proves("rtm.failure.repeat-reported-once", "rtm.failure.intent-idempotency-key"), func(ctx SpecContext) {
			gameID := uniqueGameID()
			job := map[string]string{"game_id": gameID, "image_ref": missingImageRef, "job_id": harness.UniqueName("job")}
			for range 2 {
				_, err := pipeline.PublishStartJob(ctx, job)
				Expect(err).NotTo(HaveOccurred())
			}
			failure := expectStartFailureReported(ctx, defaultRoute(), "runtime.image_pull_failed", gameID, missingImageRef, unreachableRegistry(missingImageRef))
			Expect(failure.Intent.IdempotencyKey).To(HaveSuffix("/"+job["job_id"]), "the producer's job ID keys the intent")
		})

	It("routes two failures of different kinds, at once, each to its own admin list",
		behaviors.Proves("contract.admin-route.per-type-list"), func(ctx SpecContext) {
			pullGame, startGame := uniqueGameID(), uniqueGameID()
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": pullGame, "image_ref": missingImageRef})
			Expect(err).NotTo(HaveOccurred())
			_, err = pipeline.PublishStartJob(ctx, map[string]string{"game_id": startGame, "image_ref": infra.BrokenImage})
			Expect(err).NotTo(HaveOccurred())

			expectStartFailureReported(ctx, defaultRoute(), "runtime.image_pull_failed", pullGame, missingImageRef, unreachableRegistry(missingImageRef))
			expectStartFailureReported(ctx, defaultRoute(), "runtime.container_start_failed", startGame, infra.BrokenImage, missingEntrypoint)
		})

	It("mails a failure only to the list configured for its type",
		behaviors.Proves("contract.admin-route.per-type-list"), func(ctx SpecContext) {
			gameID := uniqueGameID()
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": "Not A Valid::Reference"})
			Expect(err).NotTo(HaveOccurred())
			expectStartFailureReported(ctx, defaultRoute(), "runtime.start_config_invalid", gameID, "Not A Valid::Reference",
				Equal(`image_ref: "Not A Valid::Reference" is not a Docker image reference: invalid reference format: repository name (library/Not A Valid) must be lowercase`))

			r := defaultRoute()
			for _, addrs := range r.admins {
				for _, recipient := range addrs {
					if slices.Contains(r.admins["runtime.start_config_invalid"], recipient) {
						continue
					}
					Expect(deliveriesForGame(ctx, Default, pipeline, recipient, "runtime.start_config_invalid", gameID)).To(BeZero(),
						"%s is not on the start_config_invalid list", recipient)
				}
			}
		})
})

var _ = describe("two Runtime Managers publishing to one Notification", func() {
	// Job IDs are the producer's, or default to entry IDs, which two start
	// streams can share: the same job ID at two deployments names two jobs,
	// and each failure must reach the admins.
	It("reports a failure of each, when their job IDs coincide", Label(speclabel.Hermetic),
		behaviors.Proves("rtm.failure.coinciding-job-ids", "rtm.failure.intent-idempotency-key"), func(ctx SpecContext) {
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

			// Each intent is keyed by its own deployment: Notification
			// must route both.
			otherRoute := defaultRoute()
			otherRoute.instance = other.Var("INSTANCE_ID")
			expectStartFailureReported(ctx, defaultRoute(), "runtime.image_pull_failed", here, missingImageRef, unreachableRegistry(missingImageRef))
			expectStartFailureReported(ctx, otherRoute, "runtime.image_pull_failed", there, missingImageRef, unreachableRegistry(missingImageRef))
		})
})
