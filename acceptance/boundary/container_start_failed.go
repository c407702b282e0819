package boundary

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness/speclabel"
)

var _ = describe("container_start_failed", Label(speclabel.ContainerStartFailed), func() {
	It("reports an image whose entrypoint does not exist, and removes the container", Label(speclabel.Smoke),
		behaviors.Proves("rtm.failure.start-missing-entrypoint", "rtm.failure.one-result-one-intent-no-container",
			"rtm.failure.intent-payload", "rtm.failure.result-matches-intent", "contract.admin-route.idempotency-key", "contract.admin-route.payload-as-variables",
			"contract.admin-mail.rendered", "rtm.pull-policy.start-failure"),
		func(ctx SpecContext) {
			gameID := uniqueGameID()
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.BrokenImage})
			Expect(err).NotTo(HaveOccurred())

			expectStartFailureReported(ctx, defaultRoute(), "runtime.container_start_failed", gameID, infra.BrokenImage, missingEntrypoint)
		})

	It("reports an image whose entrypoint is not executable",
		behaviors.Proves("rtm.failure.start-not-executable", "rtm.failure.one-result-one-intent-no-container"),
		func(ctx SpecContext) {
			gameID := uniqueGameID()
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.NonExecutableImage})
			Expect(err).NotTo(HaveOccurred())

			expectStartFailureReported(ctx, defaultRoute(), "runtime.container_start_failed", gameID, infra.NonExecutableImage, notExecutable)
		})
})
