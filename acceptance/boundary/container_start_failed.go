package boundary

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness/speclabel"
)

var _ = describe("container_start_failed", Label(speclabel.ContainerStartFailed), func() {
	It("reports an image whose entrypoint does not exist, and removes the container", Label(speclabel.Smoke), func(ctx SpecContext) {
		gameID := uniqueGameID()
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.BrokenImage})
		Expect(err).NotTo(HaveOccurred())

		expectStartFailureReported(ctx, "runtime.container_start_failed", gameID, infra.BrokenImage)
	})

	It("reports an image whose entrypoint is not executable", func(ctx SpecContext) {
		gameID := uniqueGameID()
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.NonExecutableImage})
		Expect(err).NotTo(HaveOccurred())

		expectStartFailureReported(ctx, "runtime.container_start_failed", gameID, infra.NonExecutableImage)
	})
})
