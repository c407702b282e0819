package boundary

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness/speclabel"
)

// The contract's example reference: a repository on Docker Hub that does not
// exist; with no route to any public registry the pull fails fast too.
const missingImageRef = "galaxy/integration-missing:0.0.0"

var _ = describe("image_pull_failed", Label(speclabel.ImagePullFailed), func() {
	It("reports an unresolvable image to the admins once, by intent and by mail", Label(speclabel.Smoke), func(ctx SpecContext) {
		gameID := uniqueGameID()
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": missingImageRef})
		Expect(err).NotTo(HaveOccurred())

		failure := expectStartFailureReported(ctx, "runtime.image_pull_failed", gameID, missingImageRef)
		Expect(failure.Delivery.Subject).NotTo(BeEmpty())
	})

	It("reports a tag the local registry does not have", func(ctx SpecContext) {
		gameID := uniqueGameID()
		_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.MissingImage})
		Expect(err).NotTo(HaveOccurred())

		failure := expectStartFailureReported(ctx, "runtime.image_pull_failed", gameID, infra.MissingImage)
		Expect(failure.Intent.Payload["error_message"]).To(ContainSubstring(infra.MissingImage))
	})
})
